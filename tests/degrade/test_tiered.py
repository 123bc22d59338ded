"""TieredCache: Redis while it answers, process memory while it is down, Redis again after."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Iterator

import pytest

from buttress import Registry
from buttress.degrade import AsyncTieredCache, TieredCache
from buttress.errors import ConfigError
from buttress.events import FallbackUsed
from buttress.stores import AsyncRedisStore, RedisStore
from buttress.testing import ManualClock, RecordingListener
from tests.servers import RedisServer, redis_url, stopped_port
from tests.stores.conftest import delete_redis_keys


@pytest.fixture
def prefix() -> str:
    """A key prefix of this test's own."""
    return f"buttress-test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def redis_store(prefix: str) -> Iterator[RedisStore]:
    """A store on the test Redis, its keys deleted afterwards."""
    url = redis_url()
    store = RedisStore(url, prefix=prefix, timeout=2)
    yield store
    store.close()
    delete_redis_keys(url, prefix)


@pytest.fixture
def private_redis() -> Iterator[RedisServer]:
    """A redis-server of this test's own, stopped at the end."""
    server = RedisServer()
    server.start()
    yield server
    server.stop()


def down_store() -> RedisStore:
    """A store whose Redis is down: nothing listens on its port."""
    return RedisStore(f"redis://127.0.0.1:{stopped_port()}/0", timeout=0.5)


def test_uses_redis_while_it_answers(redis_store: RedisStore, clock: ManualClock) -> None:
    """Values go to Redis (another client sees them) and come back from it."""
    cache = TieredCache(redis_store, clock=clock)
    cache.set("user:1", "ann", ttl=60)
    assert redis_store.get("user:1") == b"ann"
    redis_store.set("user:2", b"bob")
    assert cache.get("user:2") == b"bob"
    cache.delete("user:1")
    assert redis_store.get("user:1") is None
    assert cache.get("user:1") is None
    assert not cache.degraded
    assert cache.used == 0


def test_serves_from_memory_while_redis_is_down(
    clock: ManualClock, recorded: RecordingListener
) -> None:
    """With Redis down, writes and reads work in memory, counted and evented."""
    cache = TieredCache(down_store(), clock=clock, retry_after=5, name="sessions")
    cache.set("s1", b"token-data", ttl=30)
    assert cache.degraded
    assert cache.get("s1") == b"token-data"
    assert cache.get("nope") is None
    cache.delete("s1")
    assert cache.get("s1") is None
    assert cache.used == 5
    assert {e.source for e in recorded.of(FallbackUsed)} == {"sessions"}
    clock.advance(31)
    cache.set("s2", "x", ttl=30)
    clock.advance(30)
    assert cache.get("s2") is None  # memory honours the ttl too


def test_falls_back_and_comes_back(private_redis: RedisServer, clock: ManualClock) -> None:
    """Redis stops: memory serves (with what was read before); Redis returns: the writes made
    meanwhile are written back and Redis serves again."""
    store = RedisStore(private_redis.url, timeout=0.5)
    cache = TieredCache(store, clock=clock, retry_after=5)
    try:
        cache.set("kept", b"before")
        cache.set("changed", b"old")
        cache.set("removed", b"old")
        private_redis.stop()
        assert cache.get("kept") == b"before"
        assert cache.degraded
        cache.set("changed", b"new", ttl=100)
        cache.delete("removed")
        private_redis.start()  # an empty Redis (no persistence)
        clock.advance(4)
        assert cache.get("changed") == b"new"  # not retried yet: memory
        assert cache.degraded
        clock.advance(1)
        assert cache.get("changed") == b"new"  # retried: written back, read from Redis
        assert not cache.degraded
        assert store.get("changed") == b"new"
        assert store.ttl("changed") is not None
        assert store.ttl("changed") <= 100
        assert store.get("removed") is None
        assert cache.describe()["pending_writes"] == 0
    finally:
        store.close()


def test_a_failed_write_back_stays_degraded(clock: ManualClock) -> None:
    """If Redis is still down when retried, memory keeps serving and the writes stay pending."""
    cache = TieredCache(down_store(), clock=clock, retry_after=1)
    cache.set("a", b"1")
    clock.advance(1)
    assert cache.get("a") == b"1"
    assert cache.degraded
    assert cache.describe()["pending_writes"] == 1


@pytest.fixture
async def async_store(prefix: str) -> AsyncIterator[AsyncRedisStore]:
    """An async store on the test Redis, its keys deleted afterwards."""
    url = redis_url()
    store = AsyncRedisStore(url, prefix=prefix, timeout=2)
    yield store
    await store.aclose()
    delete_redis_keys(url, prefix)


async def test_async_flavour(async_store: AsyncRedisStore, clock: ManualClock) -> None:
    """The async cache uses Redis while it answers, memory when it is down."""
    cache = AsyncTieredCache(async_store, clock=clock)
    await cache.set("k", "v")
    assert await async_store.get("k") == b"v"
    assert await cache.get("k") == b"v"
    await cache.delete("k")
    assert await cache.get("k") is None
    down = AsyncRedisStore(f"redis://127.0.0.1:{stopped_port()}/0", timeout=0.5)
    try:
        offline = AsyncTieredCache(down, clock=clock, retry_after=1)
        await offline.set("k", b"v")
        await offline.delete("gone")
        assert await offline.get("k") == b"v"
        assert offline.degraded
        assert offline.used == 3
        clock.advance(1)
        assert await offline.get("k") == b"v"
    finally:
        await down.aclose()


def test_registers_as_a_fallback_and_checks_its_options(clock: ManualClock) -> None:
    """It files under ``fallback`` in a registry; bad options raise ConfigError."""
    registry = Registry()
    cache = registry.attach("fallback", TieredCache(down_store(), name="c"), "c")
    assert cache.snapshot().used == 0
    for kwargs, field in (
        ({"max_local": 0}, "max_local"),
        ({"retry_after": 0}, "retry_after"),
        ({"local_ttl": -1}, "local_ttl"),
        ({"name": ""}, "name"),
    ):
        with pytest.raises(ConfigError) as caught:
            TieredCache(down_store(), **kwargs)
        assert caught.value.field == field
    with pytest.raises(TypeError, match="bytes or str"):
        cache.set("k", 5)  # type: ignore[arg-type]
