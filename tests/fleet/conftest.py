"""Fleet fixtures: memory and SQLite stores on a ManualClock, a real Redis under a unique prefix."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from bench._fleetproc import delete_keys

from buttress.breaker import CircuitBreaker
from buttress.fleet import SharedCircuitBreaker
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


@pytest.fixture
def make_shared(redis_store: RedisStore) -> Iterator[Callable[..., CircuitBreaker]]:
    """Build shared breakers named ``db`` on the test Redis; all closed afterwards."""
    made: list[CircuitBreaker] = []

    def build(**options: object) -> CircuitBreaker:
        breaker = CircuitBreaker("db", shared=redis_store, **options)  # type: ignore[arg-type]
        made.append(breaker)
        return breaker

    yield build
    for breaker in made:
        assert isinstance(breaker, SharedCircuitBreaker)
        breaker.close()
