"""Context for every other table: what the loop, a bare call, a bare await and a raise cost.

Nothing is subtracted from any measurement; these rows only say how much of a contender's time
is the loop and the call itself.
"""

from __future__ import annotations

from collections.abc import Callable
from itertools import repeat

from bench._harness import (
    AsyncSample,
    Contender,
    Ctx,
    Prepared,
    SyncSample,
    TimingScenario,
    async_calls,
    async_rejections,
    perf_counter_ns,
    sync_calls,
    sync_rejections,
)

__all__ = ["SCENARIOS"]


def f() -> int:
    return 1


async def af() -> int:
    return 1


def raiser() -> None:
    raise ValueError


async def araiser() -> None:
    raise ValueError


def _empty(n: int) -> int:
    it = repeat(None, n)
    t0 = perf_counter_ns()
    for _ in it:
        pass
    return perf_counter_ns() - t0


async def _aempty(n: int) -> int:
    it = repeat(None, n)
    t0 = perf_counter_ns()
    for _ in it:
        pass
    return perf_counter_ns() - t0


def _prep(sample: SyncSample | AsyncSample) -> Callable[[Ctx], Prepared]:
    def setup(ctx: Ctx) -> Prepared:
        return Prepared(sample)

    return setup


BASELINE = TimingScenario(
    name="baseline",
    title="context: the loop, a bare call, a bare await, a raise caught in the loop",
    contenders=(
        Contender("empty loop", "python", "for _ in repeat(None, n): pass", _prep(_empty)),
        Contender("bare call", "python", "f()", _prep(sync_calls(f))),
        Contender(
            "raise+catch",
            "python",
            "try: raiser() except ValueError",
            _prep(sync_rejections(raiser, ValueError)),
        ),
        Contender(
            "async empty loop", "python", "same loop inside a coroutine", _prep(_aempty), True
        ),
        Contender("bare await", "python", "await af()", _prep(async_calls(af)), True),
        Contender(
            "async raise+catch",
            "python",
            "try: await araiser() except",
            _prep(async_rejections(araiser, ValueError)),
            True,
        ),
    ),
)

SCENARIOS = (BASELINE,)
