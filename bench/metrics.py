"""``GET /metrics``: one Prometheus text exposition of 100 breakers and 5 retries.

The registry: 100 breakers (70 closed with traffic, 10 open, 10 half-open, 5 forced open, 5
disabled; their transitions are counted) and 5 retries that retried, on a manual clock so that
no state changes during the run. That is about 1,100 series. Target: one render <= 5 ms.

Rows: ``render()`` (what the ops server serves); the same ``ButtressCollector`` through
prometheus_client's ``generate_latest`` (same bytes, for where the time goes); and the same
series held as prometheus_client's own labelled ``Counter``/``Gauge`` objects (the push style,
where every call would update a metric) rendered by ``generate_latest``, for scale.
"""

from __future__ import annotations

import statistics
from collections.abc import Iterator
from contextlib import contextmanager
from itertools import repeat
from typing import Any

from bench._harness import Contender, Ctx, Prepared, Target, TimingScenario, perf_counter_ns

__all__ = ["SCENARIOS"]

BREAKERS = 100
RETRIES = 5
TARGET_MS = 5.0

# (n, ns) of every sample of the render() row, read by the scenario's context when it exits.
_render_samples: list[tuple[int, int]] = []


class Boom(Exception):
    """The failure used to open breakers and make retries retry."""


def _fail() -> None:
    raise Boom


def _swallow(call: Any, *args: Any) -> None:
    try:
        call(*args)
    except Exception:
        pass


def _registry() -> Any:
    """A Registry with BREAKERS breakers in every state and RETRIES retries that retried."""
    from buttress import Registry
    from buttress.retry import Backoff
    from buttress.telemetry import render
    from buttress.testing import ManualClock

    clock = ManualClock()
    registry = Registry(clock=clock)
    render(registry)  # start counting transitions, as the ops server does at startup
    for index in range(BREAKERS):
        # 70-79 open for an hour; 80-89 for a minute, so that they are half-open after it.
        open_for = 60.0 if 80 <= index < 90 else 3600.0
        breaker = registry.breaker(
            f"dependency-{index:03d}", minimum_calls=5, window=20, open_for=open_for
        )
        for _ in range(15):
            breaker.call(int)
        if index < 70:
            _swallow(breaker.call, _fail)
        elif index < 90:
            for _ in range(20):
                _swallow(breaker.call, _fail)
        elif index < 95:
            breaker.trip()
        else:
            breaker.disable()
    clock.advance(61.0)
    for index in range(RETRIES):
        retry = registry.retry(
            f"upstream-{index}", on=Boom, attempts=3, backoff=Backoff.constant(0)
        )
        for _ in range(10):
            _swallow(retry.call, _fail)
            retry.call(int)
    return registry


def _check_scrape(text: bytes) -> None:
    states = text.count(b"buttress_circuit_breaker_state{")
    if states != BREAKERS * 5:
        raise AssertionError(f"{states} breaker state rows, expected {BREAKERS * 5}")
    for state in (b"open", b"half_open", b"forced_open", b"disabled"):
        if f'state="{state.decode()}"}} 1.0'.encode() not in text:
            raise AssertionError(f"no breaker in state {state.decode()}")
    if b"buttress_circuit_breaker_transitions_total{" not in text:
        raise AssertionError("no transitions counted")


def _render(ctx: Ctx) -> Prepared:
    from buttress.telemetry import render

    registry = _registry()
    _check_scrape(render(registry))

    def sample(n: int) -> int:
        it = repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            render(registry)
        elapsed = perf_counter_ns() - t0
        _render_samples.append((n, elapsed))
        return elapsed

    return Prepared(sample, lambda: _check_scrape(render(registry)))


def _collector(ctx: Ctx) -> Prepared:
    from prometheus_client import CollectorRegistry, generate_latest

    from buttress.telemetry import ButtressCollector

    collector = ButtressCollector(_registry())
    target = CollectorRegistry()
    collector.register(target)

    def sample(n: int) -> int:
        it = repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            generate_latest(target)
        return perf_counter_ns() - t0

    def verify() -> None:
        try:
            _check_scrape(generate_latest(target))
        finally:
            collector.close()

    return Prepared(sample, verify)


def _native(ctx: Ctx) -> Prepared:
    """The same series as prometheus_client's own metrics, values copied once from buttress."""
    from prometheus_client import CollectorRegistry, Counter, Gauge, generate_latest
    from prometheus_client.parser import text_string_to_metric_families

    from buttress.telemetry import render

    target = CollectorRegistry()
    made: dict[str, Any] = {}
    for family in text_string_to_metric_families(render(_registry()).decode()):
        for s in family.samples:
            metric = made.get(family.name)
            if metric is None:
                kind = Counter if family.type == "counter" else Gauge
                metric = made[family.name] = kind(
                    family.name, family.documentation, list(s.labels), registry=target
                )
            if isinstance(metric, Counter):
                metric.labels(**s.labels).inc(s.value)
            else:
                metric.labels(**s.labels).set(s.value)

    def sample(n: int) -> int:
        it = repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            generate_latest(target)
        return perf_counter_ns() - t0

    return Prepared(sample, lambda: _check_scrape(generate_latest(target)))


@contextmanager
def render_ms() -> Iterator[dict[str, Any]]:
    """Report the render() row in milliseconds: the median of its calibrated samples."""
    _render_samples.clear()
    info: dict[str, Any] = {}
    try:
        yield info
    finally:
        if _render_samples:
            rounds = _render_samples[-1][0]  # the calibrated count (the rounds and a warm-up)
            per_render = [ns / n for n, ns in _render_samples if n == rounds]
            info["render_ms"] = round(statistics.median(per_render) / 1e6, 3)
            info["target_ms"] = TARGET_MS
        _render_samples.clear()


RENDER = TimingScenario(
    name="metrics.render",
    title=f"GET /metrics body: {BREAKERS} breakers in every state + {RETRIES} retries",
    contenders=(
        Contender("buttress render()", "buttress", "buttress.telemetry.render(registry)", _render),
        Contender(
            "collector+generate_latest",
            "buttress+prometheus_client",
            "generate_latest(CollectorRegistry holding ButtressCollector(registry))",
            _collector,
        ),
        Contender(
            "prometheus_client metrics",
            "prometheus_client",
            "generate_latest(the same series as labelled Counter/Gauge objects)",
            _native,
        ),
    ),
    targets=(
        Target("buttress render()", None, TARGET_MS * 1e6),
        Target("buttress render()", "prometheus_client metrics", None),
    ),
    unit="render",
    notes=(
        f"target: one render <= {TARGET_MS:g} ms = {TARGET_MS * 1e6:,.0f} ns (info: render_ms)",
        "render() writes the text itself; a test checks it is byte-identical to generate_latest",
    ),
    context=render_ms,
)

SCENARIOS = (RENDER,)
