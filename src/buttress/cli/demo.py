"""``buttress demo --virtual``: a dependency that works, fails, slows down and recovers, called
through a pipeline at a steady rate, with every breaker transition, retry and fallback shown as
it happens; in process, on a virtual clock (the whole scenario at once). The live demo, with the
ops server and an upstream on a real socket, is ``buttress.cli._live``.
"""

from __future__ import annotations

import asyncio
import random
import sys
from dataclasses import dataclass, field
from typing import TextIO

from buttress import events
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress.breaker import CircuitBreaker
from buttress.fallback import Fallback
from buttress.pipeline import Pipeline
from buttress.retry import Backoff, Retry
from buttress.testing import ManualClock
from buttress.timeout import Timeout

__all__ = ["DemoSummary", "run_demo"]


@dataclass(frozen=True, slots=True)
class Phase:
    """One stretch of the dependency's behaviour."""

    name: str
    error_rate: float
    latency: float


PHASES = (
    Phase("healthy", 0.0, 0.01),
    Phase("failing", 0.7, 0.01),
    Phase("slow", 0.0, 0.5),
    Phase("down", 1.0, 0.0),
    Phase("healthy", 0.0, 0.01),
)


@dataclass(slots=True)
class DemoSummary:
    """What happened during the demo."""

    calls: int = 0
    fresh: int = 0
    fallbacks: int = 0
    retries: int = 0
    transitions: list[str] = field(default_factory=list)
    dependency_calls: int = 0


class FlakyDependency:
    """A local dependency whose behaviour follows ``PHASES`` over ``duration`` seconds."""

    def __init__(self, clock: Clock, duration: float, rng: random.Random) -> None:
        self.clock = clock
        self.start = clock.monotonic()
        self.duration = duration
        self.rng = rng
        self.calls = 0

    def phase(self) -> Phase:
        """The behaviour at the current time."""
        elapsed = self.clock.monotonic() - self.start
        index = min(len(PHASES) - 1, int(elapsed / self.duration * len(PHASES)))
        return PHASES[max(0, index)]

    async def fetch(self) -> str:
        """Answer, fail or stall, as the current phase says."""
        self.calls += 1
        phase = self.phase()
        if phase.latency:
            await self.clock.asleep(phase.latency)
        if self.rng.random() < phase.error_rate:
            raise ConnectionError(f"upstream {phase.name}")
        return "fresh"


def build_pipeline(clock: Clock) -> tuple[Pipeline, CircuitBreaker]:
    """Fallback, then retry, then the breaker, then a per-attempt timeout: outer to inner."""
    breaker = CircuitBreaker(
        "upstream", failure_rate=0.5, minimum_calls=10, window=20, open_for=2.0, clock=clock
    )
    pipeline = Pipeline(
        Fallback(value="cached", name="cached-answer"),
        Retry(
            on=(ConnectionError, TimeoutError),
            attempts=3,
            backoff=Backoff.exponential(base=0.05, factor=2, cap=0.4, jitter="full"),
            clock=clock,
            rng=random.Random(1),
            name="upstream-retry",
        ),
        breaker,
        Timeout(0.2, clock=clock, name="attempt-timeout"),
        name="upstream",
    )
    return pipeline, breaker


class _Printer:
    """Prints the demo's events as they happen and counts the rest."""

    def __init__(self, clock: Clock, start: float, out: TextIO, summary: DemoSummary) -> None:
        self.clock, self.start, self.out, self.summary = clock, start, out, summary

    def stamp(self) -> str:
        return f"{self.clock.monotonic() - self.start:6.2f}s"

    def __call__(self, event: events.Event) -> None:
        if isinstance(event, events.BreakerStateChanged):
            line = f"breaker {event.source!r}: {event.old} -> {event.new} ({event.reason})"
            self.summary.transitions.append(line)
            print(f"{self.stamp()}  {line}", file=self.out)
        elif isinstance(event, events.RetryScheduled):
            self.summary.retries += 1
        elif isinstance(event, events.FallbackUsed):
            self.summary.fallbacks += 1


async def _workload(
    clock: Clock, duration: float, rate: float, seed: int, out: TextIO
) -> DemoSummary:
    summary = DemoSummary()
    pipeline, breaker = build_pipeline(clock)
    dependency = FlakyDependency(clock, duration, random.Random(seed))
    start = clock.monotonic()
    printer = _Printer(clock, start, out, summary)
    default_listeners = [
        item for item in events.listeners() if isinstance(item, events.LoggingListener)
    ]
    for listener in default_listeners:  # we print events ourselves
        events.remove_listener(listener)
    events.add_listener(printer)
    try:
        interval = 1.0 / rate
        next_at = start
        phase = None
        second = 0
        window = DemoSummary()
        while clock.monotonic() - start < duration:
            current = dependency.phase()
            if current is not phase:
                phase = current
                print(
                    f"{printer.stamp()}  upstream is now {phase.name} "
                    f"({phase.error_rate:.0%} errors, {phase.latency * 1000:.0f} ms)",
                    file=out,
                )
            answer = await pipeline.acall(dependency.fetch)
            summary.calls += 1
            window.calls += 1
            if answer == "fresh":
                summary.fresh += 1
                window.fresh += 1
            elapsed = clock.monotonic() - start
            if elapsed >= second + 1:
                second = int(elapsed)
                print(
                    f"{printer.stamp()}  {window.calls:3d} calls, {window.fresh:3d} fresh, "
                    f"{window.calls - window.fresh:3d} from fallback; breaker {breaker.state}",
                    file=out,
                )
                window = DemoSummary()
            next_at += interval
            await clock.asleep(max(0.0, next_at - clock.monotonic()))
    finally:
        events.remove_listener(printer)
        for listener in default_listeners:
            events.add_listener(listener)
    summary.dependency_calls = dependency.calls
    snap = breaker.snapshot()
    print(
        f"\nsummary: {summary.calls} calls, {summary.fresh} fresh answers, "
        f"{summary.fallbacks} fallbacks, {summary.retries} retries, "
        f"{len(summary.transitions)} breaker transitions, "
        f"{snap.rejected} calls rejected while open "
        f"(the upstream was spared them), {dependency.calls} upstream calls.",
        file=out,
    )
    return summary


def run_demo(
    *,
    duration: float = 20.0,
    rate: float = 20.0,
    virtual: bool = False,
    seed: int = 7,
    out: TextIO | None = None,
) -> DemoSummary:
    """Run the demo for ``duration`` seconds (at once with ``virtual=True``) and summarise it."""
    stream = out if out is not None else sys.stdout
    clock: Clock = ManualClock() if virtual else SYSTEM_CLOCK
    print(
        f"buttress demo: {duration:g}s of a flaky upstream called {rate:g} times a second through "
        "fallback -> retry -> circuit breaker -> timeout" + (" (virtual time)" if virtual else ""),
        file=stream,
    )
    return asyncio.run(_workload(clock, duration, rate, seed, stream))
