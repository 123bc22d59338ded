"""The measuring machinery: contenders, calibration, interleaved repeats, medians and ratios.

A timing scenario lists contenders (one library's way of doing the same thing) and targets (a
limit on the median of the per-round ratios subject/peer, or on the subject's own ns per call).
Every contender is set up first, calibrated to samples of ``sample_ms``, then the rounds run
them in turn (A, B, C, A, B, C, ...), so that a slow spell on the machine hits all of them.
A sample is one tight loop timed with ``time.perf_counter_ns``; nothing is subtracted from it.
Async samples run in the one event loop of the run, as an ``async def`` loop awaiting the call
``n`` times (no task per call).
"""

from __future__ import annotations

import asyncio
import gc
import statistics
import time
from collections.abc import Awaitable, Callable, Iterator
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from itertools import repeat
from typing import Any

__all__ = [
    "AsyncSample",
    "Config",
    "Contender",
    "Ctx",
    "Prepared",
    "SyncSample",
    "Target",
    "TimingScenario",
    "async_calls",
    "async_rejections",
    "run_timing",
    "sync_calls",
    "sync_rejections",
]

perf_counter_ns = time.perf_counter_ns

SyncSample = Callable[[int], int]
AsyncSample = Callable[[int], Awaitable[int]]


@dataclass(frozen=True)
class Config:
    """How hard to measure: ``quick`` uses ``quick_n`` loops and no calibration."""

    repeats: int = 25
    sample_ms: float = 20.0
    quick: bool = False
    quick_n: int = 50


@dataclass
class Ctx:
    """What setups get: the run's one event loop and the config."""

    loop: asyncio.AbstractEventLoop
    config: Config

    def run(self, coro: Awaitable[Any]) -> Any:
        """Run ``coro`` to the end in the run's event loop (for async setup work)."""
        return self.loop.run_until_complete(coro)


@dataclass
class Prepared:
    """A ready contender: ``sample(n)`` returns the ns taken by ``n`` iterations.

    ``verify()``, when given, runs after the rounds and raises if the contender did not measure
    what it claims (a breaker that closed during an open-rejection benchmark, say).
    """

    sample: SyncSample | AsyncSample
    verify: Callable[[], None] | None = None


@dataclass(frozen=True)
class Contender:
    """One library's way to do the scenario's thing; ``label`` is unique in the scenario."""

    label: str
    library: str
    form: str
    setup: Callable[[Ctx], Prepared]
    is_async: bool = False


@dataclass(frozen=True)
class Target:
    """``subject`` / ``peer`` median ratio <= ``limit``; ``peer=None``: subject ns <= limit.

    ``limit=None`` makes it informational: the ratio is reported without PASS/MISS.
    """

    subject: str
    peer: str | None
    limit: float | None


@dataclass(frozen=True)
class TimingScenario:
    """Contenders measured side by side; ``ops`` iterations' worth of ``unit`` per loop turn."""

    name: str
    title: str
    contenders: tuple[Contender, ...]
    targets: tuple[Target, ...] = ()
    unit: str = "call"
    ops: int = 1
    notes: tuple[str, ...] = ()
    context: Callable[[], AbstractContextManager[dict[str, Any]]] | None = None
    kind: str = field(default="timing", init=False)


# -- loops -------------------------------------------------------------------------------------
# One closure per arity, so that the loop body is exactly the call under test.


def sync_calls(fn: Callable[..., Any], *args: Any) -> SyncSample:
    """A sampler calling ``fn(*args)`` ``n`` times (zero or one argument)."""
    if not args:

        def run0(n: int) -> int:
            it = repeat(None, n)
            t0 = perf_counter_ns()
            for _ in it:
                fn()
            return perf_counter_ns() - t0

        return run0
    (a,) = args

    def run1(n: int) -> int:
        it = repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            fn(a)
        return perf_counter_ns() - t0

    return run1


def sync_rejections(fn: Callable[..., Any], exc: type[BaseException], *args: Any) -> SyncSample:
    """A sampler calling ``fn(*args)`` ``n`` times, each raising ``exc``, caught in the loop."""
    if not args:

        def run0(n: int) -> int:
            it = repeat(None, n)
            t0 = perf_counter_ns()
            for _ in it:
                try:
                    fn()
                except exc:
                    pass
            return perf_counter_ns() - t0

        return run0
    (a,) = args

    def run1(n: int) -> int:
        it = repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            try:
                fn(a)
            except exc:
                pass
        return perf_counter_ns() - t0

    return run1


def async_calls(fn: Callable[..., Awaitable[Any]], *args: Any) -> AsyncSample:
    """A sampler awaiting ``fn(*args)`` ``n`` times in one coroutine."""
    if not args:

        async def run0(n: int) -> int:
            it = repeat(None, n)
            t0 = perf_counter_ns()
            for _ in it:
                await fn()
            return perf_counter_ns() - t0

        return run0
    (a,) = args

    async def run1(n: int) -> int:
        it = repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            await fn(a)
        return perf_counter_ns() - t0

    return run1


def async_rejections(
    fn: Callable[..., Awaitable[Any]], exc: type[BaseException], *args: Any
) -> AsyncSample:
    """A sampler awaiting ``fn(*args)`` ``n`` times, each raising ``exc``, caught in the loop."""
    if not args:

        async def run0(n: int) -> int:
            it = repeat(None, n)
            t0 = perf_counter_ns()
            for _ in it:
                try:
                    await fn()
                except exc:
                    pass
            return perf_counter_ns() - t0

        return run0
    (a,) = args

    async def run1(n: int) -> int:
        it = repeat(None, n)
        t0 = perf_counter_ns()
        for _ in it:
            try:
                await fn(a)
            except exc:
                pass
        return perf_counter_ns() - t0

    return run1


# -- running -----------------------------------------------------------------------------------


def _sample(ctx: Ctx, contender: Contender, prepared: Prepared, n: int) -> int:
    if not ctx.config.quick:
        gc.collect()  # every sample starts from the same collector state
    result: Any = prepared.sample(n)
    return int(ctx.run(result) if contender.is_async else result)


def _calibrate(ctx: Ctx, contender: Contender, prepared: Prepared) -> int:
    """A loop count for samples of about ``sample_ms`` (the probes also warm the code up)."""
    config = ctx.config
    if config.quick:
        _sample(ctx, contender, prepared, 1)
        return config.quick_n
    goal = config.sample_ms * 1e6
    n = 16
    while True:
        elapsed = max(_sample(ctx, contender, prepared, n), 1)
        if elapsed >= goal / 5 or n >= 1 << 30:
            break
        n *= 4 if elapsed < goal / 50 else 2
    # The quickest of three probes: noise only ever makes a probe slower.
    elapsed = min([elapsed] + [_sample(ctx, contender, prepared, n) for _ in range(2)])
    n = max(1, round(n * goal / max(elapsed, 1)))
    _sample(ctx, contender, prepared, n)  # one full-size warm-up
    return n


def _stats(values: list[float]) -> dict[str, float]:
    out = {
        "median": statistics.median(values),
        "min": min(values),
        "max": max(values),
    }
    if len(values) >= 4:
        q1, _, q3 = statistics.quantiles(values, n=4)
        out["iqr"] = q3 - q1
    else:
        out["iqr"] = out["max"] - out["min"]
    return out


def _judge(target: Target, results: dict[str, dict[str, Any]]) -> dict[str, Any]:
    subject = results.get(target.subject, {})
    verdict: dict[str, Any] = {
        "subject": target.subject,
        "peer": target.peer,
        "limit": target.limit,
        "kind": "ratio" if target.peer is not None else "absolute_ns",
    }
    if target.peer is None:
        if subject.get("status") != "ok":
            return {**verdict, "value": None, "status": "N/A"}
        value = subject["median"]
    else:
        peer = results.get(target.peer, {})
        if subject.get("status") != "ok" or peer.get("status") != "ok":
            return {**verdict, "value": None, "status": "N/A"}
        paired = [a / b for a, b in zip(subject["samples"], peer["samples"], strict=True)]
        value = statistics.median(paired)
        verdict["paired_ratios"] = paired
        if len(paired) >= 4:
            q1, _, q3 = statistics.quantiles(paired, n=4)
            verdict["ratio_q1_q3"] = [q1, q3]
        verdict["ratio_of_medians"] = subject["median"] / peer["median"]
    status = "info" if target.limit is None else ("PASS" if value <= target.limit else "MISS")
    return {**verdict, "value": value, "status": status}


def run_timing(scenario: TimingScenario, ctx: Ctx) -> dict[str, Any]:
    """Set up, calibrate, run the interleaved rounds, verify, and summarise one scenario."""
    config = ctx.config
    repeats = 1 if config.quick else config.repeats
    results: dict[str, dict[str, Any]] = {}
    context = scenario.context() if scenario.context is not None else nullcontext({})
    started = time.perf_counter()
    with context as info:
        ready: list[tuple[Contender, Prepared]] = []
        for c in scenario.contenders:
            entry: dict[str, Any] = {
                "library": c.library,
                "form": c.form,
                "async": c.is_async,
            }
            results[c.label] = entry
            try:
                prepared = c.setup(ctx)
            except ImportError as exc:
                entry.update(status="unavailable", reason=f"{type(exc).__name__}: {exc}")
                continue
            except Exception as exc:
                entry.update(status="error", reason=f"setup: {type(exc).__name__}: {exc}")
                continue
            ready.append((c, prepared))
        counts: dict[str, int] = {}
        for c, prepared in list(ready):
            try:
                counts[c.label] = _calibrate(ctx, c, prepared)
            except Exception as exc:
                results[c.label].update(status="error", reason=f"{type(exc).__name__}: {exc}")
                ready.remove((c, prepared))
        samples: dict[str, list[float]] = {c.label: [] for c, _ in ready}
        for _ in range(repeats):
            for c, prepared in list(ready):
                n = counts[c.label]
                try:
                    elapsed = _sample(ctx, c, prepared, n)
                except Exception as exc:
                    results[c.label].update(status="error", reason=f"{type(exc).__name__}: {exc}")
                    ready.remove((c, prepared))
                    continue
                samples[c.label].append(elapsed / (n * scenario.ops))
        for c, prepared in ready:
            entry = results[c.label]
            try:
                if prepared.verify is not None:
                    prepared.verify()
            except Exception as exc:
                entry.update(status="invalid", reason=f"{type(exc).__name__}: {exc}")
                continue
            values = samples[c.label]
            entry.update(status="ok", n=counts[c.label], samples=values, **_stats(values))
    # Read only now: a context fills in what it saw when it exits.
    info = dict(info)
    verdicts = [_judge(t, results) for t in scenario.targets]
    return {
        "kind": "timing",
        "title": scenario.title,
        "unit": scenario.unit,
        "repeats": repeats,
        "notes": list(scenario.notes),
        "info": info,
        "contenders": results,
        "targets": verdicts,
        "seconds": time.perf_counter() - started,
    }


def iter_labels(scenario: TimingScenario) -> Iterator[str]:
    """The contender labels of ``scenario``, in order."""
    for c in scenario.contenders:
        yield c.label
