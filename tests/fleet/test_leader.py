"""LeaderLock and AsyncLeaderLock on every backend: one holder, expiry, renewal, fencing tokens."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from bench._fleetproc import delete_keys

from buttress.errors import ConfigError
from buttress.fleet import AsyncLeaderLock, LeaderLock
from buttress.stores import (
    AsyncMemoryStore,
    AsyncRedisStore,
    AsyncSQLiteStore,
    MemoryStore,
    RedisStore,
    SQLiteStore,
)
from buttress.testing import ManualClock
from tests.fleet.conftest import unique_prefix
from tests.servers import redis_url


class Lock:
    """A sync or async lock behind one awaitable interface, so one suite tests both."""

    def __init__(self, lock: LeaderLock | AsyncLeaderLock) -> None:
        self.lock = lock

    async def acquire(self) -> bool:
        if isinstance(self.lock, AsyncLeaderLock):
            return await self.lock.acquire()
        return self.lock.acquire()

    async def renew(self) -> bool:
        if isinstance(self.lock, AsyncLeaderLock):
            return await self.lock.renew()
        return self.lock.renew()

    async def release(self) -> None:
        if isinstance(self.lock, AsyncLeaderLock):
            await self.lock.release()
        else:
            self.lock.release()

    @property
    def is_leader(self) -> bool:
        return self.lock.is_leader

    @property
    def fencing_token(self) -> int | None:
        return self.lock.fencing_token


class Backend:
    """Locks named ``jobs`` on one store; ``elapse`` moves time for the store and the locks."""

    def __init__(self, store: Any, clock: ManualClock, real: bool) -> None:
        self.store, self.clock, self.real = store, clock, real

    def lock(self, ttl: float) -> Lock:
        kind = AsyncLeaderLock if isinstance(self.store, _ASYNC) else LeaderLock
        return Lock(kind("jobs", self.store, ttl, clock=self.clock))

    async def elapse(self, seconds: float) -> None:
        self.clock.advance(seconds)
        if self.real:  # Redis expires keys on its own clock
            await asyncio.sleep(seconds)


_ASYNC = (AsyncMemoryStore, AsyncSQLiteStore, AsyncRedisStore)


@pytest.fixture(
    params=[
        "memory-sync",
        "sqlite-sync",
        "redis-sync",
        "memory-async",
        "sqlite-async",
        "redis-async",
    ]
)
async def backend(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[Backend]:
    """Each backend, through the sync lock and through the async one."""
    kind, flavour = request.param.split("-")
    clock = ManualClock()
    path = str(tmp_path / "leader.db")
    if kind == "redis":
        url, prefix = redis_url(), unique_prefix()
        try:
            if flavour == "sync":
                with RedisStore(url, prefix=prefix, timeout=1.0) as store:
                    yield Backend(store, clock, real=True)
            else:
                async with AsyncRedisStore(url, prefix=prefix, timeout=1.0) as astore:
                    yield Backend(astore, clock, real=True)
        finally:
            delete_keys(url, prefix)
        return
    if flavour == "sync":
        sync = MemoryStore(clock=clock) if kind == "memory" else SQLiteStore(path, clock=clock)
        with sync:
            yield Backend(sync, clock, real=False)
        return
    aio = AsyncMemoryStore(clock=clock) if kind == "memory" else AsyncSQLiteStore(path, clock=clock)
    async with aio:
        yield Backend(aio, clock, real=False)


async def test_one_holder_at_a_time(backend: Backend) -> None:
    """The second holder cannot take the lock while the first holds it."""
    a, b = backend.lock(5.0), backend.lock(5.0)
    assert await a.acquire()
    assert not await b.acquire()
    assert a.is_leader
    assert not b.is_leader
    assert b.fencing_token is None


async def test_release_hands_over_with_a_larger_fencing_token(backend: Backend) -> None:
    """After release the other holder acquires, with a strictly larger fencing token."""
    a, b = backend.lock(5.0), backend.lock(5.0)
    assert await a.acquire()
    first = a.fencing_token
    await a.release()
    assert not a.is_leader
    assert await b.acquire()
    assert first is not None
    assert b.fencing_token is not None
    assert b.fencing_token > first


async def test_expiry_frees_the_lock(backend: Backend) -> None:
    """A holder that stops renewing loses the lock at the ttl; renewing then fails."""
    a, b = backend.lock(0.05), backend.lock(0.05)
    assert await a.acquire()
    await backend.elapse(0.08)
    assert not a.is_leader
    assert await b.acquire()
    assert not await a.renew()
    assert a.fencing_token is None


async def test_renewal_keeps_the_lock(backend: Backend) -> None:
    """Renewing within the ttl keeps the lock past its first expiry."""
    # On Redis the ttl runs on the server's clock: each renewal has 170 ms of slack, so a
    # loaded machine's late wake-up does not let the lock lapse.
    a, b = backend.lock(0.25), backend.lock(0.25)
    assert await a.acquire()
    token = a.fencing_token
    for _ in range(4):
        await backend.elapse(0.08)
        assert await a.renew()
    assert not await b.acquire()
    assert a.is_leader
    assert a.fencing_token == token


async def test_acquire_when_holding_renews(backend: Backend) -> None:
    """acquire() by the holder renews its tenure and keeps its fencing token."""
    a = backend.lock(5.0)
    assert await a.acquire()
    token = a.fencing_token
    assert await a.acquire()
    assert a.fencing_token == token


async def test_release_does_not_free_another_holders_lock(backend: Backend) -> None:
    """A stale holder's release leaves the new holder's lock in place."""
    a, b = backend.lock(0.05), backend.lock(5.0)
    assert await a.acquire()
    await backend.elapse(0.08)
    assert await b.acquire()
    await a.release()
    assert not await backend.lock(5.0).acquire()


def test_store_failure_is_not_an_error(clock: ManualClock) -> None:
    """A closed store makes acquire return False instead of raising."""
    store = MemoryStore(clock=clock)
    store.close()
    lock = LeaderLock("jobs", store, 1.0, clock=clock)
    assert not lock.acquire()
    lock.release()


async def test_async_store_failure_is_not_an_error(clock: ManualClock) -> None:
    """A closed async store makes acquire and renew return False instead of raising."""
    store = AsyncMemoryStore(clock=clock)
    lock = AsyncLeaderLock("jobs", store, 1.0, clock=clock)
    assert await lock.acquire()
    await store.aclose()
    assert not await lock.renew()
    assert lock.fencing_token is not None  # maybe still ours: the local deadline decides
    clock.advance(1.0)
    assert not lock.is_leader
    await lock.release()


def test_context_manager(clock: ManualClock) -> None:
    """``with lock`` holds it inside and releases it after; a held lock raises RuntimeError."""
    with MemoryStore(clock=clock) as store, LeaderLock("jobs", store, 5.0, clock=clock) as lock:
        assert lock.is_leader
        with pytest.raises(RuntimeError, match="held elsewhere"):
            LeaderLock("jobs", store, 5.0, clock=clock).__enter__()
    with MemoryStore(clock=clock) as store:
        with LeaderLock("jobs", store, 5.0, clock=clock):
            pass
        assert LeaderLock("jobs", store, 5.0, clock=clock).acquire()


async def test_async_context_manager(clock: ManualClock) -> None:
    """``async with lock`` holds it inside and releases it after."""
    async with AsyncMemoryStore(clock=clock) as store:
        async with AsyncLeaderLock("jobs", store, 5.0, clock=clock) as lock:
            assert lock.is_leader
            assert "leader=True" in repr(lock)
        assert await AsyncLeaderLock("jobs", store, 5.0, clock=clock).acquire()


def test_bad_name_and_ttl(clock: ManualClock) -> None:
    """An empty name or a non-positive ttl is a ConfigError naming the field."""
    with MemoryStore(clock=clock) as store:
        with pytest.raises(ConfigError, match="name"):
            LeaderLock("", store, 1.0)
        with pytest.raises(ConfigError, match="ttl"):
            LeaderLock("jobs", store, 0)
