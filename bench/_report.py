"""The readable table on stdout and the machine's description for the JSON file."""

from __future__ import annotations

import os
import platform
import sys
from importlib import metadata
from typing import Any

__all__ = ["LIBRARIES", "format_header", "format_scenario", "format_summary", "machine"]

LIBRARIES = (
    "buttress",
    "circuitbreaker",
    "pybreaker",
    "purgatory",
    "aiobreaker",
    "backoff",
    "tenacity",
    "stamina",
)


def machine() -> dict[str, Any]:
    """Python, platform, CPUs and load: what the numbers were measured on."""
    usable: int | None
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # pragma: no cover - not on Linux
        usable = os.cpu_count()
    try:
        load = list(os.getloadavg())
    except OSError:  # pragma: no cover
        load = None
    versions: dict[str, str | None] = {}
    for name in LIBRARIES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return {
        "python": sys.version.split()[0],
        "implementation": platform.python_implementation(),
        "python_build": " ".join(platform.python_build()),
        "platform": platform.platform(),
        "machine": platform.machine(),
        "processor": platform.processor(),
        "cpu_count": os.cpu_count(),
        "cpus_usable": usable,
        "loadavg_start": load,
        "versions": versions,
    }


def _ns(value: float) -> str:
    if value >= 100_000:
        return f"{value / 1000:,.0f} us"
    if value >= 10_000:
        return f"{value / 1000:,.1f} us"
    return f"{value:,.0f}" if value >= 100 else f"{value:.1f}"


def format_header(info: dict[str, Any], config: dict[str, Any]) -> str:
    """The lines printed before the first table."""
    load = info.get("loadavg_start")
    load_text = ", ".join(f"{x:.2f}" for x in load) if load else "?"
    versions = ", ".join(f"{k} {v}" for k, v in info["versions"].items() if v)
    mode = (
        "QUICK (tiny counts, 1 repeat: not a measurement)"
        if config["quick"]
        else (f"{config['repeats']} interleaved repeats, samples of ~{config['sample_ms']:g} ms")
    )
    return "\n".join(
        [
            f"buttress bench: Python {info['python']} ({info['implementation']}) on "
            f"{info['platform']}, {info['cpu_count']} CPUs ({info['cpus_usable']} usable), "
            f"load {load_text}",
            f"versions: {versions}",
            f"mode: {mode}; medians; time.perf_counter_ns; nothing subtracted",
            "fairness: logging disabled for every library (logging.disable(CRITICAL)); "
            "gc enabled, gc.collect() before each sample; async loops run in one event loop",
        ]
    )


def _timing_lines(result: dict[str, Any]) -> list[str]:
    unit = result["unit"]
    lines = [
        f"  {'contender':<24} {f'ns/{unit}':>16} {'min':>9} {'IQR':>6} {'loops':>9}  form",
    ]
    for label, entry in result["contenders"].items():
        if entry.get("status") != "ok":
            status = entry.get("status", "?")
            lines.append(f"  {label:<24} {status.upper():>16}  {entry.get('reason', '')}")
            continue
        median = entry["median"]
        iqr = f"{100 * entry['iqr'] / median:.0f}%" if median else "-"
        lines.append(
            f"  {label:<24} {_ns(median):>16} {_ns(entry['min']):>9} {iqr:>6} "
            f"{entry['n']:>9,}  {entry['form']}"
        )
    return lines


def _memory_lines(result: dict[str, Any]) -> list[str]:
    lines = [f"  {'contender':<24} {'built':>9} {'filled':>9}  {'state after':<12} form"]
    for label, entry in result["contenders"].items():
        if entry.get("status") != "ok":
            status = entry.get("status", "?")
            lines.append(f"  {label:<24} {status.upper():>9}  {entry.get('reason', '')}")
            continue
        lines.append(
            f"  {label:<24} {entry['constructed_median']:>8,.0f}B {entry['filled_median']:>8,.0f}B"
            f"  {entry['state_after']:<12} {entry['form']}"
        )
    return lines


def format_target(verdict: dict[str, Any]) -> str:
    """One target: what is compared, the value, the limit and PASS / MISS / info / N/A."""
    kind = verdict["kind"]
    value = verdict["value"]
    limit = verdict["limit"]
    if kind == "ratio":
        what = f"{verdict['subject']} / {verdict['peer']}"
        shown = "-" if value is None else f"{value:.4f}"
        extra = "" if not value else f"  (1/{1 / value:.1f})"
        spread = verdict.get("ratio_q1_q3")
        if spread:
            extra += f" [{spread[0]:.3f}..{spread[1]:.3f}]"
        bound = "" if limit is None else f"<= {limit:g}"
    elif kind == "absolute_s":
        what = f"{verdict['subject']} seconds"
        shown = "-" if value is None else f"{value:.3f} s"
        extra = ""
        bound = f"<= {limit:g} s"
    elif kind == "absolute_ns":
        what = f"{verdict['subject']} ns/call"
        shown = "-" if value is None else f"{value:,.0f} ns"
        extra = ""
        bound = f"<= {limit:,.0f} ns"
    else:
        what = f"{verdict['subject']} bytes"
        shown = "-" if value is None else f"{value:,.0f} B"
        extra = ""
        bound = f"<= {limit:,} B"
    return f"{what:<46} {shown:>9}{extra:<26} {bound:<12} {verdict['status']}"


def format_scenario(name: str, result: dict[str, Any]) -> str:
    """The table of one scenario, its targets and notes."""
    head = f"{name}: {result['title']}  [{result['seconds']:.1f}s]"
    if result["kind"] == "memory":
        body = _memory_lines(result)
    elif result["kind"] == "wall":
        runs = ", ".join(f"{s:.3f}" for s in result["runs"])
        body = [
            f"  wall seconds per run: {runs} (median {result['median_s']:.3f})",
            f"  hung check reported: {', '.join(result['hung_status'])}; "
            f"overall: {', '.join(result['overall_status'])}",
        ]
    else:
        head += f"  (per {result['unit']}, median of {result['repeats']})"
        body = _timing_lines(result)
    targets = [f"  -> {format_target(v)}" for v in result["targets"]]
    notes = [f"  note: {n}" for n in result["notes"]]
    info = result.get("info") or {}
    if info:
        notes.append("  info: " + ", ".join(f"{k}={v}" for k, v in info.items()))
    return "\n".join([head, *body, *targets, *notes])


def format_summary(results: dict[str, Any]) -> str:
    """Every target of the run with its verdict, then the counts of PASS and MISS."""
    lines = ["summary of targets:"]
    counts: dict[str, int] = {}
    for name, result in results["scenarios"].items():
        for verdict in result["targets"]:
            if verdict["limit"] is None:
                continue
            counts[verdict["status"]] = counts.get(verdict["status"], 0) + 1
            lines.append(f"  {name:<22} {format_target(verdict)}")
    lines.append("  " + ", ".join(f"{k}: {v}" for k, v in sorted(counts.items())))
    return "\n".join(lines)
