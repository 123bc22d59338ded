"""The reliability report: one function gathers the data, renderers turn it into Markdown or HTML.

``reliability_report(...)`` returns plain data (the JSON form). ``render_markdown`` and
``render_html`` only format that data; the HTML page adds small inline SVG charts (availability
per check, time in each state per breaker) drawn by ``_charts``.
"""

from __future__ import annotations

import html
from collections.abc import Iterable
from typing import Any

from buttress.health._report import HealthReport, rfc3339
from buttress.ops._charts import availability_chart, states_chart
from buttress.ops._events import BreakerStates, BreakerTimeline, HealthHistory, redact_tree
from buttress.registry import Registry

__all__ = ["reliability_report", "render_html", "render_markdown"]

# Kinds whose snapshot counts rejections (rate limiters call them ``refused``).
_REJECTING_KINDS = ("breaker", "bulkhead", "limiter", "concurrency", "throttle")


def reliability_report(
    registry: Registry,
    *,
    start: float,
    end: float,
    health: HealthReport | None = None,
    history: HealthHistory | None = None,
    timeline: BreakerTimeline | None = None,
    states: BreakerStates | None = None,
    availability_from: str | None = None,
) -> dict[str, Any]:
    """The report for the period ``start``..``end`` (wall-clock seconds): availability per health
    check (from ``history``, the share of its results that did not fail; ``health`` gives the
    current status; ``availability_from`` says what the results were), time spent in each breaker
    state (from ``states``, running totals since ``states.start``, else from ``timeline``),
    retries and their exhaustion, rejections, fallbacks and timeouts per policy. Plain, redacted
    data."""
    samples = history.availability() if history is not None else {}
    checks: list[dict[str, Any]] = []
    if health is not None:
        for name, outcome in health.checks.items():
            counts = samples.get(name, {})
            checks.append(
                {
                    "name": name,
                    "status": outcome.result.status.ietf,
                    "critical": outcome.check.critical,
                    "output": outcome.result.output,
                    "samples": counts.get("samples", 0),
                    "passes": counts.get("pass", 0),
                    "warnings": counts.get("warn", 0),
                    "failures": counts.get("fail", 0),
                    "availability": counts.get("availability"),
                }
            )
    breakers = []
    for breaker in registry.breakers():
        snap = breaker.snapshot()
        state = snap.state.value
        if states is not None:
            spent = states.durations(breaker.name, state, end)
        elif timeline is not None:
            spent = timeline.durations(breaker.name, state, start, end)
        else:
            spent = {state: round(end - start, 3)}
        breakers.append(
            {
                "name": breaker.name,
                "state": state,
                "failure_rate": snap.failure_rate,
                "calls": snap.calls,
                "failures": snap.failures,
                "rejected": snap.rejected,
                "openings": snap.openings,
                "time_in_state": spent,
            }
        )
    retries = []
    for retry in registry.of_kind("retry"):
        stats = retry.snapshot()
        retries.append(
            {
                "name": retry.name,
                "calls": stats.calls,
                "attempts": stats.attempts,
                "retries": stats.retries,
                "exhausted": stats.exhausted,
            }
        )
    rejections = []
    for kind in _REJECTING_KINDS:
        for policy in registry.of_kind(kind):
            snap = policy.snapshot()
            rejected = getattr(snap, "rejected", getattr(snap, "refused", None))
            if isinstance(rejected, int):
                rejections.append({"kind": kind, "name": policy.name, "rejected": rejected})
    fallbacks = [{"name": f.name, "used": f.snapshot().used} for f in registry.of_kind("fallback")]
    timeouts = [
        {"name": t.name, "timeouts": t.snapshot().timeouts} for t in registry.of_kind("timeout")
    ]
    report = {
        "generated_at": rfc3339(end),
        "period": {"start": rfc3339(start), "end": rfc3339(end), "seconds": round(end - start, 3)},
        "summary": {
            "health": health.status.ietf if health is not None else None,
            "availability_from": availability_from,
            "breakers": len(breakers),
            "breakers_not_closed": sum(b["state"] != "closed" for b in breakers),
            "retries": sum(r["retries"] for r in retries),
            "retries_exhausted": sum(r["exhausted"] for r in retries),
            "rejections": sum(r["rejected"] for r in rejections),
            "fallbacks_used": sum(f["used"] for f in fallbacks),
            "timeouts": sum(t["timeouts"] for t in timeouts),
        },
        "checks": checks,
        "breakers": breakers,
        "retries": retries,
        "rejections": rejections,
        "fallbacks": fallbacks,
        "timeouts": timeouts,
    }
    return redact_tree(report)  # type: ignore[no-any-return]


def _percent(value: object) -> str:
    return "n/a" if not isinstance(value, int | float) else f"{value * 100:.2f}%"


def _states(spent: dict[str, float]) -> str:
    return ", ".join(f"{state} {seconds:g}s" for state, seconds in spent.items())


def _md_table(head: list[str], rows: Iterable[list[Any]]) -> list[str]:
    def cell(value: Any) -> str:
        return str(value).replace("|", "\\|").replace("\n", " ")

    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(cell(value) for value in row) + " |" for row in rows]
    return lines


def _sections(report: dict[str, Any]) -> list[tuple[str, list[str], list[list[Any]]]]:
    """The report's tables as (title, header, rows): shared by both renderers."""
    return [
        (
            "Health checks",
            ["check", "status", "availability", "samples", "warnings", "failures"],
            [
                [
                    c["name"],
                    c["status"],
                    _percent(c["availability"]),
                    c["samples"],
                    c.get("warnings", 0),
                    c["failures"],
                ]
                for c in report["checks"]
            ],
        ),
        (
            "Circuit breakers",
            ["breaker", "state", "failure rate", "calls", "rejected", "openings", "time in state"],
            [
                [
                    b["name"],
                    b["state"],
                    _percent(b["failure_rate"]),
                    b["calls"],
                    b["rejected"],
                    b["openings"],
                    _states(b["time_in_state"]),
                ]
                for b in report["breakers"]
            ],
        ),
        (
            "Retries",
            ["retry", "calls", "attempts", "retries", "exhausted"],
            [
                [r["name"], r["calls"], r["attempts"], r["retries"], r["exhausted"]]
                for r in report["retries"]
            ],
        ),
        (
            "Rejections",
            ["policy", "kind", "rejected"],
            [[r["name"], r["kind"], r["rejected"]] for r in report["rejections"]],
        ),
        (
            "Fallbacks",
            ["fallback", "used"],
            [[f["name"], f["used"]] for f in report.get("fallbacks", ())],
        ),
        (
            "Timeouts",
            ["timeout", "timeouts"],
            [[t["name"], t["timeouts"]] for t in report.get("timeouts", ())],
        ),
    ]


def _summary_line(report: dict[str, Any]) -> str:
    summary, period = report["summary"], report["period"]
    return (
        f"Period {period['start']} to {period['end']} ({period['seconds']:g} s). "
        f"Health: {summary['health'] or 'n/a'}; breakers not closed: "
        f"{summary['breakers_not_closed']}/{summary['breakers']}; retries: {summary['retries']} "
        f"({summary['retries_exhausted']} exhausted); rejections: {summary['rejections']}; "
        f"fallbacks used: {summary.get('fallbacks_used', 0)}; "
        f"timeouts: {summary.get('timeouts', 0)}."
    )


def render_markdown(report: dict[str, Any]) -> str:
    """The report as a Markdown document."""
    lines = ["# Reliability report", "", _summary_line(report)]
    for title, head, rows in _sections(report):
        lines += ["", f"## {title}", ""]
        lines += _md_table(head, rows) if rows else ["None."]
    return "\n".join(lines) + "\n"


_STYLE = (
    "body{font:14px/1.45 system-ui,sans-serif;margin:2rem;color:#1d2430}"
    "table{border-collapse:collapse;margin:.5rem 0 1.5rem}"
    "th,td{border:1px solid #d5dae1;padding:.3rem .6rem;text-align:left}"
    "th{background:#f2f4f7}h1{font-size:1.5rem}h2{font-size:1.15rem;margin-top:1.5rem}"
    "svg.chart{display:block;max-width:100%;height:auto;margin:.5rem 0;fill:#1d2430}"
)


def render_html(report: dict[str, Any]) -> str:
    """The report as one self-contained HTML page (no external assets), with inline SVG charts
    of availability per check and of time in each state per breaker."""
    esc = html.escape
    charts = {
        "Health checks": availability_chart(report["checks"]),
        "Circuit breakers": states_chart(report["breakers"]),
    }
    parts = [
        "<!doctype html><html lang='en'><head><meta charset='utf-8'>",
        "<title>Reliability report</title>",
        f"<style>{_STYLE}</style></head><body>",
        "<h1>Reliability report</h1>",
        f"<p>{esc(_summary_line(report))}</p>",
    ]
    for title, head, rows in _sections(report):
        parts.append(f"<h2>{esc(title)}</h2>")
        parts.append(charts.get(title, ""))
        if not rows:
            parts.append("<p>None.</p>")
            continue
        parts.append("<table><thead><tr>")
        parts += [f"<th>{esc(h)}</th>" for h in head]
        parts.append("</tr></thead><tbody>")
        for row in rows:
            parts.append("<tr>" + "".join(f"<td>{esc(str(v))}</td>" for v in row) + "</tr>")
        parts.append("</tbody></table>")
    parts.append("</body></html>")
    return "".join(parts)
