"""The five-policy asyncio pipeline (timeout, retry, breaker, bulkhead, fallback), success path.

buttress: ``Pipeline(Timeout(5), Retry(on=ConnectionError), CircuitBreaker("x"), Bulkhead(100),
Fallback(value=None))`` and ``await p.acall(af)``. The peers' stack, outer to inner in the same
order: ``async with asyncio.timeout(5)``, tenacity's ``@retry`` (3 attempts, exponential wait
0.1 s doubling up to 10 s, like buttress's defaults), circuitbreaker's decorator, ``async with
asyncio.Semaphore(100)``, and ``try``/``except`` returning ``None``.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from bench._harness import Contender, Ctx, Prepared, Target, TimingScenario, async_calls

__all__ = ["SCENARIOS"]


async def af() -> int:
    return 1


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)


def _buttress(ctx: Ctx) -> Prepared:
    from buttress.breaker import BreakerState, CircuitBreaker
    from buttress.bulkhead import Bulkhead
    from buttress.fallback import Fallback
    from buttress.pipeline import Pipeline
    from buttress.retry import Retry
    from buttress.timeout import Timeout

    breaker = CircuitBreaker("x")
    retry = Retry(on=ConnectionError)
    fallback = Fallback(value=None)
    p = Pipeline(Timeout(5), retry, breaker, Bulkhead(100), fallback)
    _check(ctx.run(p.acall(af)) == 1, "wrong result")

    def verify() -> None:
        _check(breaker.state is BreakerState.CLOSED, "breaker left CLOSED")
        _check(retry.retries == 0 and fallback.used == 0, "retried or fell back")

    return Prepared(async_calls(p.acall, af), verify)


def _alone(which: str) -> Callable[[Ctx], Prepared]:
    """One of the pipeline's policies on its own, to show where the pipeline's time goes."""

    def setup(ctx: Ctx) -> Prepared:
        from buttress.breaker import CircuitBreaker
        from buttress.bulkhead import Bulkhead
        from buttress.fallback import Fallback
        from buttress.retry import Retry
        from buttress.timeout import Timeout

        makers: dict[str, Callable[[], Any]] = {
            "Timeout": lambda: Timeout(5),
            "Retry": lambda: Retry(on=ConnectionError),
            "CircuitBreaker": lambda: CircuitBreaker("x"),
            "Bulkhead": lambda: Bulkhead(100),
            "Fallback": lambda: Fallback(value=None),
        }
        policy = makers[which]()
        return Prepared(async_calls(policy.acall, af))

    return setup


def _peers(ctx: Ctx) -> Prepared:
    import circuitbreaker
    import tenacity

    semaphore = asyncio.Semaphore(100)
    breaker = circuitbreaker.CircuitBreaker(name="bench-pipeline")

    async def guarded() -> int | None:
        async with semaphore:
            try:
                return await af()
            except Exception:
                return None

    retried = tenacity.retry(
        retry=tenacity.retry_if_exception_type(ConnectionError),
        stop=tenacity.stop_after_attempt(3),
        wait=tenacity.wait_exponential(multiplier=0.1, max=10),
        reraise=True,
    )(breaker(guarded))

    async def stack() -> Any:
        async with asyncio.timeout(5):
            return await retried()

    _check(ctx.run(stack()) == 1, "wrong result")
    return Prepared(async_calls(stack), lambda: _check(breaker.closed, "breaker left CLOSED"))


PARTS = ("Timeout", "Retry", "CircuitBreaker", "Bulkhead", "Fallback")

PIPELINE = TimingScenario(
    name="pipeline.async",
    title="five-policy asyncio pipeline (timeout, retry, breaker, bulkhead, fallback), success",
    contenders=(
        Contender(
            "buttress Pipeline",
            "buttress",
            "await Pipeline(Timeout, Retry, CircuitBreaker, Bulkhead, Fallback).acall(af)",
            _buttress,
            True,
        ),
        Contender(
            "peer stack",
            "tenacity+circuitbreaker",
            "asyncio.timeout > tenacity @retry > circuitbreaker @ > Semaphore > try/except",
            _peers,
            True,
        ),
        *(
            Contender(
                f"{name} alone", "buttress", f"await {name}(...).acall(af)", _alone(name), True
            )
            for name in PARTS
        ),
    ),
    targets=(
        Target("buttress Pipeline", None, 2500.0),
        Target("buttress Pipeline", "peer stack", 0.125),
    ),
    notes=("the 'alone' rows: each buttress policy by itself, for where the time goes",),
)

SCENARIOS = (PIPELINE,)
