"""Fleet fixtures: memory and SQLite stores on a ManualClock, a real Redis under a unique prefix."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from bench._fleetproc import delete_keys

from buttress.stores import MemoryStore, RedisStore, SQLiteStore, Store
from buttress.testing import ManualClock
from tests.servers import redis_url


def unique_prefix() -> str:
    """A key prefix no other test uses."""
    return f"buttress-test:{uuid.uuid4().hex[:12]}:"


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock for cores and local stores."""
    return ManualClock()


@pytest.fixture
def redis_store() -> Iterator[RedisStore]:
    """A Redis store on the test database with a unique prefix, cleaned up afterwards."""
    url = redis_url()
    prefix = unique_prefix()
    store = RedisStore(url, prefix=prefix, timeout=1.0)
    try:
        yield store
    finally:
        store.close()
        delete_keys(url, prefix)


@pytest.fixture(params=["memory", "sqlite", "redis"])
def any_store(
    request: pytest.FixtureRequest, clock: ManualClock, tmp_path: Path
) -> Iterator[Store]:
    """Each backend in turn: memory and SQLite on the manual clock, Redis for real."""
    if request.param == "redis":
        yield request.getfixturevalue("redis_store")
        return
    store: Store
    if request.param == "memory":
        store = MemoryStore(clock=clock)
    else:
        store = SQLiteStore(str(tmp_path / "fleet.db"), clock=clock)
    with store:
        yield store
