"""Distributed rate limits on the real Redis, on the server's own clock: keys, expiry, counts
under concurrency (threads and asyncio), pipelined round trips, waiting, the policy, reset,
configuration errors, and local decisions while the store is down."""

from __future__ import annotations

import asyncio
import dataclasses
import math
import threading
import uuid

import pytest
import redis
from redis.crc import key_slot

from buttress import Pipeline, RateLimitedError
from buttress.errors import ConfigError
from buttress.events import Event, add_listener, remove_listener
from buttress.ratelimit import (
    GCRA,
    FixedWindow,
    RateLimiter,
    SlidingWindowCounter,
    SlidingWindowLog,
    TokenBucket,
)
from buttress.ratelimit._redis import RedisRateLimiter, server_time_override
from buttress.retry import Backoff, Retry
from buttress.stores import AsyncRedisStore, MemoryStore, RedisStore, Script
from buttress.testing import ManualClock
from tests.ratelimit.redis_support import START, on_redis, redis_store, unique_name
from tests.servers import redis_url, stopped_port

HOUR = 3600.0


def shared(limiter: RateLimiter) -> RedisRateLimiter:
    """The limiter, as the Redis limiter RateLimiter(store=...) built."""
    assert isinstance(limiter, RedisRateLimiter)
    return limiter


def test_a_store_makes_the_limiter_distributed() -> None:
    """Two limiters of one name and store (two processes) share one quota, on server time."""
    with redis_store() as store:
        name = unique_name()
        here = RateLimiter(FixedWindow(3, "1 hour"), name=name, store=store)
        there = RateLimiter(FixedWindow(3, "1 hour"), name=name, store=store)
        assert [here.allow("k"), there.allow("k"), here.allow("k"), there.allow("k")] == [
            True,
            True,
            True,
            False,
        ]
        refused = there.try_acquire("k")
        assert not refused.allowed
        assert HOUR - 5 < refused.retry_after <= HOUR
        assert refused.retry_after == round(refused.retry_after, 6)  # whole microseconds
        assert here.snapshot().allowed == 2
        assert there.snapshot().refused == 2
        here.close()
        there.close()


@pytest.mark.parametrize(
    ("algorithm", "parts", "idle_ms"),
    [
        (TokenBucket(10, 5), ("meter",), 500),
        (GCRA("1/minute", 2), ("meter",), 120_000),
        (FixedWindow(5, 60), ("fixed",), 60_000),
        (SlidingWindowCounter(5, 60), ("counter",), 120_000),
        (SlidingWindowLog(5, 60), ("log", "sum"), 60_000),
    ],
)
def test_keys_share_one_cluster_slot_and_expire_when_idle(
    algorithm: TokenBucket, parts: tuple[str, ...], idle_ms: int
) -> None:
    """A decision's keys carry the {ratelimit:name:key} hash tag (one slot) and PEXPIRE to
    the time the state is whole again."""
    with redis_store() as store:
        name = unique_name()
        limiter = RateLimiter(algorithm, name=name, store=store)
        for _ in range(5):
            limiter.allow("user-1")
        client = redis.Redis.from_url(redis_url())
        try:
            keys = sorted(k.decode() for k in client.keys(f"{store.layout.prefix}*"))
            tag = f"{store.layout.prefix}{{ratelimit:{name}:user-1}}"
            assert keys == sorted(f"{tag}:{part}" for part in parts)
            assert len({key_slot(k.encode()) for k in keys}) == 1
            for key in keys:
                assert idle_ms - 2000 < client.pttl(key) <= idle_ms
        finally:
            client.close()
        limiter.close()


def test_untrusted_keys_cannot_move_the_hash_tag() -> None:
    """Braces in a key are escaped, so a client cannot choose the slot or another key."""
    with redis_store() as store:
        limiter = RateLimiter(FixedWindow(1, 60), name=unique_name(), store=store)
        assert limiter.allow("}{evil")
        assert limiter.allow("}{evil2")
        assert not limiter.allow("}{evil")
        limiter.close()


def test_threads_never_exceed_the_limit() -> None:
    """Eight threads racing for one key are admitted exactly the limit in total."""
    with redis_store() as store:
        limiter = RateLimiter(FixedWindow(100, "1 hour"), name=unique_name(), store=store)
        admitted: list[bool] = []

        def work() -> None:
            for _ in range(30):
                admitted.append(limiter.allow("hot"))

        threads = [threading.Thread(target=work) for _ in range(8)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
        assert sum(admitted) == 100
        assert len(admitted) == 240
        assert limiter.snapshot().allowed == 100
        limiter.close()


async def test_concurrent_tasks_share_round_trips() -> None:
    """64 tasks deciding at once go to Redis in a few round trips, and exactly burst pass."""
    async with AsyncRedisStore(redis_url(), prefix=f"buttress-test:{uuid.uuid4().hex}:") as store:
        limiter = shared(RateLimiter(TokenBucket(1, 40), name=unique_name(), store=store))
        try:
            decisions = await asyncio.gather(*(limiter.atry_acquire("k") for _ in range(64)))
            assert sum(d.allowed for d in decisions) == 40
            channel = limiter._achannels[asyncio.get_running_loop()]
            assert channel.round_trips <= 3
            keyed = await asyncio.gather(*(limiter.aallow(f"user-{i % 8}") for i in range(64)))
            assert sum(keyed) == 64
            assert channel.round_trips <= 6
        finally:
            limiter.reset()
            await limiter.aclose()


async def test_a_sync_store_serves_asyncio_without_blocking() -> None:
    """Given a sync RedisStore, the asyncio methods open their own connection on the loop."""
    with redis_store() as store:
        limiter = RateLimiter(GCRA(1, 2), name=unique_name(), store=store)
        assert await limiter.aallow("a")
        assert await limiter.aallow("a")
        refused = await limiter.atry_acquire("a")
        assert not refused.allowed
        assert 0.9 < refused.retry_after <= 1.0
        assert (await limiter.apeek("b")).allowed
        await limiter.aclose()


def test_waiting_follows_arrival_order_on_server_time() -> None:
    """acquire() sleeps the exact retry_after of the server and is admitted when it ends."""
    clock = ManualClock(START)
    with redis_store() as store:
        limiter = on_redis(GCRA("4/s", burst=2), store, clock)
        limiter.acquire("p", 2)
        limiter.acquire("p")
        limiter.acquire("p")
        assert [round(s, 6) for s in clock.sleeps] == [0.25, 0.25]
        with pytest.raises(RateLimitedError) as raised:
            limiter.acquire("p", 2, timeout=0.1)
        assert raised.value.retry_after == pytest.approx(0.5)
        with pytest.raises(RateLimitedError) as never:
            limiter.acquire("p", 3)
        assert never.value.retry_after == math.inf


async def test_async_waiters_are_served_first_come_first_served() -> None:
    """Queued aacquire calls are admitted in arrival order; newcomers are refused meanwhile."""
    clock = ManualClock(START)
    with redis_store() as store:
        limiter = on_redis(GCRA("4/s", burst=2), store, clock)
        order: list[tuple[int, float]] = []

        async def send(n: int, cost: int) -> None:
            await limiter.aacquire("partner", cost=cost)
            order.append((n, round(clock.monotonic() - START, 2)))

        assert limiter.allow("partner")
        first = asyncio.ensure_future(send(0, 2))
        await asyncio.sleep(0)
        assert not (await limiter.atry_acquire("partner")).allowed  # the queue goes first
        await asyncio.gather(first, send(1, 1), send(2, 1))
        assert order == [(0, 0.25), (1, 0.5), (2, 0.75)]
        await limiter.aclose()


def test_the_policy_raises_with_retry_after_that_retry_honours() -> None:
    """As a pipeline policy a refusal raises RateLimitedError, and Retry waits it out."""
    clock = ManualClock(START)
    with redis_store() as store:
        quota = on_redis(TokenBucket("2/s", burst=1), store, clock)
        retry = Retry(on=RateLimitedError, attempts=3, backoff=Backoff.constant(0), clock=clock)
        geocode = Pipeline(retry, quota)
        assert geocode.call(lambda: "first") == "first"
        assert geocode.call(lambda: "second") == "second"
        assert [round(s, 6) for s in clock.sleeps] == [0.5]
        with pytest.raises(RateLimitedError):
            quota.call(lambda: None)


async def test_the_async_policy_decides_without_blocking() -> None:
    """acall takes its unit through the asyncio channel."""
    with redis_store() as store:
        quota = RateLimiter(FixedWindow(1, 60), name=unique_name(), store=store)

        async def work() -> str:
            return "done"

        assert await quota.acall(work) == "done"
        with pytest.raises(RateLimitedError) as raised:
            await quota.acall(work)
        assert 55 < raised.value.retry_after <= 60
        await quota.aclose()


def test_reset_makes_the_quota_whole_for_the_fleet() -> None:
    """reset(key) deletes one key's state, reset() every key of the limiter (and no other's)."""
    with redis_store() as store:
        name = unique_name()
        limiter = RateLimiter(FixedWindow(1, 60), name=name, store=store)
        other = RateLimiter(FixedWindow(1, 60), name=name + "x", store=store)
        assert limiter.allow("a")
        assert limiter.allow("b")
        assert other.allow("a")
        limiter.reset("a")
        assert limiter.allow("a")
        assert not limiter.allow("b")
        limiter.reset()
        assert limiter.allow("a")
        assert limiter.allow("b")
        assert not other.allow("a")
        limiter.close()
        other.close()


def test_a_flushed_script_cache_is_reloaded() -> None:
    """A script the server does not know (NOSCRIPT) is loaded and the call sent again."""
    with redis_store() as store:
        limiter = shared(RateLimiter(FixedWindow(2, 60), name=unique_name(), store=store))
        fresh = Script(
            limiter._plan.script.name, f"{limiter._plan.script.source}\n-- {uuid.uuid4()}"
        )
        limiter._plan = dataclasses.replace(limiter._plan, script=fresh)
        assert limiter.allow("k")
        assert limiter.allow("k")
        assert not limiter.allow("k")
        limiter.close()


def test_the_store_down_means_local_decisions_and_events() -> None:
    """Unreachable Redis: decisions are made locally, the snapshot says degraded, events say why."""
    clock = ManualClock(START)
    seen: list[Event] = []
    listener = seen.append  # one bound method: removed below by identity
    add_listener(listener)
    try:
        store = RedisStore(f"redis://:secret@127.0.0.1:{stopped_port()}/0", timeout=0.2)
        limiter = RateLimiter(FixedWindow(2, 60), name=unique_name(), store=store, clock=clock)
        assert [limiter.allow("k") for _ in range(3)] == [True, True, False]
        snap = limiter.snapshot()
        assert snap.degraded
        assert snap.degraded_reason
        assert "secret" not in snap.degraded_reason
        assert snap.store is not None
        assert "secret" not in snap.store
        assert [e.kind for e in seen] == ["fleet.degraded", "ratelimit.refused"]
        clock.advance(1.0)  # STORE_RETRY later it asks the store again (still down)
        assert not limiter.allow("k")
        limiter.close()
    finally:
        remove_listener(listener)


def test_bad_configuration_is_refused_at_construction() -> None:
    """Stores that are not Redis, a lease without a store, bad leases and bad keys raise."""
    with pytest.raises(ConfigError, match="store"):
        RateLimiter(FixedWindow(1, 1), name="x", store=MemoryStore())
    with pytest.raises(ConfigError, match="lease"):
        RateLimiter(FixedWindow(1, 1), name="x", lease=True)
    with redis_store() as store:
        with pytest.raises(ConfigError, match="lease"):
            RateLimiter(FixedWindow(1, 1), name="x", store=store, lease=2.0)
        limiter = RateLimiter(FixedWindow(1, 1), name="x", store=store)
        with pytest.raises(ConfigError, match="key"):
            limiter.try_acquire(("tuple", "key"))
        with pytest.raises(ConfigError, match="cost"):
            limiter.try_acquire("k", 0)
        limiter.close()


def test_a_url_works_as_the_store_and_describe_masks_it() -> None:
    """store="redis://..." is accepted; describe() and snapshot() never show the password."""
    url = redis_url()
    limiter = RateLimiter(FixedWindow(1, 60), name=unique_name(), store=url)
    described = limiter.describe()
    assert described["policy"] == "RateLimiter"
    assert described["options"]["store"]
    assert limiter.allow(7)
    assert not limiter.allow(7)
    limiter.reset()
    limiter.close()


def test_test_time_override_refuses_in_memory_limiters() -> None:
    """The test-only override applies to Redis limiters only."""
    with pytest.raises(ConfigError):
        server_time_override(RateLimiter(FixedWindow(1, 1), name="x"), ManualClock())
