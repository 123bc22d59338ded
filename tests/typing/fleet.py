"""Checked by mypy, never run: the fleet's public API keeps its types."""

from __future__ import annotations

from typing import assert_type

from buttress import CircuitBreaker
from buttress.fleet import AsyncLeaderLock, LeaderLock, SharedCircuitBreaker
from buttress.ops.scheduler import Scheduler
from buttress.stores import async_store_from_url, store_from_url

store = store_from_url("redis://127.0.0.1:6379/0")
astore = async_store_from_url("redis://127.0.0.1:6379/0")
breaker = CircuitBreaker("db", shared=store, sync_interval=0.25, staleness=1.0)
lock = LeaderLock("jobs", store, 10)
alock = AsyncLeaderLock("jobs", astore, 10)
scheduler = Scheduler(store=astore, lock_ttl=15)


def uses_locks() -> None:
    assert_type(lock.acquire(), bool)
    assert_type(lock.fencing_token, int | None)
    assert_type(breaker.snapshot().degraded, bool)
    if isinstance(breaker, SharedCircuitBreaker):
        assert_type(breaker.degraded_reason, str | None)


async def uses_async_locks() -> None:
    assert_type(await alock.acquire(), bool)
    assert_type(await alock.renew(), bool)
    assert_type(scheduler.is_leader, bool)
    assert_type(scheduler.leader_lock, AsyncLeaderLock | None)
    async with alock as held:
        assert_type(held, AsyncLeaderLock)
