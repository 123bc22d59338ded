"""Circuit breakers: the CLOSED success path and the OPEN rejection, sync and async.

Like with like: circuitbreaker's ``CircuitBreaker.call`` does not check whether the breaker is
open (only its decorator does), so buttress is compared with it decorated vs decorated.
pybreaker and aiobreaker are compared as wrappers (``.call(f)``), as are buttress's ``.call``
rows. purgatory is used through its documented decorator (which looks its breaker up on every
call). purgatory is left out of the OPEN scenarios: its rejection raises one shared exception
instance whose traceback grows with every raise, so a long loop would measure that growth.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from bench._harness import (
    Contender,
    Ctx,
    Prepared,
    Target,
    TimingScenario,
    async_calls,
    async_rejections,
    sync_calls,
    sync_rejections,
)

__all__ = ["SCENARIOS"]

HOUR = 3600.0  # open periods that outlast the whole run: an OPEN breaker stays OPEN


def f() -> int:
    return 1


async def af() -> int:
    return 1


class Boom(Exception):
    """The failure used to open breakers."""


class Flaky:
    """A function that fails while ``failing`` is set (used to open a breaker naturally)."""

    def __init__(self) -> None:
        self.failing = True

    def __call__(self) -> int:
        if self.failing:
            raise Boom
        return 1

    async def acall(self) -> int:
        if self.failing:
            raise Boom
        return 1


def _fail(call: Any, times: int) -> None:
    for _ in range(times):
        try:
            call()
        except Exception:
            pass


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)


# -- CLOSED, sync ------------------------------------------------------------------------------


def _b_call(ctx: Ctx) -> Prepared:
    from buttress.breaker import BreakerState, CircuitBreaker

    cb = CircuitBreaker("bench")
    return Prepared(
        sync_calls(cb.call, f), lambda: _check(cb.state is BreakerState.CLOSED, "not closed")
    )


def _b_deco(ctx: Ctx) -> Prepared:
    from buttress.breaker import BreakerState, CircuitBreaker

    cb = CircuitBreaker("bench")
    return Prepared(
        sync_calls(cb(f)), lambda: _check(cb.state is BreakerState.CLOSED, "not closed")
    )


def _cb_deco(ctx: Ctx) -> Prepared:
    import circuitbreaker

    cb = circuitbreaker.CircuitBreaker(name="bench-closed-sync")
    return Prepared(sync_calls(cb(f)), lambda: _check(cb.closed, "not closed"))


def _cb_call(ctx: Ctx) -> Prepared:
    import circuitbreaker

    cb = circuitbreaker.CircuitBreaker(name="bench-closed-sync-call")
    return Prepared(sync_calls(cb.call, f), lambda: _check(cb.closed, "not closed"))


def _pyb_call(ctx: Ctx) -> Prepared:
    import pybreaker

    cb = pybreaker.CircuitBreaker()
    return Prepared(sync_calls(cb.call, f), lambda: _check(cb.current_state == "closed", "state"))


def _purg_deco(ctx: Ctx) -> Prepared:
    import purgatory

    factory = purgatory.SyncCircuitBreakerFactory()
    return Prepared(sync_calls(factory("bench")(f)))


def _aiob_call(ctx: Ctx) -> Prepared:
    import aiobreaker

    cb = aiobreaker.CircuitBreaker()
    return Prepared(sync_calls(cb.call, f))


# -- CLOSED, async -----------------------------------------------------------------------------


def _b_acall(ctx: Ctx) -> Prepared:
    from buttress.breaker import BreakerState, CircuitBreaker

    cb = CircuitBreaker("bench")
    return Prepared(
        async_calls(cb.acall, af), lambda: _check(cb.state is BreakerState.CLOSED, "not closed")
    )


def _b_adeco(ctx: Ctx) -> Prepared:
    from buttress.breaker import BreakerState, CircuitBreaker

    cb = CircuitBreaker("bench")
    return Prepared(
        async_calls(cb(af)), lambda: _check(cb.state is BreakerState.CLOSED, "not closed")
    )


def _cb_adeco(ctx: Ctx) -> Prepared:
    import circuitbreaker

    cb = circuitbreaker.CircuitBreaker(name="bench-closed-async")
    return Prepared(async_calls(cb(af)), lambda: _check(cb.closed, "not closed"))


def _purg_adeco(ctx: Ctx) -> Prepared:
    import purgatory

    factory = purgatory.AsyncCircuitBreakerFactory()
    ctx.run(factory.initialize())
    return Prepared(async_calls(factory("bench")(af)))


def _aiob_acall(ctx: Ctx) -> Prepared:
    import aiobreaker

    cb = aiobreaker.CircuitBreaker()
    return Prepared(async_calls(cb.call_async, af))


# -- OPEN --------------------------------------------------------------------------------------


def _b_open(ctx: Ctx, decorated: bool, is_async: bool) -> Prepared:
    from buttress import CircuitOpenError
    from buttress.breaker import BreakerState, CircuitBreaker

    cb = CircuitBreaker("bench", open_for=HOUR)
    flaky = Flaky()
    inner: Any = flaky.acall if is_async else flaky
    # The sampled form: the decorated function, or the policy's call with the function.
    fn, args = (cb(inner), ()) if decorated else (cb.acall if is_async else cb.call, (inner,))
    opener = (lambda: ctx.run(fn(*args))) if is_async else (lambda: fn(*args))
    _fail(opener, 10)  # minimum_calls failures: a failure rate of 1.0 opens it (not trip())
    _check(cb.state is BreakerState.OPEN, "did not open")
    flaky.failing = False
    rejections = async_rejections if is_async else sync_rejections
    return Prepared(
        rejections(fn, CircuitOpenError, *args),
        lambda: _check(cb.state is BreakerState.OPEN, "left OPEN"),
    )


def _cb_open(ctx: Ctx, is_async: bool) -> Prepared:
    import circuitbreaker

    cb = circuitbreaker.CircuitBreaker(
        recovery_timeout=HOUR, name=f"bench-open-{'async' if is_async else 'sync'}"
    )
    flaky = Flaky()
    fn: Any = cb(flaky.acall) if is_async else cb(flaky)
    _fail((lambda: ctx.run(fn())) if is_async else fn, 5)
    _check(cb.opened, "did not open")
    flaky.failing = False
    exc = circuitbreaker.CircuitBreakerError
    sample = async_rejections(fn, exc) if is_async else sync_rejections(fn, exc)
    return Prepared(sample, lambda: _check(cb.opened, "left OPEN"))


def _pyb_open(ctx: Ctx) -> Prepared:
    import pybreaker

    cb = pybreaker.CircuitBreaker(fail_max=5, reset_timeout=HOUR)
    flaky = Flaky()
    _fail(lambda: cb.call(flaky), 5)
    _check(cb.current_state == "open", "did not open")
    flaky.failing = False
    return Prepared(
        sync_rejections(cb.call, pybreaker.CircuitBreakerError, flaky),
        lambda: _check(cb.current_state == "open", "left OPEN"),
    )


def _aiob_open(ctx: Ctx, is_async: bool) -> Prepared:
    import aiobreaker

    cb = aiobreaker.CircuitBreaker(fail_max=5, timeout_duration=timedelta(seconds=HOUR))
    flaky = Flaky()
    if is_async:
        _fail(lambda: ctx.run(cb.call_async(flaky.acall)), 5)
    else:
        _fail(lambda: cb.call(flaky), 5)
    opened = aiobreaker.CircuitBreakerState.OPEN
    _check(cb.current_state is opened, "did not open")
    flaky.failing = False
    exc = aiobreaker.CircuitBreakerError
    sample = (
        async_rejections(cb.call_async, exc, flaky.acall)
        if is_async
        else sync_rejections(cb.call, exc, flaky)
    )
    return Prepared(sample, lambda: _check(cb.current_state is opened, "left OPEN"))


CLOSED_SYNC = TimingScenario(
    name="breaker.closed.sync",
    title="circuit breaker, CLOSED, success path, sync",
    contenders=(
        Contender("buttress .call", "buttress", "CircuitBreaker('x').call(f)", _b_call),
        Contender("buttress @", "buttress", "@CircuitBreaker('x') decorated f()", _b_deco),
        Contender(
            "circuitbreaker @", "circuitbreaker", "@CircuitBreaker() decorated f()", _cb_deco
        ),
        Contender(
            "circuitbreaker .call",
            "circuitbreaker",
            "CircuitBreaker().call(f) (no open check)",
            _cb_call,
        ),
        Contender("pybreaker .call", "pybreaker", "CircuitBreaker().call(f)", _pyb_call),
        Contender("purgatory @", "purgatory", "@SyncCircuitBreakerFactory()('x') f()", _purg_deco),
        Contender("aiobreaker .call", "aiobreaker", "CircuitBreaker().call(f)", _aiob_call),
    ),
    targets=(
        Target("buttress @", "circuitbreaker @", 0.33),
        Target("buttress .call", "pybreaker .call", 0.15),
        Target("buttress .call", "circuitbreaker @", None),
        Target("buttress .call", "circuitbreaker .call", None),
        Target("buttress .call", "purgatory @", None),
        Target("buttress .call", "aiobreaker .call", None),
    ),
    notes=("circuitbreaker: decorated vs decorated (its .call skips the open check)",),
)

CLOSED_ASYNC = TimingScenario(
    name="breaker.closed.async",
    title="circuit breaker, CLOSED, success path, asyncio",
    contenders=(
        Contender(
            "buttress .acall", "buttress", "await CircuitBreaker('x').acall(af)", _b_acall, True
        ),
        Contender(
            "buttress @", "buttress", "@CircuitBreaker('x') async def; await", _b_adeco, True
        ),
        Contender(
            "circuitbreaker @", "circuitbreaker", "@CircuitBreaker() async def", _cb_adeco, True
        ),
        Contender(
            "purgatory @", "purgatory", "@AsyncCircuitBreakerFactory()('x')", _purg_adeco, True
        ),
        Contender(
            "aiobreaker .call_async", "aiobreaker", "await cb.call_async(af)", _aiob_acall, True
        ),
    ),
    targets=(
        Target("buttress @", "circuitbreaker @", 0.4),
        Target("buttress .acall", "purgatory @", None),
        Target("buttress .acall", "aiobreaker .call_async", None),
    ),
    notes=("circuitbreaker: decorated vs decorated",),
)

OPEN_SYNC = TimingScenario(
    name="breaker.open.sync",
    title="circuit breaker, OPEN, rejection raised and caught in the loop, sync",
    contenders=(
        Contender(
            "buttress .call",
            "buttress",
            "cb.call(f) -> CircuitOpenError",
            lambda c: _b_open(c, False, False),
        ),
        Contender(
            "buttress @",
            "buttress",
            "decorated f() -> CircuitOpenError",
            lambda c: _b_open(c, True, False),
        ),
        Contender(
            "circuitbreaker @",
            "circuitbreaker",
            "decorated f() -> CircuitBreakerError",
            lambda c: _cb_open(c, False),
        ),
        Contender("pybreaker .call", "pybreaker", "cb.call(f) -> CircuitBreakerError", _pyb_open),
        Contender(
            "aiobreaker .call",
            "aiobreaker",
            "cb.call(f) -> CircuitBreakerError",
            lambda c: _aiob_open(c, False),
        ),
    ),
    targets=(
        Target("buttress @", "circuitbreaker @", 0.5),
        Target("buttress .call", "pybreaker .call", None),
        Target("buttress .call", "aiobreaker .call", None),
    ),
    notes=(
        "opened by real failures (buttress: 10 = minimum_calls; peers: 5), open for an hour",
        "purgatory left out: its rejection re-raises one shared instance (traceback grows)",
    ),
)

OPEN_ASYNC = TimingScenario(
    name="breaker.open.async",
    title="circuit breaker, OPEN, rejection raised and caught in the loop, asyncio",
    contenders=(
        Contender(
            "buttress .acall",
            "buttress",
            "await cb.acall(af) -> CircuitOpenError",
            lambda c: _b_open(c, False, True),
            True,
        ),
        Contender(
            "buttress @",
            "buttress",
            "await decorated af() -> CircuitOpenError",
            lambda c: _b_open(c, True, True),
            True,
        ),
        Contender(
            "circuitbreaker @",
            "circuitbreaker",
            "await decorated af() -> CircuitBreakerError",
            lambda c: _cb_open(c, True),
            True,
        ),
        Contender(
            "aiobreaker .call_async",
            "aiobreaker",
            "await cb.call_async(af) -> error",
            lambda c: _aiob_open(c, True),
            True,
        ),
    ),
    targets=(
        Target("buttress @", "circuitbreaker @", 0.5),
        Target("buttress .acall", "aiobreaker .call_async", None),
    ),
    notes=OPEN_SYNC.notes,
)

SCENARIOS = (CLOSED_SYNC, CLOSED_ASYNC, OPEN_SYNC, OPEN_ASYNC)
