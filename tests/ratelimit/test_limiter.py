"""RateLimiter: keys, exact retries on a clock, idle keys swept, counters, events, the policy."""

from __future__ import annotations

import math
import threading
from typing import Any

import pytest

from buttress.errors import ConfigError, RateLimitedError, RejectedError
from buttress.events import RateLimited
from buttress.pipeline import Pipeline
from buttress.ratelimit import (
    GCRA,
    FixedWindow,
    RateLimiter,
    RateLimiterSnapshot,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from buttress.retry import Backoff, Retry
from buttress.testing import ManualClock, RecordingListener
from tests.conftest import run

ALGORITHMS = [
    lambda: TokenBucket("2/s", burst=2),
    lambda: GCRA(2, burst=2),
    lambda: FixedWindow(2, 1),
    lambda: SlidingWindowLog(2, 1),
    lambda: SlidingWindowCounter(2, 1),
]


def limiter(algorithm: Any = None, clock: ManualClock | None = None, **kw: Any) -> RateLimiter:
    """A limiter of 2 per second (token bucket unless told) on a manual clock."""
    return RateLimiter(
        algorithm or TokenBucket(2, 2), name="api", clock=clock or ManualClock(), **kw
    )


@pytest.mark.parametrize("build", ALGORITHMS)
def test_keys_have_separate_quotas(build: Any) -> None:
    """Each key has its own quota; exhausting one leaves the others whole."""
    lim = limiter(build())
    assert [lim.allow("a") for _ in range(3)] == [True, True, False]
    assert lim.try_acquire("b").allowed
    assert lim.try_acquire("b").allowed
    assert not lim.try_acquire("b").allowed
    assert lim.allow(("tenant", 7))  # any hashable key


@pytest.mark.parametrize("build", ALGORITHMS)
def test_waiting_retry_after_on_the_clock_succeeds_and_a_moment_less_does_not(build: Any) -> None:
    """After a refusal, advancing the clock by retry_after admits; a microsecond less does not."""
    outcomes = []
    for shorter in (1e-6, 0.0):
        clock = ManualClock(start=12.3)
        lim = limiter(build(), clock)
        lim.allow(cost=2)
        decision = lim.try_acquire()
        assert not decision.allowed
        assert decision.retry_after > 0
        clock.advance(decision.retry_after - shorter)
        outcomes.append(lim.try_acquire().allowed)
    assert outcomes == [False, True]


def test_refusals_consume_nothing() -> None:
    """Hammering a limited key does not push its recovery back."""
    clock = ManualClock()
    lim = limiter(TokenBucket(1, 1), clock)
    assert lim.allow()
    first = lim.try_acquire()
    for _ in range(100):
        assert not lim.allow()
        assert not lim.try_acquire().allowed
    clock.advance(first.retry_after)
    assert lim.allow()


def test_peek_answers_without_taking() -> None:
    """peek() tells what try_acquire would answer and takes nothing."""
    lim = limiter()
    assert lim.peek(cost=2).allowed
    assert lim.peek(cost=2).allowed
    assert lim.try_acquire(cost=2).allowed
    assert not lim.peek().allowed
    assert lim.snapshot().allowed == 1


@pytest.mark.parametrize("bad", [0, -1, math.nan])
def test_bad_costs_are_refused_loudly(bad: float) -> None:
    """A cost that is not > 0 raises ConfigError naming the cost."""
    lim = limiter()
    for method in (lim.allow, lim.try_acquire, lim.peek, lim.acquire):
        with pytest.raises(ConfigError, match="cost"):
            method("", bad)


def test_cost_above_capacity_says_never() -> None:
    """try_acquire answers retry_after=inf; acquire raises at once instead of waiting forever."""
    clock = ManualClock()
    lim = limiter(TokenBucket(2, 2), clock)
    decision = lim.try_acquire(cost=3)
    assert not decision.allowed
    assert decision.exceeds_capacity
    assert not lim.allow(cost=3)
    with pytest.raises(RateLimitedError) as info:
        lim.acquire(cost=3)
    assert info.value.retry_after == math.inf
    assert clock.sleeps == []
    assert lim.allow(cost=2)  # nothing was taken


def test_options_are_checked() -> None:
    """A non-algorithm, an empty name, a bad max_wait or a shared store raise ConfigError."""
    with pytest.raises(ConfigError, match="algorithm"):
        RateLimiter("10/s", name="x")  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match="name"):
        RateLimiter(TokenBucket(1, 1), name="")
    with pytest.raises(ConfigError, match="max_wait"):
        RateLimiter(TokenBucket(1, 1), name="x", max_wait=-1)
    with pytest.raises(ConfigError, match="store"):
        RateLimiter(TokenBucket(1, 1), name="x", store=object())


def test_idle_keys_are_swept_and_memory_follows_active_keys() -> None:
    """Keys whose state is whole again are dropped, so the table tracks the active keys only."""
    clock = ManualClock()
    lim = limiter(TokenBucket(1, 5), clock)
    for round_ in range(20):
        for i in range(3000):
            assert lim.allow(f"{round_}-{i}")
        clock.advance(10.0)  # every bucket is whole again
        assert lim.snapshot().keys <= 2 * 3000 + 1024
    lim.allow("late")
    assert lim.snapshot().keys <= 2 * 3000 + 1024


def test_active_keys_are_never_swept() -> None:
    """A sweep keeps every key that still limits something."""
    clock = ManualClock()
    lim = limiter(TokenBucket(0.001, 1), clock)
    for i in range(5000):
        assert lim.allow(i)
    clock.advance(1.0)
    for i in range(5000):
        assert not lim.allow(i)
    assert lim.snapshot().keys == 5000


def test_snapshot_counts_and_reset() -> None:
    """snapshot() counts decisions; reset(key) and reset() make quotas whole again."""
    lim = limiter()
    lim.allow("a", 2)
    lim.allow("a")
    lim.try_acquire("b", 2)
    snap = lim.snapshot()
    assert snap == RateLimiterSnapshot(
        "api", {"algorithm": "TokenBucket", "rate": 2.0, "burst": 2.0}, 2, 0, 2, 1
    )
    lim.reset("a")
    assert lim.allow("a", 2)
    assert not lim.allow("b")
    lim.reset()
    assert lim.allow("b", 2)


def test_refusals_are_reported_at_most_once_a_second_without_keys() -> None:
    """A RateLimited event reports the refusals of each second; keys never appear in it."""
    clock = ManualClock()
    lim = limiter(TokenBucket(1, 1), clock)
    with RecordingListener() as recorded:
        lim.allow("secret-token")
        for _ in range(5):
            lim.allow("secret-token")
        clock.advance(0.5)
        lim.try_acquire("secret-token")
        clock.advance(0.6)
        lim.allow("secret-token", 1)  # admitted: no event
        lim.allow("secret-token")
    reports = recorded.of(RateLimited)
    assert [r.refused for r in reports] == [1, 6]
    assert reports[0].retry_after == pytest.approx(1.0)
    assert reports[0].source == "api"
    assert all("secret-token" not in str(r.to_dict()) + r.message() for r in reports)


def test_threads_never_over_admit() -> None:
    """Eight threads racing on one window admit exactly its limit."""
    lim = RateLimiter(FixedWindow(1000, 3600), name="threads")
    admitted = [0] * 8

    def worker(index: int) -> None:
        for _ in range(400):
            if lim.allow():
                admitted[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sum(admitted) == 1000
    assert lim.snapshot().refused == 8 * 400 - 1000


# -- the policy ----------------------------------------------------------------------------------


async def test_policy_runs_or_raises_rate_limited(mode: str) -> None:
    """As a policy, a free unit runs the call; a refusal raises RateLimitedError (retry_after)."""
    lim = limiter(TokenBucket(2, 2))
    assert await run(mode, lim, lambda: "ok") == "ok"
    assert await run(mode, lim, lambda: "ok") == "ok"
    calls: list[int] = []
    with pytest.raises(RateLimitedError) as first:
        await run(mode, lim, calls.append, 1)
    with pytest.raises(RateLimitedError) as second:
        await run(mode, lim, calls.append, 1)
    assert calls == []
    assert first.value is not second.value
    assert isinstance(first.value, RejectedError)
    assert first.value.source == "api"
    assert first.value.retry_after == pytest.approx(0.5)
    assert "rate limited" in str(first.value)


async def test_policy_waits_up_to_max_wait(mode: str) -> None:
    """With max_wait, a call waits its turn (in virtual time) instead of failing."""
    clock = ManualClock()
    lim = limiter(TokenBucket(2, 1), clock, max_wait=1.0)
    assert await run(mode, lim, lambda: 1) == 1
    assert await run(mode, lim, lambda: 2) == 2
    assert clock.sleeps == [pytest.approx(0.5)]
    assert (lim.snapshot().allowed, lim.snapshot().refused) == (2, 0)  # a wait is no refusal
    slow = limiter(TokenBucket(0.5, 1), ManualClock(), max_wait=1.0)
    await run(mode, slow, lambda: 1)
    with pytest.raises(RateLimitedError) as info:
        await run(mode, slow, lambda: 2)
    assert info.value.retry_after == pytest.approx(2.0)


async def test_decorator_limits_sync_and_async_functions() -> None:
    """@limiter wraps sync and async functions, keeping their names."""
    lim = limiter(TokenBucket(1, 1))

    @lim
    def ping() -> str:
        return "pong"

    @lim
    async def aping() -> str:
        return "apong"

    assert ping() == "pong"
    assert ping.__name__ == "ping"
    with pytest.raises(RateLimitedError):
        await aping()
    lim.reset()
    assert await aping() == "apong"


async def test_retry_waits_exactly_retry_after(mode: str) -> None:
    """Retry honours the refusal's retry_after: it sleeps exactly that long, then succeeds."""
    clock = ManualClock(start=3.7)
    lim = RateLimiter(GCRA("3/s", burst=1), name="api", clock=clock)
    retry = Retry(on=RateLimitedError, attempts=2, backoff=Backoff.constant(0), clock=clock)
    pipeline = Pipeline(retry, lim)
    assert await run(mode, pipeline, lambda: 1) == 1
    expected = lim.peek().retry_after
    assert await run(mode, pipeline, lambda: 2) == 2
    assert clock.sleeps == [expected]
    assert expected == pytest.approx(1 / 3)


def test_describe_lists_the_algorithm() -> None:
    """describe() gives the policy, its name and the algorithm's options as plain data."""
    lim = RateLimiter(SlidingWindowCounter(100, "1 minute"), name="api", max_wait=0.5)
    assert lim.describe() == {
        "policy": "RateLimiter",
        "name": "api",
        "options": {
            "algorithm": {"algorithm": "SlidingWindowCounter", "limit": 100, "window": 60.0},
            "max_wait": 0.5,
        },
    }
    assert "SlidingWindowCounter" in repr(lim)


def test_owner_thread_decides_without_the_lock() -> None:
    """The first thread to decide owns the table: its decisions never wait for the lock."""
    lim = limiter(FixedWindow(10, 1))
    assert lim.allow()
    lim._lock.acquire()  # held by "someone else": the owner must not need it
    try:
        assert lim.allow()
        assert lim.allow(cost=8)
        assert not lim.allow()
    finally:
        lim._lock.release()
    assert lim.snapshot().allowed == 3


def _race(lim: RateLimiter, workers: int, calls: int, join_at: int) -> list[int]:
    """Worker 0 (the owner) calls alone at first; at call ``join_at`` the others start."""
    admitted = [0] * workers
    start = threading.Barrier(workers)

    def worker(index: int) -> None:
        if index:
            start.wait()
        for n in range(calls):
            if index == 0 and n == join_at:
                start.wait()
            if lim.allow():
                admitted[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(workers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return admitted


def test_second_thread_shares_the_table_and_counts_stay_exact() -> None:
    """When other threads join an owner mid-stream, no admission is lost or doubled."""
    for _ in range(5):
        lim = RateLimiter(FixedWindow(3000, 3600), name="threads")
        assert sum(_race(lim, 5, 1000, join_at=50)) == 3000
        snap = lim.snapshot()
        assert (snap.allowed, snap.refused) == (3000, 2000)
