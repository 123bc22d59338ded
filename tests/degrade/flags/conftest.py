"""Fixtures for flag tests: a manual clock, flag stores that close themselves, Redis URLs."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Iterator
from typing import Any

import pytest

from buttress.degrade.flags import FlagStore
from buttress.testing import ManualClock
from tests.servers import redis_url


@pytest.fixture
def clock() -> ManualClock:
    """A clock that moves only when told to."""
    return ManualClock(start=100.0)


@pytest.fixture
def make_flags(clock: ManualClock) -> Iterator[Callable[..., FlagStore]]:
    """Build flag stores (memory, no sync thread, the manual clock by default); closed after."""
    built: list[FlagStore] = []

    def make(store: Any = "memory://", **options: Any) -> FlagStore:
        options.setdefault("sync_interval", None)
        options.setdefault("clock", clock)
        flags = FlagStore(store, **options)
        built.append(flags)
        return flags

    yield make
    for flags in built:
        flags.close()


@pytest.fixture
def flags(make_flags: Callable[..., FlagStore]) -> FlagStore:
    """An empty in-memory flag store."""
    return make_flags()


@pytest.fixture
def redis_prefix() -> Iterator[tuple[str, str]]:
    """The test Redis URL (skipped when down, failed under CI=true) and a key prefix of the
    test's own, whose keys are deleted afterwards."""
    url = redis_url()
    prefix = f"buttress-test:{uuid.uuid4().hex[:12]}:"
    yield url, prefix
    from tests.stores.conftest import delete_redis_keys

    delete_redis_keys(url, prefix)
