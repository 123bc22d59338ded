"""The fleet window on Redis: count and time windows, the slow-call rule, and how fast news travels.

Each test uses breakers whose local windows cannot open (too few calls each), so only the
fleet's numbers can open them.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator

import pytest

from buttress.breaker import BreakerState, CircuitBreaker
from buttress.errors import CircuitOpenError
from buttress.fleet import SharedCircuitBreaker
from buttress.stores import RedisStore
from buttress.testing import ManualClock

OPEN = BreakerState.OPEN


class Dead(Exception):
    """The dependency is down."""


def fail() -> None:
    raise Dead


def ok() -> int:
    return 1


def eventually(check: Callable[[], bool], within: float = 1.0) -> None:
    """Poll ``check`` in 10 ms steps; fail after ``within`` seconds."""
    deadline = time.monotonic() + within
    while not check():
        if time.monotonic() > deadline:
            pytest.fail(f"not true within {within}s")
        time.sleep(0.01)


def drive(breaker: CircuitBreaker, fn: Callable[[], object], times: int) -> None:
    """Call ``fn`` through ``breaker`` ``times`` times, swallowing its failures."""
    for _ in range(times):
        try:
            breaker.call(fn)
        except (Dead, CircuitOpenError):
            pass


def reason(store: RedisStore, breaker: CircuitBreaker) -> str:
    """Why the fleet state last changed (the script keeps it in the state hash)."""
    assert isinstance(breaker, SharedCircuitBreaker)
    key = store.layout.key(f"breaker:{breaker.name}", "state")
    raw = store.client.hget(key, "reason")
    return raw.decode() if isinstance(raw, bytes) else ""


@pytest.fixture
def make(redis_store: RedisStore) -> Iterator[Callable[..., CircuitBreaker]]:
    """Shared breakers named ``db`` on the test Redis; all closed afterwards."""
    made: list[CircuitBreaker] = []

    def build(**options: object) -> CircuitBreaker:
        breaker = CircuitBreaker("db", shared=redis_store, **options)  # type: ignore[arg-type]
        made.append(breaker)
        return breaker

    yield build
    for breaker in made:
        assert isinstance(breaker, SharedCircuitBreaker)
        breaker.close()


def test_time_window_opens_on_the_fleets_failure_rate(
    make: Callable[..., CircuitBreaker], redis_store: RedisStore
) -> None:
    """window_seconds: 3 calls in one process and 1 in another make the 4 the fleet needs."""
    a = make(window_seconds=5, minimum_calls=4)
    b = make(window_seconds=5, minimum_calls=4)
    drive(a, ok, 2)
    drive(a, fail, 1)
    assert a.state is BreakerState.CLOSED  # 3 calls: below the local minimum
    drive(b, fail, 1)
    eventually(lambda: a.state is OPEN and b.state is OPEN)
    assert reason(redis_store, a) == "fleet failure rate 2.0/4"


def test_time_window_below_the_rate_stays_closed(
    make: Callable[..., CircuitBreaker], redis_store: RedisStore
) -> None:
    """A fleet failure rate under failure_rate leaves every breaker closed after a sync."""
    a = make(window_seconds=5, minimum_calls=4, failure_rate=0.5)
    b = make(window_seconds=5, minimum_calls=4, failure_rate=0.5)
    for breaker in (a, b):
        drive(breaker, ok, 3)
        drive(breaker, fail, 1)  # 1 of 4 here, 2 of 8 in the fleet
    for breaker in (a, b):
        assert isinstance(breaker, SharedCircuitBreaker)
        breaker.sync()
    assert a.state is BreakerState.CLOSED
    assert b.state is BreakerState.CLOSED
    assert reason(redis_store, a) == ""


def test_slow_call_rate_opens_the_fleet(
    make: Callable[..., CircuitBreaker], redis_store: RedisStore
) -> None:
    """Slow calls (no failures) in two processes together cross slow_call_rate fleet-wide."""
    clock = ManualClock()

    def slow() -> int:
        clock.advance(2.0)
        return 1

    options = {"slow_call_duration": 1.0, "slow_call_rate": 0.5, "minimum_calls": 4}
    a = make(window=10, clock=clock, **options)
    b = make(window=10, clock=clock, **options)
    drive(a, ok, 1)
    drive(a, slow, 2)
    assert a.state is BreakerState.CLOSED  # 3 calls: below the local minimum
    drive(b, slow, 1)
    eventually(lambda: a.state is OPEN and b.state is OPEN)
    assert reason(redis_store, a).startswith("fleet slow-call rate 3.0/4")


def test_count_window_sees_the_newest_calls_not_whole_flushes(
    make: Callable[..., CircuitBreaker], redis_store: RedisStore
) -> None:
    """Failures after many successes: the newest ``window`` calls decide, not the whole flush."""
    a = make(window=10, minimum_calls=4)
    b = make(window=10, minimum_calls=4)
    assert isinstance(a, SharedCircuitBreaker)
    assert isinstance(b, SharedCircuitBreaker)
    drive(a, ok, 50)
    drive(a, fail, 3)  # locally 3 of the last 10
    a.sync()  # flushes arrive in this order (the fleet orders calls by arrival)
    drive(b, fail, 2)  # locally 2 calls
    b.sync()
    # Fleet: the newest 10 calls are these 5 failures and the last 5 of a's 50 successes.
    eventually(lambda: a.state is OPEN and b.state is OPEN)
    assert reason(redis_store, a) == "fleet failure rate 5.0/10"


def test_failures_are_flushed_without_waiting_for_the_interval(
    make: Callable[..., CircuitBreaker],
) -> None:
    """With a 60 s sync interval, failures still reach the fleet and open it within 1 s."""
    a = make(window=10, minimum_calls=4, sync_interval=60, staleness=60)
    b = make(window=10, minimum_calls=4, sync_interval=60, staleness=60)
    drive(a, fail, 2)
    drive(b, fail, 2)
    eventually(lambda: a.state is OPEN and b.state is OPEN)


def test_changes_arrive_by_pubsub_without_a_sync(make: Callable[..., CircuitBreaker]) -> None:
    """A breaker that syncs once a minute still follows trip, disable and reset within 1 s."""
    a = make()
    b = make(sync_interval=60, staleness=60)
    a.trip()
    eventually(lambda: b.state is BreakerState.FORCED_OPEN)
    a.disable()
    eventually(lambda: b.state is BreakerState.DISABLED)
    a.reset()
    eventually(lambda: b.state is BreakerState.CLOSED)


def test_a_newcomer_joins_an_open_fleet_and_keeps_it_open(
    make: Callable[..., CircuitBreaker], redis_store: RedisStore
) -> None:
    """A breaker built after the fleet opened on failures starts open; the fleet stays open."""
    a = make(window=10, minimum_calls=4, open_for=30)
    drive(a, fail, 4)
    eventually(lambda: reason(redis_store, a).startswith("fleet failure rate"))
    late = make(window=10, minimum_calls=4, open_for=30)
    assert late.state is OPEN
    assert 25 < (late.snapshot().retry_after or 0) <= 30
    assert a.state is OPEN
    key = redis_store.layout.key("breaker:db", "state")
    assert redis_store.client.hget(key, "state") == b"open"
