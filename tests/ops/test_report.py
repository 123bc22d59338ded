"""The reliability report: time in each breaker state, the extra sections, the SVG charts."""

from __future__ import annotations

import re
from collections.abc import Callable

from starlette.applications import Starlette

from buttress import Fallback, Registry
from buttress.events import BreakerStateChanged
from buttress.ops import render_html, render_markdown
from buttress.ops._charts import STATE_COLORS, availability_chart, states_chart
from buttress.ops._events import BreakerStates
from buttress.testing import ManualClock

from .conftest import VIEW, client_for

API = "/admin/reliability"


def _change(name: str, time: float, old: str, new: str) -> BreakerStateChanged:
    return BreakerStateChanged(name, time, old, new, "test")


def test_breaker_states_add_up_over_many_flaps() -> None:
    """Thousands of transitions keep exact totals in constant memory; the current state runs
    to the end of the period."""
    states = BreakerStates(start=1000.0)
    time = 1000.0
    for _ in range(2000):
        states.record(_change("db", time + 3, "closed", "open"))
        states.record(_change("db", time + 4, "open", "half_open"))
        states.record(_change("db", time + 5, "half_open", "closed"))
        time += 5
    spent = states.durations("db", "closed", time + 10)
    assert spent == {"closed": 2000 * 3 + 10, "open": 2000.0, "half_open": 2000.0}
    assert sum(spent.values()) == time + 10 - 1000
    assert states.durations("other", "open", 1060.0) == {"open": 60.0}


def test_refusing_since_spans_open_and_half_open() -> None:
    """A breaker cycling open <-> half-open refuses since it first opened; closing clears it."""
    states = BreakerStates(start=0.0)
    states.record(_change("db", 10, "closed", "open"))
    states.record(_change("db", 40, "open", "half_open"))
    states.record(_change("db", 41, "half_open", "open"))
    assert states.refusing_since("db") == 10
    states.record(_change("db", 80, "open", "half_open"))
    states.record(_change("db", 81, "half_open", "closed"))
    assert states.refusing_since("db") is None
    states.record(_change("late", 5, "open", "closed"))  # it was open before we listened
    assert states.durations("late", "closed", 10) == {"open": 5.0, "closed": 5.0}


async def test_report_counts_fallbacks_timeouts_and_rejections(
    make_app: Callable[..., Starlette], registry: Registry, clock: ManualClock
) -> None:
    """The JSON report lists fallbacks used, timeouts and breaker rejections, with totals."""
    fallback = registry.add(Fallback(value="cached", name="cached-answer"))

    def broken() -> str:
        raise ConnectionError("down")

    for _ in range(3):
        fallback.call(broken)
    db = registry.breaker("db")
    db.trip()
    for _ in range(2):
        try:
            db.call(lambda: None)
        except Exception:
            pass
    async with client_for(make_app()) as client:
        data = (await client.get(f"{API}/reports/reliability", headers=VIEW)).json()
        md = (await client.get(f"{API}/reports/reliability?format=md", headers=VIEW)).text
    assert data["fallbacks"] == [{"name": "cached-answer", "used": 3}]
    assert data["timeouts"] == [{"name": "fast", "timeouts": 0}]
    assert {"kind": "breaker", "name": "db", "rejected": 2} in data["rejections"]
    assert data["summary"]["fallbacks_used"] == 3
    assert data["summary"]["rejections"] == 2
    assert data["summary"]["availability_from"] == "results seen"
    assert "## Fallbacks" in md
    assert "| cached-answer | 3 |" in md


async def test_html_report_has_inline_svg_charts(
    make_app: Callable[..., Starlette], registry: Registry, clock: ManualClock
) -> None:
    """The HTML page draws availability and time-in-state charts inline: SVG, no asset, no
    script."""
    app = make_app()
    clock.advance(30)
    registry.breaker("db").trip()
    clock.advance(10)
    async with client_for(app) as client:
        await client.get("/health/ready")
        page = await client.get(f"{API}/reports/reliability?format=html", headers=VIEW)
    text = page.text
    assert text.count("<svg") == 2
    assert 'aria-label="availability per health check"' in text
    assert 'aria-label="time in each state per circuit breaker"' in text
    assert f'fill="{STATE_COLORS["forced_open"]}"' in text
    assert "db: forced_open 10 s (25.0%)" in text
    assert "75.0% closed" in text
    for forbidden in ("<script", "src=", "href=", "url(", "@import"):
        assert forbidden not in text


def test_charts_scale_and_escape() -> None:
    """Bars are proportional, graded by availability, names escaped; no rows, no chart."""
    svg = availability_chart(
        [
            {"name": "db<1>", "availability": 0.5, "samples": 4},
            {"name": "cache", "availability": 1.0, "samples": 4},
            {"name": "new", "availability": None, "samples": 0},
        ]
    )
    assert "db&lt;1&gt;" in svg
    assert "db<1>" not in svg
    widths = [float(w) for w in re.findall(r'width="([\d.]+)" height="14" fill="#(?!eef1f4)', svg)]
    assert widths == [210.0, 420.0]
    assert "n/a" in svg
    assert availability_chart([]) == ""
    assert states_chart([]) == ""
    bars = states_chart([{"name": "x", "time_in_state": {"closed": 30.0, "open": 10.0}}])
    assert 'width="315.0"' in bars
    assert 'width="105.0"' in bars


def test_renderers_accept_an_older_report() -> None:
    """A stored report from before the fallbacks and timeouts sections still renders."""
    report = {
        "period": {"start": "a", "end": "b", "seconds": 1.0},
        "summary": {
            "health": "pass",
            "breakers": 0,
            "breakers_not_closed": 0,
            "retries": 0,
            "retries_exhausted": 0,
            "rejections": 0,
        },
        "checks": [],
        "breakers": [],
        "retries": [],
        "rejections": [],
    }
    assert "## Timeouts" in render_markdown(report)
    assert "<h2>Fallbacks</h2>" in render_html(report)


def test_rate_limiter_refusals_count_as_rejections() -> None:
    """A limiter's refusals appear among the report's rejections, under its kind and name."""
    from buttress import FixedWindow
    from buttress.ops._report import reliability_report

    clock = ManualClock()
    registry = Registry(clock=clock)
    limiter = registry.limiter("api", FixedWindow(1, 60))
    assert limiter.allow()
    assert not limiter.allow()
    report = reliability_report(registry, start=0.0, end=60.0)
    assert {"kind": "limiter", "name": "api", "rejected": 1} in report["rejections"]
