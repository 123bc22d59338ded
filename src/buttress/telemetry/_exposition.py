"""The Prometheus text format (0.0.4), written straight from ``Family`` rows.

``prometheus_client.generate_latest`` takes about 9 ms for 100 breakers (it validates and escapes
every label name of every sample), which is more than the 5 ms the ops server allows for a
scrape. ``write`` produces the same bytes in a fraction of that: label names are ours and valid,
so only label values are escaped (once per distinct value), and each family's labels are sorted
once. A test checks that the output is byte for byte what ``generate_latest`` gives.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable

from buttress.telemetry._families import COUNTER, HISTOGRAM, Family

__all__ = ["CONTENT_TYPE", "number", "write"]

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
"""The media type of ``render()``'s output (Prometheus text format 0.0.4)."""


def write(families: Iterable[Family]) -> bytes:
    """The text exposition of ``families``, as ``generate_latest`` would write it."""
    out: list[str] = []
    add = out.append
    escaped: dict[str, str] = {}

    def esc(value: str) -> str:
        found = escaped.get(value)
        if found is None:
            found = value.replace("\\", r"\\").replace("\n", r"\n").replace('"', r"\"")
            escaped[value] = found
        return found

    for family in families:
        name = family.name + "_total" if family.type == COUNTER else family.name
        text = family.help.replace("\\", r"\\").replace("\n", r"\n")
        add(f"# HELP {name} {text}\n# TYPE {name} {family.type}\n")
        labels = family.labels
        if family.type == HISTOGRAM:
            _histogram(add, esc, name, labels, family)
            continue
        order = sorted(range(len(labels)), key=labels.__getitem__)
        # Arity 1 and 2 (nearly every row) are written out; longer label sets take a loop.
        if len(labels) == 1:
            head = f'{name}{{{labels[0]}="'
            for (v0,), value in family.rows:
                add(f'{head}{escaped.get(v0) or esc(v0)}"}} {_number(value)}\n')
        elif len(labels) == 2:
            i, j = order
            head, middle = f'{name}{{{labels[i]}="', f'",{labels[j]}="'
            for values, value in family.rows:
                v0, v1 = values[i], values[j]
                add(
                    f"{head}{escaped.get(v0) or esc(v0)}{middle}"
                    f'{escaped.get(v1) or esc(v1)}"}} {_number(value)}\n'
                )
        elif labels:
            for values, value in family.rows:
                pairs = ",".join(f'{labels[k]}="{esc(values[k])}"' for k in order)
                add(f"{name}{{{pairs}}} {_number(value)}\n")
        else:
            for _, value in family.rows:
                add(f"{name} {_number(value)}\n")
    return "".join(out).encode("utf-8")


def _histogram(
    add: Callable[[str], None],
    esc: Callable[[str], str],
    name: str,
    labels: tuple[str, ...],
    family: Family,
) -> None:
    """``_bucket`` rows (labels sorted with ``le``), then ``_count`` and ``_sum``."""
    order = sorted((*labels, "le"))
    for values, buckets, total in family.histograms:
        pairs = dict(zip(labels, map(esc, values), strict=True))
        plain = ",".join(f'{k}="{pairs[k]}"' for k in sorted(labels))
        for bound, count in buckets:
            pairs["le"] = _number(bound)
            text = ",".join(f'{k}="{pairs[k]}"' for k in order)
            add(f"{name}_bucket{{{text}}} {_number(count)}\n")
        braces = f"{{{plain}}}" if plain else ""
        add(f"{name}_count{braces} {_number(buckets[-1][1] if buckets else 0)}\n")
        add(f"{name}_sum{braces} {_number(total)}\n")


def number(value: float) -> str:
    """``value`` as the text format writes it (Go's float formatting)."""
    return _number(value)


def _number(value: float) -> str:
    """``value`` as Go formats a float64 (``prometheus_client.utils.floatToGoString``)."""
    if type(value) is int and 0 <= value < 1_000_000:
        return f"{value}.0"
    number = float(value)
    if math.isinf(number):
        return "+Inf" if number > 0 else "-Inf"
    if math.isnan(number):
        return "NaN"
    text = repr(number)
    dot = text.find(".")
    # Go switches to an exponent sooner than Python does.
    if number > 0 and dot > 6:
        mantissa = f"{text[0]}.{text[1:dot]}{text[dot + 1 :]}".rstrip("0.")
        return f"{mantissa}e+{dot - 1:02d}"
    return text
