"""Clocks, events, listeners and the error tree."""

from __future__ import annotations

import asyncio
import logging
import pickle
import threading

import pytest

import buttress
from buttress import events
from buttress._clock import SystemClock
from buttress.errors import (
    BulkheadFullError,
    ButtressError,
    CircuitOpenError,
    ConfigError,
    RateLimitedError,
    RejectedError,
)
from buttress.testing import ManualClock, RecordingListener


def test_manual_clock_advances_and_records_sleeps() -> None:
    """sleep() moves virtual time and is recorded; time() follows monotonic()."""
    clock = ManualClock(start=10.0, wall=1000.0)
    clock.sleep(1.5)
    clock.sleep(0)
    assert clock.monotonic() == 11.5
    assert clock.time() == 1001.5
    assert clock.sleeps == [1.5, 0]
    with pytest.raises(ValueError, match="seconds"):
        clock.advance(-1)


async def test_manual_clock_asleep_and_timers_in_order() -> None:
    """asleep() advances time and runs due timers in deadline order; cancelled ones do not run."""
    clock = ManualClock()
    fired: list[str] = []
    clock.call_at(2.0, lambda: fired.append("b"))
    clock.call_at(1.0, lambda: fired.append("a"))
    clock.call_at(1.5, lambda: fired.append("never")).cancel()
    await clock.asleep(5)
    assert fired == ["a", "b"]
    assert clock.monotonic() == 5.0


def test_manual_clock_wait() -> None:
    """wait() returns at once when set; with a timeout it lets the time pass virtually."""
    clock = ManualClock()
    event = threading.Event()
    assert clock.wait(event, 3.0) is False
    assert clock.monotonic() == 3.0
    event.set()
    assert clock.wait(event, None) is True


async def test_system_clock() -> None:
    """SystemClock reads real time, skips zero sleeps and schedules loop timers."""
    clock = SystemClock()
    before = clock.monotonic()
    clock.sleep(0)
    await clock.asleep(0)
    fired = asyncio.Event()
    clock.call_at(clock.monotonic() + 0.001, fired.set)
    await asyncio.wait_for(fired.wait(), 1)
    assert clock.monotonic() >= before
    assert clock.wait(threading.Event(), 0.001) is False
    assert isinstance(clock, buttress.Clock)


def test_listener_receives_events_and_failures_are_contained(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Every listener gets each event; one that raises is logged, the others still get it."""

    def broken(event: events.Event) -> None:
        raise RuntimeError("listener bug")

    events.add_listener(broken)
    try:
        with RecordingListener() as rec:
            events.emit(events.TimeoutExpired(source="t", time=1.0, seconds=2.0))
    finally:
        events.remove_listener(broken)
    assert rec.kinds() == ["timeout.expired"]
    assert "listener bug" in caplog.text
    assert broken not in events.listeners()


def test_logging_listener_levels_and_extra(caplog: pytest.LogCaptureFixture) -> None:
    """The default listener logs under `buttress` at the event's level with the kind in extra."""
    caplog.set_level(logging.INFO, logger="buttress")
    events.emit(
        events.BreakerStateChanged(source="db", time=0, old="closed", new="open", reason="x")
    )
    record = caplog.records[-1]
    assert record.name == "buttress"
    assert record.levelno == logging.WARNING
    assert record.buttress_event == "breaker.state_changed"  # type: ignore[attr-defined]
    assert "closed -> open" in record.getMessage()


def test_wants_follows_logger_level_and_listeners() -> None:
    """Events are built only when someone will read them: the logger's level, or a listener
    that takes every kind or that kind."""
    logger = logging.getLogger("buttress")
    old = logger.level
    saved = events._entries  # other tests may keep listeners alive (an ops app's event tap)
    for item in events.listeners():
        if not isinstance(item, events.LoggingListener):
            events.remove_listener(item)
    logger.setLevel(logging.WARNING)
    try:
        assert not events.wants(events.RetryScheduled)
        assert events.wants(events.BreakerStateChanged)
        breaker_only = RecordingListener()
        events.add_listener(breaker_only, kinds={"breaker.state_changed"})
        try:
            assert not events.wants(events.RetryScheduled)
            events.emit(events.TimeoutExpired(source="t", time=0, seconds=1))
            assert breaker_only.events == []
        finally:
            events.remove_listener(breaker_only)
        with RecordingListener():
            assert events.wants(events.TimeoutExpired)
    finally:
        logger.setLevel(old)
        events._entries = saved
        events._refresh()


def test_event_to_dict_renders_errors() -> None:
    """to_dict() gives plain data with the kind and errors as text."""
    event = events.RetryScheduled(source="r", time=1.0, attempt=1, delay=0.5, error=OSError("x"))
    assert event.to_dict() == {
        "kind": "retry.scheduled",
        "source": "r",
        "time": 1.0,
        "attempt": 1,
        "delay": 0.5,
        "error": "OSError: x",
    }


def test_error_tree() -> None:
    """The hierarchy matches the architecture; TimeoutError and ConfigError are builtins too."""
    assert issubclass(ConfigError, ValueError)
    assert issubclass(buttress.TimeoutError, TimeoutError)
    for cls in (CircuitOpenError, RateLimitedError, BulkheadFullError, buttress.LoadShedError):
        assert issubclass(cls, RejectedError)
        assert issubclass(cls, ButtressError)
    err = CircuitOpenError("db", 1.5)
    assert str(err) == "db: circuit breaker is open (retry after 1.500s)"
    copy = pickle.loads(pickle.dumps(err))
    assert (copy.source, copy.retry_after) == ("db", 1.5)
    timeout = pickle.loads(pickle.dumps(buttress.TimeoutError("t", 2.0)))
    assert str(timeout) == "t: timed out after 2s"
    assert str(ConfigError("a.b", -1, "must be > 0")) == "a.b: must be > 0, got -1"


def test_logged_events_never_carry_a_password(caplog: pytest.LogCaptureFixture) -> None:
    """The default listener redacts DSN passwords and secrets from event messages."""
    caplog.set_level(logging.INFO, logger="buttress")
    error = ConnectionError("cannot reach postgresql://app:hunter2@db:5432/prod")
    event = events.RetryScheduled(source="db", time=0, attempt=1, delay=0.1, error=error)
    events.emit(event)
    assert "hunter2" not in caplog.text
    assert "postgresql://app:***@db" in caplog.text
    assert "hunter2" not in str(event.to_dict())
