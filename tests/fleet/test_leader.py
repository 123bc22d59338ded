"""LeaderLock on every backend: one holder, expiry, renewal, release, fencing tokens."""

from __future__ import annotations

import time

from buttress.fleet import LeaderLock
from buttress.stores import MemoryStore, RedisStore, Store
from buttress.testing import ManualClock


def _elapse(store: Store, clock: ManualClock, seconds: float) -> None:
    clock.advance(seconds)
    if isinstance(store, RedisStore):
        time.sleep(seconds)


def test_one_holder_at_a_time(any_store: Store, clock: ManualClock) -> None:
    """The second holder cannot take the lock while the first holds it."""
    a = LeaderLock("jobs", any_store, 5.0, clock=clock)
    b = LeaderLock("jobs", any_store, 5.0, clock=clock)
    assert a.acquire()
    assert not b.acquire()
    assert a.is_leader
    assert not b.is_leader
    assert b.fencing_token is None


def test_release_hands_over_with_a_larger_fencing_token(
    any_store: Store, clock: ManualClock
) -> None:
    """After release the other holder acquires, with a strictly larger fencing token."""
    a = LeaderLock("jobs", any_store, 5.0, clock=clock)
    b = LeaderLock("jobs", any_store, 5.0, clock=clock)
    assert a.acquire()
    first = a.fencing_token
    a.release()
    assert not a.is_leader
    assert b.acquire()
    assert first is not None
    assert b.fencing_token is not None
    assert b.fencing_token > first


def test_expiry_frees_the_lock(any_store: Store, clock: ManualClock) -> None:
    """A holder that stops renewing loses the lock at the ttl; renewing then fails."""
    a = LeaderLock("jobs", any_store, 0.05, clock=clock)
    b = LeaderLock("jobs", any_store, 0.05, clock=clock)
    assert a.acquire()
    _elapse(any_store, clock, 0.08)
    assert not a.is_leader
    assert b.acquire()
    assert not a.renew()
    assert a.fencing_token is None


def test_renewal_keeps_the_lock(any_store: Store, clock: ManualClock) -> None:
    """Renewing within the ttl keeps the lock past its first expiry."""
    a = LeaderLock("jobs", any_store, 0.1, clock=clock)
    b = LeaderLock("jobs", any_store, 0.1, clock=clock)
    assert a.acquire()
    token = a.fencing_token
    for _ in range(3):
        _elapse(any_store, clock, 0.05)
        assert a.renew()
    assert not b.acquire()
    assert a.is_leader
    assert a.fencing_token == token


def test_release_does_not_free_another_holders_lock(any_store: Store, clock: ManualClock) -> None:
    """A stale holder's release leaves the new holder's lock in place."""
    a = LeaderLock("jobs", any_store, 0.05, clock=clock)
    b = LeaderLock("jobs", any_store, 5.0, clock=clock)
    assert a.acquire()
    _elapse(any_store, clock, 0.08)
    assert b.acquire()
    a.release()
    assert not LeaderLock("jobs", any_store, 5.0, clock=clock).acquire()


def test_store_failure_is_not_an_error(clock: ManualClock) -> None:
    """A closed store makes acquire return False instead of raising."""
    store = MemoryStore(clock=clock)
    store.close()
    lock = LeaderLock("jobs", store, 1.0, clock=clock)
    assert not lock.acquire()
    lock.release()


def test_context_manager(any_store: Store, clock: ManualClock) -> None:
    """``with lock`` holds it inside and releases it after."""
    with LeaderLock("jobs", any_store, 5.0, clock=clock) as lock:
        assert lock.is_leader
    assert LeaderLock("jobs", any_store, 5.0, clock=clock).acquire()
