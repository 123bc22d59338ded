"""CircuitBreaker: opening rules, half-open trials, manual control, events, sync and async."""

from __future__ import annotations

import asyncio
import threading
from datetime import timedelta
from typing import Any

import pytest

from buttress import CircuitOpenError, ConfigError
from buttress.breaker import BreakerState, CircuitBreaker
from buttress.testing import ManualClock, RecordingListener
from tests.conftest import run


def ok() -> str:
    return "ok"


def boom() -> None:
    raise ConnectionError("down")


async def call_n(mode: str, breaker: CircuitBreaker, fn, n: int) -> None:
    for _ in range(n):
        try:
            await run(mode, breaker, fn)
        except ConnectionError:
            pass


@pytest.fixture
def clock() -> ManualClock:
    return ManualClock()


async def half_open(mode: str, clock: ManualClock, **options: Any) -> CircuitBreaker:
    """A breaker ``db`` (with ``options``) that one failure opened for 5 s, and those 5 s
    have just passed: its next call is a trial."""
    breaker = CircuitBreaker("db", consecutive_failures=1, open_for=5, clock=clock, **options)
    await call_n(mode, breaker, boom, 1)
    clock.advance(5)
    return breaker


async def test_opens_at_failure_rate_after_minimum_calls(mode: str, clock: ManualClock) -> None:
    """The breaker opens once minimum_calls are in the window and the failure rate reaches it."""
    b = CircuitBreaker("db", failure_rate=0.5, minimum_calls=4, window=10, clock=clock)
    await call_n(mode, b, boom, 3)
    assert b.state is BreakerState.CLOSED  # 3 calls < minimum_calls
    await call_n(mode, b, ok, 1)
    assert (
        b.state is BreakerState.CLOSED
    )  # 3/4 failed but the 4th was a success: evaluated on failure
    await call_n(mode, b, boom, 1)
    assert b.state is BreakerState.OPEN
    snap = b.snapshot()
    assert (snap.window_calls, snap.window_failures, snap.failures, snap.successes) == (5, 4, 4, 1)


async def test_stays_closed_below_rate(mode: str, clock: ManualClock) -> None:
    """A failure rate under the threshold keeps the breaker closed."""
    b = CircuitBreaker("db", failure_rate=0.5, minimum_calls=10, window=10, clock=clock)
    for _ in range(20):
        await call_n(mode, b, ok, 2)
        await call_n(mode, b, boom, 1)
    assert b.state is BreakerState.CLOSED
    assert b.snapshot().failure_rate == pytest.approx(3 / 10, abs=0.11)


async def test_count_window_forgets_old_failures(mode: str, clock: ManualClock) -> None:
    """Failures older than the last `window` calls no longer count."""
    b = CircuitBreaker("db", failure_rate=0.5, minimum_calls=4, window=4, clock=clock)
    await call_n(mode, b, boom, 1)
    await call_n(mode, b, ok, 4)
    await call_n(mode, b, boom, 1)
    snap = b.snapshot()
    assert (snap.window_calls, snap.window_failures) == (4, 1)
    assert b.state is BreakerState.CLOSED


async def test_open_rejects_with_retry_after(mode: str, clock: ManualClock) -> None:
    """An open breaker rejects without calling, with the time left, and counts the rejection."""
    b = CircuitBreaker("db", consecutive_failures=1, open_for=30, clock=clock)
    await call_n(mode, b, boom, 1)
    clock.advance(10)
    calls: list[int] = []
    with pytest.raises(CircuitOpenError) as info:
        await run(mode, b, lambda: calls.append(1))
    assert calls == []
    assert info.value.retry_after == pytest.approx(20)
    assert info.value.source == "db"
    assert b.snapshot().rejected == 1


async def test_rejections_are_new_objects(clock: ManualClock) -> None:
    """Each rejection is a fresh exception, so tracebacks never accumulate."""
    b = CircuitBreaker("db", clock=clock)
    b.trip()
    errors = []
    for _ in range(2):
        try:
            b.call(ok)
        except CircuitOpenError as exc:
            errors.append(exc)
    assert errors[0] is not errors[1]


async def test_half_open_success_closes(mode: str, clock: ManualClock) -> None:
    """After open_for the next call is a trial; its success closes the breaker."""
    b = CircuitBreaker("db", consecutive_failures=2, open_for=5, clock=clock)
    await call_n(mode, b, boom, 2)
    assert b.state is BreakerState.OPEN
    clock.advance(5)
    assert b.state is BreakerState.HALF_OPEN
    assert await run(mode, b, ok) == "ok"
    assert b.state is BreakerState.CLOSED
    assert b.snapshot().window_calls == 0  # the window starts afresh


async def test_half_open_failure_reopens(mode: str, clock: ManualClock) -> None:
    """A failed trial reopens the breaker for another open period."""
    b = await half_open(mode, clock)
    await call_n(mode, b, boom, 1)
    assert b.state is BreakerState.OPEN
    assert b.snapshot().retry_after == pytest.approx(5)
    assert b.snapshot().openings == 2


async def test_half_open_limits_concurrent_trials(clock: ManualClock) -> None:
    """HALF_OPEN admits at most half_open_calls trials at once and rejects the rest."""
    b = await half_open("sync", clock, half_open_calls=2, success_threshold=2)
    gate = asyncio.Event()
    started = 0

    async def trial() -> str:
        nonlocal started
        started += 1
        await gate.wait()
        return "ok"

    tasks = [asyncio.create_task(b.acall(trial)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(CircuitOpenError):
        await b.acall(trial)
    assert started == 2
    gate.set()
    assert await asyncio.gather(*tasks) == ["ok", "ok"]
    assert b.state is BreakerState.CLOSED


async def test_success_threshold_needs_several_trials(clock: ManualClock) -> None:
    """With success_threshold=2 one successful trial is not enough to close."""
    b = await half_open("sync", clock, half_open_calls=2, success_threshold=2)
    b.call(ok)
    assert b.state is BreakerState.HALF_OPEN
    b.call(ok)
    assert b.state is BreakerState.CLOSED


async def test_trial_that_never_reports_does_not_wedge(clock: ManualClock) -> None:
    """A trial silent for a whole open period is treated as failed, so the breaker recovers."""
    b = await half_open("sync", clock)
    hung = asyncio.Event()

    async def hang() -> None:
        await hung.wait()

    task = asyncio.create_task(b.acall(hang))
    await asyncio.sleep(0)
    clock.advance(5)
    with pytest.raises(CircuitOpenError):
        b.call(ok)  # the silent trial is declared failed: open again
    clock.advance(5)
    assert b.call(ok) == "ok"
    assert b.state is BreakerState.CLOSED
    hung.set()
    await task  # the late report is ignored
    assert b.state is BreakerState.CLOSED


async def test_ignored_error_returns_permit(mode: str, clock: ManualClock) -> None:
    """An ignored exception is not recorded and gives the half-open permit back."""
    b = await half_open(mode, clock, ignore=KeyError)

    def missing() -> None:
        raise KeyError("k")

    with pytest.raises(KeyError):
        await run(mode, b, missing)
    assert b.state is BreakerState.HALF_OPEN
    assert await run(mode, b, ok) == "ok"  # the permit came back
    assert b.state is BreakerState.CLOSED
    assert b.snapshot().ignored == 1


async def test_ignore_wins_over_on(mode: str, clock: ManualClock) -> None:
    """An exception matching both `on` and `ignore` is ignored."""
    b = CircuitBreaker("db", consecutive_failures=1, on=Exception, ignore=ConnectionError)
    await call_n(mode, b, boom, 3)
    assert b.state is BreakerState.CLOSED
    assert b.snapshot().ignored == 3


async def test_on_predicate_and_non_matching_errors_count_as_success(mode: str) -> None:
    """Errors that `on` rejects are successes for the breaker; a predicate decides."""
    b = CircuitBreaker("db", consecutive_failures=2, on=lambda e: "fatal" in str(e))

    def mild() -> None:
        raise ValueError("mild")

    def fatal() -> None:
        raise ValueError("fatal")

    for fn in (mild, mild, fatal, mild, fatal):
        with pytest.raises(ValueError):
            await run(mode, b, fn)
    assert b.state is BreakerState.CLOSED
    snap = b.snapshot()
    assert (snap.failures, snap.successes) == (2, 3)
    with pytest.raises(ValueError):
        await run(mode, b, fatal)  # second fatal in a row
    assert b.state is BreakerState.OPEN


async def test_on_result_marks_failures(mode: str) -> None:
    """`on_result` turns returned values into failures."""
    b = CircuitBreaker("db", consecutive_failures=2, on_result=lambda r: r is None)
    assert await run(mode, b, lambda: None) is None
    assert await run(mode, b, lambda: None) is None
    assert b.state is BreakerState.OPEN


async def test_cancellation_never_counts(clock: ManualClock) -> None:
    """A cancelled call is neither a failure nor a success."""
    b = CircuitBreaker("db", consecutive_failures=1, clock=clock)

    async def forever() -> None:
        await asyncio.Event().wait()

    task = asyncio.create_task(b.acall(forever))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert b.state is BreakerState.CLOSED
    snap = b.snapshot()
    assert (snap.failures, snap.successes, snap.calls) == (0, 0, 0)

    def interrupt() -> None:
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        b.call(interrupt)
    assert b.state is BreakerState.CLOSED


async def test_slow_calls_open_the_breaker(mode: str, clock: ManualClock) -> None:
    """Calls at least slow_call_duration long count as slow; a slow-call rate opens it."""
    b = CircuitBreaker(
        "db", slow_call_duration=1.0, slow_call_rate=0.5, minimum_calls=2, window=10, clock=clock
    )

    def slow() -> str:
        clock.advance(2)
        return "late"

    await run(mode, b, ok)
    assert await run(mode, b, slow) == "late"
    assert b.state is BreakerState.OPEN
    snap = b.snapshot()
    assert (snap.slow, snap.failures, snap.slow_rate) == (1, 0, 0.5)


async def test_time_window_counts_only_recent_calls(mode: str, clock: ManualClock) -> None:
    """A time window forgets calls older than window_seconds."""
    b = CircuitBreaker("db", window_seconds=10, minimum_calls=3, failure_rate=0.5, clock=clock)
    await call_n(mode, b, boom, 1)
    await call_n(mode, b, ok, 2)
    clock.advance(11)
    await call_n(mode, b, ok, 1)
    await call_n(mode, b, boom, 1)
    snap = b.snapshot()
    assert (snap.window_calls, snap.window_failures) == (2, 1)
    assert b.state is BreakerState.CLOSED  # 2 calls < minimum_calls
    await call_n(mode, b, boom, 1)
    assert b.state is BreakerState.OPEN


async def test_consecutive_failures_reset_by_success(mode: str) -> None:
    """A success breaks a run of failures."""
    b = CircuitBreaker(
        "db", consecutive_failures=3, failure_rate=1.0, minimum_calls=100, window=100
    )
    await call_n(mode, b, boom, 2)
    await call_n(mode, b, ok, 1)
    await call_n(mode, b, boom, 2)
    assert b.state is BreakerState.CLOSED
    await call_n(mode, b, boom, 1)
    assert b.state is BreakerState.OPEN


async def test_open_backoff_grows_open_period(clock: ManualClock) -> None:
    """Repeated openings wait longer, following open_backoff, never less than open_for."""
    from buttress.retry import Backoff

    b = CircuitBreaker(
        "db",
        consecutive_failures=1,
        open_for=1,
        open_backoff=Backoff.exponential(base=1, factor=2, cap=8),
        clock=clock,
    )
    waits = []
    await call_n("sync", b, boom, 1)
    for _ in range(5):
        waits.append(b.snapshot().retry_after)
        clock.advance(waits[-1] or 0)
        await call_n("sync", b, boom, 1)  # the trial fails: open again
    assert waits == [1, 2, 4, 8, 8]
    clock.advance(8)
    b.call(ok)
    await call_n("sync", b, boom, 1)
    assert b.snapshot().retry_after == 1  # closing resets the growth


def test_trip_reset_disable(clock: ManualClock) -> None:
    """trip() forces open until reset(); disable() lets everything through and still counts."""
    b = CircuitBreaker("db", consecutive_failures=1, open_for=1, clock=clock)
    b.trip()
    clock.advance(100)
    assert b.state is BreakerState.FORCED_OPEN
    with pytest.raises(CircuitOpenError) as info:
        b.call(ok)
    assert info.value.retry_after is None
    b.reset()
    assert b.call(ok) == "ok"
    b.disable()
    for _ in range(5):
        with pytest.raises(ConnectionError):
            b.call(boom)
    assert b.state is BreakerState.DISABLED
    assert b.snapshot().failures == 5
    b.reset()
    assert b.state is BreakerState.CLOSED
    assert b.snapshot().window_failures == 0


def test_transitions_emit_events(clock: ManualClock) -> None:
    """Every transition emits one BreakerStateChanged event with a reason."""
    b = CircuitBreaker("payments", consecutive_failures=1, open_for=2, clock=clock)
    with RecordingListener() as events:
        with pytest.raises(ConnectionError):
            b.call(boom)
        clock.advance(2)
        b.call(ok)
        b.trip()
        b.reset()
    moves = [(e.old, e.new) for e in events.of(type(events.events[0]))]
    assert moves == [
        ("closed", "open"),
        ("open", "half_open"),
        ("half_open", "closed"),
        ("closed", "forced_open"),
        ("forced_open", "closed"),
    ]
    assert all(e.source == "payments" and e.reason for e in events.events)
    assert events.events[0].time == clock.time() - 2


def test_exact_counts_under_thread_contention() -> None:
    """Counts stay exact when many threads call at once (successes take no lock)."""
    b = CircuitBreaker("db", failure_rate=1.0, minimum_calls=100, window=100)
    per_thread = 5000

    def work(i: int) -> None:
        for n in range(per_thread):
            try:
                b.call(boom if (n + i) % 10 == 0 else ok)
            except ConnectionError:
                pass

    threads = [threading.Thread(target=work, args=(i,)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    snap = b.snapshot()
    assert snap.calls == 8 * per_thread
    assert snap.failures == 8 * per_thread // 10
    assert snap.successes == 8 * per_thread - snap.failures


async def test_decorator_sync_and_async() -> None:
    """A breaker decorates sync and async functions and keeps their names."""
    b = CircuitBreaker("db", consecutive_failures=1)

    @b
    def f(x: int) -> int:
        return x + 1

    @b
    async def g(x: int) -> int:
        return x * 2

    assert f(1) == 2
    assert await g(3) == 6
    assert (f.__name__, g.__name__) == ("f", "g")
    assert b.snapshot().successes == 2


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"failure_rate": 0}, "failure_rate"),
        ({"failure_rate": 1.5}, "failure_rate"),
        ({"failure_rate": float("nan")}, "failure_rate"),
        ({"slow_call_rate": -0.1}, "slow_call_rate"),
        ({"minimum_calls": 0}, "minimum_calls"),
        ({"minimum_calls": 101, "window": 100}, "minimum_calls"),
        ({"window": 0}, "window"),
        ({"window_seconds": -1}, "window_seconds"),
        ({"open_for": float("nan")}, "open_for"),
        ({"open_for": -1}, "open_for"),
        ({"slow_call_duration": 0}, "slow_call_duration"),
        ({"consecutive_failures": 0}, "consecutive_failures"),
        ({"half_open_calls": 0}, "half_open_calls"),
        ({"success_threshold": 2, "half_open_calls": 1}, "success_threshold"),
        ({"on": 42}, "on"),
        ({"open_backoff": 3}, "open_backoff"),
    ],
)
def test_bad_options_name_the_field(kwargs: dict, field: str) -> None:
    """Invalid options raise ConfigError at construction, naming the field and value."""
    with pytest.raises(ConfigError) as info:
        CircuitBreaker("db", **kwargs)
    assert info.value.field == field
    assert str(info.value).startswith(f"{field}: ")
    assert repr(next(iter(kwargs.values()))) in str(info.value) or field == "minimum_calls"


def test_durations_accept_timedelta() -> None:
    """open_for and window_seconds take timedelta as well as seconds."""
    b = CircuitBreaker("db", open_for=timedelta(minutes=2), window_seconds=timedelta(seconds=30))
    assert b.options.open_for == 120.0
    assert b.options.window_seconds == 30.0


def test_describe_and_snapshot_are_plain_data() -> None:
    """describe() and snapshot().to_dict() are JSON-friendly."""
    import json

    b = CircuitBreaker("db", on=(ConnectionError, TimeoutError))
    described = b.describe()
    assert described["policy"] == "CircuitBreaker"
    assert described["options"]["on"] == ["ConnectionError", "TimeoutError"]
    json.dumps(described)
    json.dumps(b.snapshot().to_dict())
