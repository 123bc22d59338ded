"""``buttress limits``: the rate limiters, load shedders and work queues, with their state.

Without ``--url`` it lists what the configuration declares (``[limits]``, ``[concurrency]``,
``[throttles]``, ``[queues]``), freshly built: their parameters, a full quota, nothing counted
yet. With ``--url`` it asks a running ``buttress serve`` (``GET /admin/reliability/limits``, a
viewer token from ``--token`` or ``$BUTTRESS_TOKEN``) and shows the live counters. Exit 0, 1
while something sheds load (a concurrency limiter, throttle or queue refused work in the last
second), 2 when the server cannot be asked or the configuration is invalid.
"""

from __future__ import annotations

import json
import sys
from typing import Annotated, Any

import typer
from rich.table import Table
from rich.text import Text

from buttress.cli import _render
from buttress.cli._degrade import ApiError, TokenOption, _request
from buttress.cli._options import ConfigOption, ProfileOption, load_or_exit

__all__ = ["limits"]

PATH = "/admin/reliability/limits"


def limits(
    url: Annotated[
        str | None,
        typer.Option(help="ask this running ops server (http://host:port) for the live state"),
    ] = None,
    token: TokenOption = None,
    as_json: Annotated[bool, typer.Option("--json", help="print the API's JSON")] = False,
    no_color: Annotated[bool, typer.Option("--no-color", help="no colour")] = False,
    config: ConfigOption = None,
    profile: ProfileOption = None,
) -> None:
    """List rate limiters, concurrency limiters, throttles and work queues with their state:
    from the configuration, or live from a running server with --url. Exit 1 while something
    sheds load, 2 when the server cannot be asked."""
    if url is not None:
        try:
            found = _request("GET", url.rstrip("/") + PATH, token)
        except ApiError as exc:
            typer.echo(f"buttress limits: {exc}", err=True)
            raise typer.Exit(2) from None
    else:
        from buttress.ops._limits_view import limits_view

        loaded = load_or_exit(config, profile, no_color)
        try:
            found = limits_view(loaded.registry)
        finally:
            if loaded.fleet is not None:
                loaded.fleet.close()
    if as_json:
        sys.stdout.write(json.dumps(found, indent=2) + "\n")
    else:
        show(found, no_color, live=url is not None)
    shedding = any(
        item.get("shedding")
        for key in ("concurrency", "throttles", "queues")
        for item in found[key]
    )
    raise typer.Exit(1 if shedding else 0)


def show(found: dict[str, Any], no_color: bool, *, live: bool) -> None:
    """The four lists as tables (an empty list is left out)."""
    out = _render.console(no_color)
    if not any(found.get(key) for key in ("limiters", "concurrency", "throttles", "queues")):
        out.print("no rate limiters, concurrency limiters, throttles or work queues")
        return
    if not live:
        out.print(Text("from the configuration (counters start at 0; --url for a live server)"))
    _table(
        out,
        "rate limiters",
        ("name", "algorithm", "parameters", "scope", "allowed", "refused", "keys", "remaining"),
        [_limiter_row(item) for item in found.get("limiters", [])],
    )
    _table(
        out,
        "concurrency limiters",
        ("name", "algorithm", "in flight", "limit", "shed", "state"),
        [
            (
                item["name"],
                item.get("algorithm", "fixed"),
                str(item["in_flight"]),
                _limit(item),
                str(item["rejected"]),
                _state(item["shedding"]),
            )
            for item in found.get("concurrency", [])
        ],
    )
    _table(
        out,
        "throttles",
        ("name", "k", "requests", "accepts", "reject p", "shed", "state"),
        [
            (
                item["name"],
                f"{item['options'].get('k', '')}",
                str(item["requests"]),
                str(item["accepts"]),
                f"{item['probability']:.2f}",
                str(item["rejected"]),
                _state(item["shedding"]),
            )
            for item in found.get("throttles", [])
        ],
    )
    _table(
        out,
        "work queues",
        ("name", "depth", "oldest", "workers", "processed", "failed", "expired", "shed", "state"),
        [_queue_row(item) for item in found.get("queues", [])],
    )


def _table(out: Any, title: str, columns: tuple[str, ...], rows: list[tuple[Any, ...]]) -> None:
    if not rows:
        return
    table = Table(title=title, title_justify="left", box=None, pad_edge=False, header_style="bold")
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        table.add_row(*row)
    out.print(table)


def _number(value: object) -> str:
    return f"{value:g}" if isinstance(value, int | float) else str(value)


_UNITS = (("s", 1), ("min", 60), ("h", 3600), ("day", 86400))


def _per(rate: object) -> str:
    """A rate per second in the first unit that makes it a whole number: ``100/min``."""
    if not isinstance(rate, int | float) or rate <= 0:
        return f"{rate}/s"
    for unit, seconds in _UNITS:
        count = rate * seconds
        if count >= 1 and abs(count - round(count)) < 1e-6 * count:
            return f"{round(count)}/{unit}"
    return f"{rate:g}/s"


def _span(window: object) -> str:
    """Seconds in the largest unit that divides them: ``1h``, ``90s``."""
    if not isinstance(window, int | float):
        return str(window)
    for unit, seconds in reversed(_UNITS):
        if window >= seconds and (window / seconds).is_integer():
            return f"{round(window / seconds)}{unit}"
    return f"{window:g}s"


def _limiter_row(item: dict[str, Any]) -> tuple[Any, ...]:
    params = item["parameters"]
    if "rate" in params:
        size = next((f"{k} {_number(v)}" for k, v in params.items() if k != "rate"), "")
        described = f"{_per(params['rate'])}, {size}"
    else:
        described = f"{_number(params.get('limit'))} per {_span(params.get('window'))}"
    scope = ("per key" if item["keyed"] else "one quota") + f", {item['store']}"
    if item.get("error"):
        remaining: Any = Text("unknown", style="red")
    elif item["remaining"] is None:
        remaining = "-"
    else:
        remaining = f"{item['remaining']}/{item['limit']}"
    return (
        item["name"],
        item["algorithm"],
        described,
        scope,
        str(item["allowed"]),
        str(item["refused"]),
        str(item["keys"]),
        remaining,
    )


def _limit(item: dict[str, Any]) -> str:
    if "min_limit" in item:
        return f"{item['limit']} ({item['min_limit']}..{item['max_limit']})"
    return str(item["limit"])


def _queue_row(item: dict[str, Any]) -> tuple[Any, ...]:
    age = item.get("oldest_age")
    return (
        item["name"],
        f"{item['depth']}/{item['max_size']}",
        "-" if age is None else f"{age:.1f}s",
        f"{item['busy']}/{item['workers']} ({item['min_workers']}..{item['max_workers']})",
        str(item["processed"]),
        str(item["failed"]),
        str(item["expired"]),
        str(item["refused"] + item["evicted"]),
        Text("closed", style="yellow") if item["closed"] else _state(item["shedding"]),
    )


def _state(shedding: bool) -> Text:
    return Text("shedding", style="bold red") if shedding else Text("ok", style="green")
