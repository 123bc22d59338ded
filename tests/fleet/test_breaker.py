"""Shared circuit breakers in one process: Redis for real, SQLite, and a store that is down."""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from buttress import events
from buttress.breaker import BreakerState, CircuitBreaker
from buttress.errors import CircuitOpenError
from buttress.fleet import SharedCircuitBreaker
from buttress.stores import RedisStore, SQLiteStore
from buttress.testing import RecordingListener
from tests.fleet.breaker_support import drive, eventually, fail, ok
from tests.servers import stopped_port

OPEN = BreakerState.OPEN


@pytest.fixture
def make(make_shared: Callable[..., CircuitBreaker]) -> Callable[..., CircuitBreaker]:
    """Shared breakers ``db`` on the test Redis that need 4 calls in a window of 10, unless
    told otherwise."""
    return functools.partial(make_shared, minimum_calls=4, window=10)


def test_without_shared_it_is_the_local_breaker() -> None:
    """No ``shared``: the plain class, nothing started."""
    assert type(CircuitBreaker("x")) is CircuitBreaker


def test_failures_in_one_process_open_the_other(make: Callable[..., CircuitBreaker]) -> None:
    """Failures seen by one breaker open its twin (same name, same store) within 1 s."""
    a, b = make(), make()
    drive(a, ok, 2)
    drive(a, fail, 3)  # below the local minimum (4), but the fleet sees 2 + 3 calls
    drive(b, fail, 1)
    eventually(lambda: a.state is OPEN and b.state is OPEN)
    with pytest.raises(CircuitOpenError):
        b.call(ok)


def test_manual_control_reaches_everyone(make: Callable[..., CircuitBreaker]) -> None:
    """trip, reset and disable on one breaker reach the other within 1 s."""
    a, b = make(), make()
    a.trip()
    eventually(lambda: b.state is BreakerState.FORCED_OPEN)
    b.disable()
    eventually(lambda: a.state is BreakerState.DISABLED)
    a.reset()
    eventually(lambda: b.state is BreakerState.CLOSED)


def test_a_new_process_joins_the_open_state(make: Callable[..., CircuitBreaker]) -> None:
    """A breaker built after the fleet opened starts open; one built while closed resets nothing."""
    a = make()
    a.trip()
    assert make().state is BreakerState.FORCED_OPEN
    assert a.state is BreakerState.FORCED_OPEN


def test_half_open_admits_the_fleet_wide_number_of_probes(
    make: Callable[..., CircuitBreaker],
) -> None:
    """After open_for, three breakers together send half_open_calls trials, not one each."""
    breakers = [make(open_for=0.2, half_open_calls=2, success_threshold=2) for _ in range(3)]
    drive(breakers[0], fail, 4)
    eventually(lambda: all(b.state is OPEN for b in breakers))
    until = time.monotonic() + 0.25  # open_for passes on the real (Redis) clock
    while time.monotonic() < until:
        time.sleep(0.05)
    held: list[int] = []

    def probe(i: int) -> int:  # trials in flight at once: each calls the next breaker inside
        held.append(i)
        if i + 1 < len(breakers):
            try:
                breakers[i + 1].call(probe, i + 1)
            except CircuitOpenError:
                pass
        return 1

    breakers[0].call(probe, 0)
    assert held == [0, 1]
    eventually(lambda: all(b.state is BreakerState.CLOSED for b in breakers))


def test_store_down_means_local_mode(tmp_path: Path) -> None:
    """With Redis unreachable, calls flow, the breaker still opens locally, snapshot degraded."""
    store = RedisStore(f"redis://127.0.0.1:{stopped_port()}/0", timeout=0.2)
    with RecordingListener() as seen, store:
        breaker = CircuitBreaker("db", shared=store, minimum_calls=4, window=10)
        try:
            assert drive(breaker, ok, 5) == 5
            assert breaker.snapshot().degraded
            drive(breaker, fail, 6)
            assert breaker.state is OPEN
        finally:
            assert isinstance(breaker, SharedCircuitBreaker)
            breaker.close()
    assert "fleet.degraded" in seen.kinds()


def test_sqlite_open_state_survives_a_restart(tmp_path: Path) -> None:
    """An OPEN breaker on a SQLite store is open again when the process builds it anew."""
    path = str(tmp_path / "fleet.db")
    with SQLiteStore(path) as store:
        first = CircuitBreaker("db", shared=store, minimum_calls=4, window=10, open_for=30)
        assert isinstance(first, SharedCircuitBreaker)
        drive(first, fail, 4)
        assert first.state is OPEN
        first.sync()
        first.close()
    with SQLiteStore(path) as store:
        second = CircuitBreaker("db", shared=store, open_for=30)
        assert isinstance(second, SharedCircuitBreaker)
        try:
            assert second.state is OPEN
            assert 25 < (second.snapshot().retry_after or 0) <= 30
        finally:
            second.close()


def test_events_do_not_leak() -> None:
    """The default listener set is untouched by these tests."""
    assert events.listeners()
