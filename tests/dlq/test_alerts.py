"""Alerts: thresholds on parked records and arrival rate, the cooldown, recovery and sinks."""

from __future__ import annotations

import logging

import pytest

from buttress import ConfigError
from buttress.dlq import Alerts, AlertState, DeadLetterAlert, DeadLetterQueue, Stats
from buttress.health import CallableSink, LogSink
from buttress.testing import ManualClock, RecordingListener


def stats(parked: int = 0, rate: float = 0.0) -> Stats:
    """Stats with ``parked`` parked records and an arrival ``rate``."""
    return Stats(
        time=1_700_000_000.0,
        total=parked,
        by_status={"parked": parked},
        by_queue={},
        by_classification={},
        by_error_type={},
        oldest_pending_at=None,
        arrival_rate=rate,
        rate_window=300.0,
    )


def test_threshold_cooldown_and_recovery() -> None:
    """Above the threshold alerts once per cooldown; coming back sends one recovery."""
    state = AlertState(Alerts(parked_above=10, cooldown=60))
    assert state.evaluate("dlq", stats(parked=10), 0) == []
    (first,) = state.evaluate("dlq", stats(parked=11), 0)
    assert (first.metric, first.new, first.value, first.threshold) == ("parked", "alert", 11, 10)
    assert state.evaluate("dlq", stats(parked=12), 59) == []
    (again,) = state.evaluate("dlq", stats(parked=12), 60)
    assert again.new == "alert"
    (back,) = state.evaluate("dlq", stats(parked=3), 61)
    assert (back.old, back.new) == ("alert", "ok")
    assert state.evaluate("dlq", stats(parked=3), 62) == []
    assert "above the threshold 10" in first.message()
    assert "back to or below" in back.message()


def test_both_metrics_are_watched() -> None:
    """Parked count and arrival rate alert independently."""
    state = AlertState(Alerts(parked_above=1, arrival_rate_above=0.5))
    raised = state.evaluate("dlq", stats(parked=5, rate=2.0), 0)
    assert sorted(a.metric for a in raised) == ["arrival_rate", "parked"]
    assert "/s" in next(a for a in raised if a.metric == "arrival_rate").message()


async def test_check_alerts_emits_and_sends(caplog: pytest.LogCaptureFixture) -> None:
    """check_alerts() emits each alert as an event and sends it to every sink; a failing
    sink is logged and does not stop the others."""
    received: list[DeadLetterAlert] = []

    def broken(alert: DeadLetterAlert) -> None:
        raise RuntimeError("sink down")

    alerts = Alerts(
        parked_above=0,
        sinks=(CallableSink(broken), CallableSink(received.append), LogSink()),
    )
    with DeadLetterQueue("sqlite:///:memory:", alerts=alerts, clock=ManualClock()) as dlq:
        dlq.add({}, error=ValueError("bad"))
        with RecordingListener() as events, caplog.at_level(logging.WARNING, "buttress"):
            raised = await dlq.check_alerts()
    assert [a.metric for a in raised] == ["parked"]
    assert received == raised
    assert events.kinds() == ["dlq.alert"]
    assert "sink down" in caplog.text or "failed" in caplog.text
    assert any("dead letter queue 'dlq': parked 1" in r.getMessage() for r in caplog.records)


async def test_no_alerts_configured() -> None:
    """Without Alerts, check_alerts() does nothing."""
    with DeadLetterQueue("sqlite:///:memory:") as dlq:
        assert await dlq.check_alerts() == []


@pytest.mark.parametrize(
    ("options", "field"),
    [
        ({"parked_above": -1}, "parked_above"),
        ({"arrival_rate_above": "fast"}, "arrival_rate_above"),
        ({"cooldown": -5}, "cooldown"),
        ({"sinks": (print,)}, "sinks[0]"),
    ],
)
def test_bad_alert_options(options: dict, field: str) -> None:
    """Bad alert options raise ConfigError naming the field."""
    with pytest.raises(ConfigError) as info:
        Alerts(**options)
    assert info.value.field == field
