"""The store contract's fixtures: every backend, sync and async, behind one awaitable face.

``harness`` builds a store for each (backend, flavour) pair with a unique key prefix: memory and
SQLite (a file in ``tmp_path``) on a ``ManualClock``, Redis for real at
``BUTTRESS_TEST_REDIS_URL`` (skipped with the reason when down, failed under ``CI=true``). A
sync store is wrapped so that a test body awaits every call either way. Redis keys under the
prefix are deleted afterwards.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass
from typing import Any

import pytest

from buttress.stores import async_store_from_url, store_from_url
from buttress.testing import ManualClock
from tests.servers import redis_url

BACKENDS = ("memory", "sqlite", "redis")
SHORT_TTL = 0.06
"""A ttl short enough for Redis to expire for real; ``elapse(LONGER)`` outlives it."""
LONGER = 0.1


def unique_prefix() -> str:
    """A key prefix no other test (or session) uses."""
    return f"buttress-test:{uuid.uuid4().hex[:12]}:"


def delete_redis_keys(url: str, prefix: str) -> None:
    """Delete every key under ``prefix`` at ``url``."""
    import redis

    client = redis.Redis.from_url(url)
    try:
        keys = list(client.scan_iter(match=f"{prefix}*", count=500))
        if keys:
            client.delete(*keys)
    finally:
        client.close()


class SyncAsAsync:
    """An awaitable face over a sync store: ``await face.get(k)`` calls ``store.get(k)``."""

    def __init__(self, store: Any) -> None:
        self.sync = store

    def __getattr__(self, name: str) -> Any:
        method = getattr(self.sync, name)

        async def call(*args: Any, **kwargs: Any) -> Any:
            return method(*args, **kwargs)

        return call

    async def aclose(self) -> None:
        self.sync.close()


@dataclass
class Harness:
    """A store under test, how it was built, and a way to let time pass."""

    backend: str
    flavour: str
    url: str
    prefix: str
    store: Any
    clock: ManualClock | None

    async def elapse(self, seconds: float) -> None:
        """Advance the manual clock, or really wait (never more than 100 ms) for Redis."""
        if self.clock is not None:
            self.clock.advance(seconds)
        else:
            assert seconds <= 0.1, "real sleeps in the contract suite stay <= 100 ms"
            await asyncio.sleep(seconds)


@pytest.fixture(scope="session")
def live_redis_url() -> str:
    """The test Redis URL after a PING (skip, or fail under CI=true, when it is down)."""
    return redis_url()


def backend_url(backend: str, request: pytest.FixtureRequest) -> str:
    """The URL of a fresh store for ``backend``."""
    if backend == "memory":
        return "memory://"
    if backend == "sqlite":
        tmp_path = request.getfixturevalue("tmp_path")
        return f"sqlite:///{tmp_path}/store.db"
    return str(request.getfixturevalue("live_redis_url"))


@pytest.fixture
def make_store(request: pytest.FixtureRequest) -> Iterator[Any]:
    """Build sync stores by backend name with a unique prefix; closes and cleans them up."""
    built: list[tuple[Any, str, str]] = []

    def make(backend: str, *, prefix: str | None = None, clock: Any = None) -> Any:
        url = backend_url(backend, request)
        prefix = prefix or unique_prefix()
        store = store_from_url(url, prefix=prefix, clock=clock)
        built.append((store, url, prefix))
        return store

    yield make
    for store, url, prefix in built:
        store.close()
        if url.startswith("redis"):
            delete_redis_keys(url, prefix)


@pytest.fixture(params=[(b, f) for b in BACKENDS for f in ("sync", "async")], ids="-".join)
async def harness(request: pytest.FixtureRequest) -> AsyncIterator[Harness]:
    """A store of each backend and flavour, with a unique prefix, closed and cleaned after."""
    backend, flavour = request.param
    url = backend_url(backend, request)
    prefix = unique_prefix()
    clock = None if backend == "redis" else ManualClock()
    if flavour == "sync":
        store: Any = SyncAsAsync(store_from_url(url, prefix=prefix, clock=clock))
    else:
        store = async_store_from_url(url, prefix=prefix, clock=clock)
    try:
        yield Harness(backend, flavour, url, prefix, store, clock)
    finally:
        await store.aclose()
        if backend == "redis":
            delete_redis_keys(url, prefix)
