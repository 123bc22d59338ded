"""The fleet window on Redis: count and time windows, the slow-call rule, and how fast news travels.

Each test uses breakers whose local windows cannot open (too few calls each), so only the
fleet's numbers can open them.
"""

from __future__ import annotations

from collections.abc import Callable

from buttress.breaker import BreakerState, CircuitBreaker
from buttress.fleet import SharedCircuitBreaker
from buttress.stores import RedisStore
from buttress.testing import ManualClock
from tests.fleet.breaker_support import drive, eventually, fail, ok

OPEN = BreakerState.OPEN


def reason(store: RedisStore, breaker: CircuitBreaker) -> str:
    """Why the fleet state last changed (the script keeps it in the state hash)."""
    assert isinstance(breaker, SharedCircuitBreaker)
    key = store.layout.key(f"breaker:{breaker.name}", "state")
    raw = store.client.hget(key, "reason")
    return raw.decode() if isinstance(raw, bytes) else ""


def test_time_window_opens_on_the_fleets_failure_rate(
    make_shared: Callable[..., CircuitBreaker], redis_store: RedisStore
) -> None:
    """window_seconds: 3 calls in one process and 1 in another make the 4 the fleet needs."""
    a = make_shared(window_seconds=5, minimum_calls=4)
    b = make_shared(window_seconds=5, minimum_calls=4)
    drive(a, ok, 2)
    drive(a, fail, 1)
    assert a.state is BreakerState.CLOSED  # 3 calls: below the local minimum
    drive(b, fail, 1)
    eventually(lambda: a.state is OPEN and b.state is OPEN)
    assert reason(redis_store, a) == "fleet failure rate 2.0/4"


def test_time_window_below_the_rate_stays_closed(
    make_shared: Callable[..., CircuitBreaker], redis_store: RedisStore
) -> None:
    """A fleet failure rate under failure_rate leaves every breaker closed after a sync."""
    a = make_shared(window_seconds=5, minimum_calls=4, failure_rate=0.5)
    b = make_shared(window_seconds=5, minimum_calls=4, failure_rate=0.5)
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
    make_shared: Callable[..., CircuitBreaker], redis_store: RedisStore
) -> None:
    """Slow calls (no failures) in two processes together cross slow_call_rate fleet-wide."""
    clock = ManualClock()

    def slow() -> int:
        clock.advance(2.0)
        return 1

    options = {"slow_call_duration": 1.0, "slow_call_rate": 0.5, "minimum_calls": 4}
    a = make_shared(window=10, clock=clock, **options)
    b = make_shared(window=10, clock=clock, **options)
    drive(a, ok, 1)
    drive(a, slow, 2)
    assert a.state is BreakerState.CLOSED  # 3 calls: below the local minimum
    drive(b, slow, 1)
    eventually(lambda: a.state is OPEN and b.state is OPEN)
    assert reason(redis_store, a).startswith("fleet slow-call rate 3.0/4")


def test_count_window_sees_the_newest_calls_not_whole_flushes(
    make_shared: Callable[..., CircuitBreaker], redis_store: RedisStore
) -> None:
    """Failures after many successes: the newest ``window`` calls decide, not the whole flush."""
    a = make_shared(window=10, minimum_calls=4)
    b = make_shared(window=10, minimum_calls=4)
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
    make_shared: Callable[..., CircuitBreaker],
) -> None:
    """With a 60 s sync interval, failures still reach the fleet and open it within 1 s."""
    a = make_shared(window=10, minimum_calls=4, sync_interval=60, staleness=60)
    b = make_shared(window=10, minimum_calls=4, sync_interval=60, staleness=60)
    drive(a, fail, 2)
    drive(b, fail, 2)
    eventually(lambda: a.state is OPEN and b.state is OPEN)


def test_changes_arrive_by_pubsub_without_a_sync(
    make_shared: Callable[..., CircuitBreaker],
) -> None:
    """A breaker that syncs once a minute still follows trip, disable and reset within 1 s."""
    a = make_shared()
    b = make_shared(sync_interval=60, staleness=60)
    a.trip()
    eventually(lambda: b.state is BreakerState.FORCED_OPEN)
    a.disable()
    eventually(lambda: b.state is BreakerState.DISABLED)
    a.reset()
    eventually(lambda: b.state is BreakerState.CLOSED)


def test_a_newcomer_joins_an_open_fleet_and_keeps_it_open(
    make_shared: Callable[..., CircuitBreaker], redis_store: RedisStore
) -> None:
    """A breaker built after the fleet opened on failures starts open; the fleet stays open."""
    a = make_shared(window=10, minimum_calls=4, open_for=30)
    drive(a, fail, 4)
    eventually(lambda: reason(redis_store, a).startswith("fleet failure rate"))
    late = make_shared(window=10, minimum_calls=4, open_for=30)
    assert late.state is OPEN
    assert 25 < (late.snapshot().retry_after or 0) <= 30
    assert a.state is OPEN
    key = redis_store.layout.key("breaker:db", "state")
    assert redis_store.client.hget(key, "state") == b"open"
