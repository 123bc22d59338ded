"""The contract: the same decisions at the same times give the same answers in memory and on
Redis. The Redis limiters here run their scripts on the test's ManualClock (the test-only time
override), so each decision is replayed at exactly the time the in-memory limiter saw.

Times move in steps of 1/64 s and rates are powers of two, so every time and interval is exact
both in seconds (memory) and in whole microseconds (Redis); the answers must then agree to the
microsecond, which is the server clock's resolution.
"""

from __future__ import annotations

import math
from collections.abc import Callable

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buttress.ratelimit import (
    GCRA,
    Algorithm,
    Decision,
    FixedWindow,
    LeakyBucket,
    RateLimiter,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from buttress.testing import ManualClock
from tests.ratelimit.redis_support import START, on_redis, redis_store

STEP = 1 / 64
RATES = st.sampled_from([1.0, 2.0, 4.0, 8.0, 16.0])
WINDOWS = st.sampled_from([0.5, 1.0, 2.0])
BURSTS = st.integers(1, 6)
COSTS = st.sampled_from([1, 1, 1, 2, 3, 0.5])
ARRIVALS = st.lists(
    st.tuples(st.integers(0, 40), COSTS, st.sampled_from(["a", "b"])), min_size=1, max_size=30
)

ALGORITHMS: dict[str, Callable[[float, int, float], Algorithm]] = {
    "TokenBucket": lambda rate, n, window: TokenBucket(rate, n),
    "LeakyBucket": lambda rate, n, window: LeakyBucket(rate, n),
    "GCRA": lambda rate, n, window: GCRA(rate, n),
    "FixedWindow": lambda rate, n, window: FixedWindow(n, window),
    "SlidingWindowLog": lambda rate, n, window: SlidingWindowLog(n, window),
    "SlidingWindowCounter": lambda rate, n, window: SlidingWindowCounter(n, window),
}
SETTINGS = settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def same(memory: Decision, redis: Decision) -> bool:
    """Equal, with times compared to the microsecond."""
    if memory.allowed != redis.allowed or memory.remaining != redis.remaining:
        return False
    if math.isinf(memory.retry_after) or math.isinf(redis.retry_after):
        return memory.retry_after == redis.retry_after
    return (
        abs(memory.retry_after - redis.retry_after) <= 1e-6
        and abs(memory.reset_after - redis.reset_after) <= 1e-6
        and memory.limit == redis.limit
    )


@pytest.mark.parametrize("kind", list(ALGORITHMS))
@SETTINGS
@given(rate=RATES, n=BURSTS, window=WINDOWS, arrivals=ARRIVALS)
def test_redis_answers_like_memory(
    kind: str, rate: float, n: int, window: float, arrivals: list[tuple[int, float, str]]
) -> None:
    """Every decision of a random arrival sequence is the same in memory and on Redis."""
    algorithm = ALGORITHMS[kind](rate, n, window)
    clock = ManualClock(START)
    memory = RateLimiter(algorithm, name="memory", clock=clock)
    with redis_store() as store:
        shared = on_redis(algorithm, store, clock)
        for gap, cost, key in arrivals:
            clock.advance(gap * STEP)
            expected = memory.peek(key, cost)
            assert same(expected, shared.peek(key, cost)), (clock.monotonic(), key, cost)
            want, got = memory.try_acquire(key, cost), shared.try_acquire(key, cost)
            assert same(want, got), (clock.monotonic(), key, cost, want, got)
        assert shared.snapshot().allowed == memory.snapshot().allowed


@pytest.mark.parametrize("kind", list(ALGORITHMS))
@SETTINGS
@given(rate=RATES, n=BURSTS, window=WINDOWS, arrivals=ARRIVALS)
def test_retry_after_is_exact_on_the_server_clock(
    kind: str, rate: float, n: int, window: float, arrivals: list[tuple[int, float, str]]
) -> None:
    """After a refusal, the server refuses one microsecond before retry_after and admits at it."""
    algorithm = ALGORITHMS[kind](rate, n, window)
    clock = ManualClock(START)
    with redis_store() as store:
        shared = on_redis(algorithm, store, clock)
        for gap, cost, key in arrivals:
            clock.advance(gap * STEP)
            decision = shared.try_acquire(key, cost)
            if decision.allowed or decision.exceeds_capacity:
                continue
            wait = decision.retry_after
            assert wait > 0
            assert abs(round(wait * 1e6) - wait * 1e6) < 1e-6  # whole microseconds
            clock.advance(wait - 1e-6)
            assert not shared.peek(key, cost).allowed
            clock.advance(1e-6)
            assert shared.try_acquire(key, cost).allowed


@pytest.mark.parametrize("kind", list(ALGORITHMS))
def test_a_refusal_consumes_nothing_on_redis(kind: str) -> None:
    """Refused requests (too large now, or larger than the capacity) leave the quota as it was."""
    algorithm = ALGORITHMS[kind](4.0, 4, 1.0)
    clock = ManualClock(START)
    with redis_store() as store:
        shared = on_redis(algorithm, store, clock)
        assert shared.try_acquire("k", 3).allowed
        before = shared.peek("k", 1)
        assert not shared.try_acquire("k", 2).allowed
        never = shared.try_acquire("k", 5)
        assert never.exceeds_capacity
        assert never.reason == "cost exceeds capacity"
        assert shared.peek("k", 1) == before
        assert shared.try_acquire("k", 1).allowed


@pytest.mark.parametrize("kind", list(ALGORITHMS))
def test_cost_above_capacity_is_never_allowed_even_when_idle(kind: str) -> None:
    """A fresh key refuses a cost above the capacity with retry_after = inf."""
    algorithm = ALGORITHMS[kind](4.0, 4, 1.0)
    with redis_store() as store:
        shared = on_redis(algorithm, store, ManualClock(START))
        decision = shared.try_acquire("fresh", 4.5)
        assert not decision.allowed
        assert decision.retry_after == math.inf
        assert decision.remaining == 4
