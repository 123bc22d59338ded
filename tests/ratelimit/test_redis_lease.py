"""Lease mode: blocks of units taken from Redis and served locally. The bound on over-admission
(N processes holding blocks of at most B units admit at most N * B more than the algorithm's
definition allows in any window) is checked on random arrivals; every "process" here is its own
limiter with its own leases, all on one key, on the test's ManualClock (server time override)."""

from __future__ import annotations

import asyncio
import math

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buttress.ratelimit import FixedWindow, SlidingWindowLog, TokenBucket
from buttress.ratelimit._redis import RedisRateLimiter
from buttress.testing import ManualClock
from tests.ratelimit.redis_support import START, on_redis, redis_store, unique_name

SETTINGS = settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.too_slow])
STEP = 1 / 64
ARRIVALS = st.lists(
    st.tuples(st.integers(0, 3), st.integers(0, 2), st.integers(1, 12)), min_size=5, max_size=60
)
"""(gap in steps, which process, how many requests in a row)."""


def fleet(algorithm: object, store: object, clock: ManualClock, n: int, lease: float) -> list:
    """``n`` lease-mode limiters of one name: n processes sharing one quota."""
    name = unique_name()
    return [on_redis(algorithm, store, clock, name=name, lease=lease) for _ in range(n)]  # type: ignore[arg-type]


def replay(limiters: list[RedisRateLimiter], clock: ManualClock, arrivals: list) -> list[float]:
    """Run the arrivals; the times of the admitted requests."""
    admitted: list[float] = []
    for gap, who, count in arrivals:
        clock.advance(gap * STEP)
        for _ in range(count):
            if limiters[who].allow("hot"):
                admitted.append(clock.monotonic())
    return admitted


@SETTINGS
@given(arrivals=ARRIVALS)
def test_a_bucket_over_admits_at_most_n_blocks(arrivals: list) -> None:
    """In every interval of t seconds, admitted <= burst + rate * t + N * B."""
    bucket = TokenBucket(rate=64, burst=100)
    clock = ManualClock(START)
    with redis_store() as store:
        limiters = fleet(bucket, store, clock, 3, lease=0.1)
        block = limiters[0]._book.max_block  # type: ignore[union-attr]
        assert block == 10
        times = replay(limiters, clock, arrivals)
        worst = -math.inf
        lowest = math.inf
        for j, t in enumerate(times):
            lowest = min(lowest, j - 64 * t)  # i - rate * t_i over i <= j
            worst = max(worst, (j - 64 * t) - lowest + 1)
        assert worst <= 100 + 3 * block


@SETTINGS
@given(arrivals=ARRIVALS)
def test_a_sliding_log_over_admits_at_most_n_blocks(arrivals: list) -> None:
    """In every window (t - W, t], admitted <= limit + N * B."""
    log = SlidingWindowLog(50, 1.0)
    clock = ManualClock(START)
    with redis_store() as store:
        limiters = fleet(log, store, clock, 3, lease=0.1)
        times = replay(limiters, clock, arrivals)
        start = 0
        for end, t in enumerate(times):
            while times[start] <= t - 1.0:
                start += 1
            assert end - start + 1 <= 50 + 3 * 5


def test_decisions_are_served_locally_from_the_block() -> None:
    """Once the block has grown, most decisions need no round trip, and none is lost."""
    clock = ManualClock(START)
    with redis_store() as store:
        limiter = on_redis(TokenBucket(1000, 10_000), store, clock, lease=True)
        assert all(limiter.allow("k") for _ in range(10_000))
        channel = limiter._channel
        book = limiter._book
        assert book is not None
        assert book.leases["k"].block == book.max_block == 100
        assert channel is not None
        assert channel.round_trips <= 10_000 // 100 + 10
        assert limiter.snapshot().allowed == 10_000


def test_unused_units_go_back_on_close() -> None:
    """close() returns the block's unused units: the shared quota shows only what was used."""
    clock = ManualClock(START)
    with redis_store() as store:
        name = unique_name()
        limiter = on_redis(FixedWindow(1000, 60), store, clock, name=name, lease=0.05)
        for _ in range(40):
            assert limiter.allow("k")
        watcher = on_redis(FixedWindow(1000, 60), store, clock, name=name)
        assert watcher.peek("k").remaining < 1000 - 40 - 1  # a block is held
        limiter.close()
        assert watcher.peek("k").remaining == 1000 - 40 - 1  # peek counts its own unit


def test_a_refused_refill_is_remembered_until_its_retry_after() -> None:
    """After Redis refuses a refill, the process refuses locally until retry_after has passed."""
    clock = ManualClock(START)
    with redis_store() as store:
        limiter = on_redis(FixedWindow(5, 10), store, clock, lease=True)
        assert sum(limiter.allow("k") for _ in range(5)) == 5
        channel = limiter._channel
        assert channel is not None
        trips = channel.round_trips
        refusals = [limiter.try_acquire("k") for _ in range(50)]
        assert not any(d.allowed for d in refusals)
        assert channel.round_trips == trips + 1
        assert 0 < refusals[-1].retry_after <= 10
        clock.advance(refusals[-1].retry_after)
        assert limiter.allow("k")


def test_an_expired_block_is_not_served() -> None:
    """Units held past the lease's ttl are not admitted locally: they go back to Redis with the
    next refill, which asks for what is free there."""
    clock = ManualClock(START)
    with redis_store() as store:
        name = unique_name()
        limiter = on_redis(FixedWindow(3, 1), store, clock, name=name, lease=1.0)
        assert limiter.allow("k")
        assert limiter.allow("k")
        book, channel = limiter._book, limiter._channel
        assert book is not None
        assert channel is not None
        assert book.leases["k"].tokens == 1
        trips = channel.round_trips
        clock.advance(book.ttl)
        assert limiter.allow("k")
        assert channel.round_trips == trips + 1  # not served from the expired block
        watcher = on_redis(FixedWindow(3, 1), store, clock, name=name)
        assert watcher.peek("k").remaining == 0  # three used; the held unit came back and went


async def test_tasks_share_one_refill() -> None:
    """Many tasks hitting an empty block wait for one refill instead of each asking Redis."""
    clock = ManualClock(START)
    with redis_store() as store:
        limiter = on_redis(TokenBucket(100, 10_000), store, clock, lease=True)
        try:
            assert all(await asyncio.gather(*(limiter.aallow("k") for _ in range(200))))
            channel = limiter._achannels[asyncio.get_running_loop()]
            assert channel.round_trips <= 12  # blocks of 1, 2, 4, ... 100
        finally:
            await limiter.aclose()
