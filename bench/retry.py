"""Retries: the success on the first attempt, and the library's cost per failed attempt.

backoff only exists as a decorator, so buttress is compared with it decorated vs decorated;
buttress's ``.call`` rows are reported too. Every library is configured for three attempts on
the success path.

The failure scenarios call a function that fails ``ATTEMPTS - 1`` times and then succeeds, with
a zero delay, and report ns per failed attempt (the call's time divided by ``ATTEMPTS - 1``;
nothing subtracted: the time includes the function raising its error and the final successful
attempt). backoff, tenacity and stamina call ``time.sleep(0)`` / ``asyncio.sleep(0)`` before
every retry even when the wait is zero (about 85 us for ``time.sleep(0)`` here), so during these
scenarios ``time.sleep`` and ``asyncio.sleep`` are replaced by counting no-ops, for everybody;
buttress never sleeps on a zero delay, which is checked.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

from bench._harness import Contender, Ctx, Prepared, Target, TimingScenario, async_calls, sync_calls

__all__ = ["ATTEMPTS", "SCENARIOS"]

ATTEMPTS = 10  # per call: 9 failed attempts, then a success
_SUCCESS_ATTEMPTS = 3


def f() -> int:
    return 1


async def af() -> int:
    return 1


def _check(ok: bool, what: str) -> None:
    if not ok:
        raise AssertionError(what)


# -- success on the first attempt ---------------------------------------------------------------


def _b_call(ctx: Ctx, is_async: bool) -> Prepared:
    from buttress.retry import Retry

    r = Retry(on=Exception, attempts=_SUCCESS_ATTEMPTS)
    sample = async_calls(r.acall, af) if is_async else sync_calls(r.call, f)
    return Prepared(sample, lambda: _check(r.retries == 0 and r.successes > 0, "retried"))


def _b_deco(ctx: Ctx, is_async: bool) -> Prepared:
    from buttress.retry import Retry

    r = Retry(on=Exception, attempts=_SUCCESS_ATTEMPTS)
    sample = async_calls(r(af)) if is_async else sync_calls(r(f))
    return Prepared(sample, lambda: _check(r.retries == 0 and r.successes > 0, "retried"))


def _backoff_deco(ctx: Ctx, is_async: bool) -> Prepared:
    import backoff

    deco = backoff.on_exception(backoff.expo, Exception, max_tries=_SUCCESS_ATTEMPTS)
    return Prepared(async_calls(deco(af)) if is_async else sync_calls(deco(f)))


def _tenacity_deco(ctx: Ctx, is_async: bool) -> Prepared:
    import tenacity

    deco = tenacity.retry(
        retry=tenacity.retry_if_exception_type(Exception),
        stop=tenacity.stop_after_attempt(_SUCCESS_ATTEMPTS),
        wait=tenacity.wait_exponential(multiplier=0.1, max=10),
    )
    return Prepared(async_calls(deco(af)) if is_async else sync_calls(deco(f)))


def _stamina_deco(ctx: Ctx, is_async: bool) -> Prepared:
    import stamina

    deco = stamina.retry(on=Exception, attempts=_SUCCESS_ATTEMPTS)
    return Prepared(async_calls(deco(af)) if is_async else sync_calls(deco(f)))


# -- cost per failed attempt ------------------------------------------------------------------


class Sleeps:
    """Counts the sleeps the libraries ask for while sleeping is patched out."""

    calls = 0
    nonzero = 0


def _nosleep(seconds: float) -> None:
    Sleeps.calls += 1
    Sleeps.nonzero += seconds != 0


async def _anosleep(seconds: float, result: Any = None) -> Any:
    Sleeps.calls += 1
    Sleeps.nonzero += seconds != 0
    return result


@contextmanager
def no_sleeping() -> Iterator[dict[str, Any]]:
    """Replace ``time.sleep`` and ``asyncio.sleep`` by counting no-ops, for every library."""
    real_sleep, real_asleep = time.sleep, asyncio.sleep
    Sleeps.calls = Sleeps.nonzero = 0
    info: dict[str, Any] = {}
    time.sleep = _nosleep  # type: ignore[assignment]
    asyncio.sleep = _anosleep  # type: ignore[assignment]
    try:
        yield info
    finally:
        time.sleep, asyncio.sleep = real_sleep, real_asleep
        info["patched_sleep_calls"] = Sleeps.calls
        info["patched_nonzero_sleeps"] = Sleeps.nonzero


def flaky_pair() -> tuple[Callable[[], int], Callable[[], Any]]:
    """A sync and an async function that fail ``ATTEMPTS - 1`` times, then succeed, in turn."""
    fails = itertools.cycle([True] * (ATTEMPTS - 1) + [False]).__next__

    def flaky() -> int:
        if fails():
            raise ConnectionError("down")
        return 1

    async def aflaky() -> int:
        if fails():
            raise ConnectionError("down")
        return 1

    return flaky, aflaky


def _b_fail(ctx: Ctx, is_async: bool, decorated: bool) -> Prepared:
    from buttress.retry import Backoff, Retry

    r = Retry(on=ConnectionError, attempts=ATTEMPTS, backoff=Backoff.constant(0))
    flaky, aflaky = flaky_pair()
    fn: Any = aflaky if is_async else flaky
    before = Sleeps.calls
    call: Any = r(fn) if decorated else (r.acall if is_async else r.call)
    args = () if decorated else (fn,)
    result = ctx.run(call(*args)) if is_async else call(*args)
    _check(result == 1 and r.retries == ATTEMPTS - 1, "did not retry as expected")
    _check(Sleeps.calls == before, "buttress slept on a zero delay")

    def verify() -> None:
        _check(r.retries == (ATTEMPTS - 1) * r.successes, "retries do not add up")

    sample = async_calls(call, *args) if is_async else sync_calls(call, *args)
    return Prepared(sample, verify)


def _patched(ctx: Ctx, is_async: bool, fn: Any) -> Prepared:
    """The peer's sampler, after checking that its zero sleeps hit the patched no-ops."""
    before = Sleeps.calls
    _check((ctx.run(fn()) if is_async else fn()) == 1, "did not retry to success")
    _check(Sleeps.calls - before == ATTEMPTS - 1, "sleeps did not go to the patched no-op")
    return Prepared(async_calls(fn) if is_async else sync_calls(fn))


def _backoff_fail(ctx: Ctx, is_async: bool) -> Prepared:
    import backoff

    deco = backoff.on_exception(
        backoff.constant, ConnectionError, max_tries=ATTEMPTS, interval=0, jitter=None
    )
    flaky, aflaky = flaky_pair()
    return _patched(ctx, is_async, deco(aflaky) if is_async else deco(flaky))


def _tenacity_fail(ctx: Ctx, is_async: bool) -> Prepared:
    import tenacity

    deco = tenacity.retry(
        retry=tenacity.retry_if_exception_type(ConnectionError),
        stop=tenacity.stop_after_attempt(ATTEMPTS),
        wait=tenacity.wait_none(),
        reraise=True,
    )
    flaky, aflaky = flaky_pair()
    return _patched(ctx, is_async, deco(aflaky) if is_async else deco(flaky))


def _stamina_fail(ctx: Ctx, is_async: bool) -> Prepared:
    import stamina

    deco = stamina.retry(
        on=ConnectionError, attempts=ATTEMPTS, wait_initial=0, wait_max=0, wait_jitter=0
    )
    flaky, aflaky = flaky_pair()
    return _patched(ctx, is_async, deco(aflaky) if is_async else deco(flaky))


def _success(is_async: bool) -> TimingScenario:
    mode = "async" if is_async else "sync"
    a = is_async
    return TimingScenario(
        name=f"retry.success.{mode}",
        title=f"retry, success on the first attempt, {'asyncio' if a else 'sync'}",
        contenders=(
            Contender(
                f"buttress .{'acall' if a else 'call'}",
                "buttress",
                f"Retry(on=Exception, attempts=3).{'acall' if a else 'call'}(f)",
                lambda c: _b_call(c, a),
                a,
            ),
            Contender(
                "buttress @",
                "buttress",
                "@Retry(on=Exception, attempts=3)",
                lambda c: _b_deco(c, a),
                a,
            ),
            Contender(
                "backoff @",
                "backoff",
                "@on_exception(expo, Exception, max_tries=3)",
                lambda c: _backoff_deco(c, a),
                a,
            ),
            Contender(
                "tenacity @",
                "tenacity",
                "@retry(retry_if_exception_type, stop_after_attempt(3))",
                lambda c: _tenacity_deco(c, a),
                a,
            ),
            Contender(
                "stamina @",
                "stamina",
                "@retry(on=Exception, attempts=3)",
                lambda c: _stamina_deco(c, a),
                a,
            ),
        ),
        targets=(
            Target("buttress @", "backoff @", 0.1),
            Target("buttress @", "tenacity @", None),
            Target("buttress @", "stamina @", None),
        ),
        notes=("backoff: decorated vs decorated",),
    )


def _failure(is_async: bool) -> TimingScenario:
    mode = "async" if is_async else "sync"
    a = is_async
    return TimingScenario(
        name=f"retry.failure.{mode}",
        title=f"retry, cost per failed attempt, zero delay, {'asyncio' if a else 'sync'}",
        unit="failed attempt",
        ops=ATTEMPTS - 1,
        contenders=(
            Contender(
                f"buttress .{'acall' if a else 'call'}",
                "buttress",
                "Retry(on=ConnectionError, attempts=10, backoff=Backoff.constant(0))",
                lambda c: _b_fail(c, a, False),
                a,
            ),
            Contender(
                "buttress @",
                "buttress",
                "the same Retry as a decorator",
                lambda c: _b_fail(c, a, True),
                a,
            ),
            Contender(
                "backoff @",
                "backoff",
                "@on_exception(constant, ConnectionError, max_tries=10, interval=0, jitter=None)",
                lambda c: _backoff_fail(c, a),
                a,
            ),
            Contender(
                "tenacity @",
                "tenacity",
                "@retry(..., stop_after_attempt(10), wait_none())",
                lambda c: _tenacity_fail(c, a),
                a,
            ),
            Contender(
                "stamina @",
                "stamina",
                "@retry(on=ConnectionError, attempts=10, wait_*=0)",
                lambda c: _stamina_fail(c, a),
                a,
            ),
        ),
        targets=(
            Target("buttress @", "backoff @", 0.5),
            Target("buttress @", "tenacity @", None),
            Target("buttress @", "stamina @", None),
        ),
        notes=(
            f"a call = {ATTEMPTS - 1} failures (the function raises ConnectionError) + 1 success",
            "time.sleep / asyncio.sleep patched to counting no-ops for all (see info); "
            "buttress never calls them on a zero delay",
            "backoff: decorated vs decorated; logging disabled",
        ),
        context=no_sleeping,
    )


SCENARIOS = (_success(False), _success(True), _failure(False), _failure(True))
