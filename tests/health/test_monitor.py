"""HealthMonitor: history, alerts on status changes with a cooldown, events, and alert sinks."""

from __future__ import annotations

import base64
import json
import logging
import socket
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

import pytest

from buttress.errors import ConfigError
from buttress.events import HealthAlert
from buttress.health import (
    CallableSink,
    HealthMonitor,
    HealthRegistry,
    LogSink,
    Status,
    WebhookSink,
)
from buttress.testing import ManualClock, RecordingListener


class Switch:
    """A check whose status the test sets."""

    def __init__(self, status: str = "pass") -> None:
        self.status = status

    async def __call__(self) -> dict[str, str]:
        return {"status": self.status, "message": f"now {self.status}"}


@pytest.fixture
def clock() -> ManualClock:
    """Virtual time for cooldowns and intervals."""
    return ManualClock()


@pytest.fixture
def db() -> Switch:
    """The check under test."""
    return Switch()


@pytest.fixture
def registry(clock: ManualClock, db: Switch) -> HealthRegistry:
    """A registry with the switchable ``db`` check."""
    registry = HealthRegistry(clock=clock)
    registry.add(db, name="db")
    return registry


class Hook:
    """A real HTTP server on 127.0.0.1 that records the JSON bodies POSTed to it."""

    def __init__(self, answer: int = 204) -> None:
        bodies: list[dict[str, Any]] = []
        auth: list[str | None] = []
        self.bodies, self.auth = bodies, auth

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["content-length"])
                bodies.append(json.loads(self.rfile.read(length)))
                auth.append(self.headers["authorization"])
                self.send_response(answer)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://hook:pa55word@127.0.0.1:{self.server.server_address[1]}/alerts"
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.01}, daemon=True
        )
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


@pytest.fixture
def hook() -> Iterator[Hook]:
    """A webhook receiver answering 204."""
    server = Hook()
    yield server
    server.close()


@pytest.fixture
def closed_url() -> str:
    """A URL on a local port nobody listens on (connections are refused)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://alerts:topsecret@127.0.0.1:{port}/hook"


# -- history and alerts ---------------------------------------------------------------------------


async def test_history_is_bounded_per_check(registry: HealthRegistry, db: Switch) -> None:
    """Each tick appends one result per check; only the last ``history`` results are kept."""
    monitor = HealthMonitor(registry, history=3)
    for status in ["pass", "warn", "fail", "pass", "warn"]:
        db.status = status
        await monitor.tick()
    assert [r.status.value for r in monitor.history("db")] == ["fail", "pass", "warn"]
    assert len(monitor.history("process")) == 3
    assert monitor.history("nope") == ()
    assert monitor.last_report is not None
    assert monitor.last_report.status is Status.WARN


async def test_status_change_raises_an_alert_event(registry: HealthRegistry, db: Switch) -> None:
    """A change of status emits one HealthAlert event with the old and new status and output."""
    monitor = HealthMonitor(registry, cooldown=0)
    with RecordingListener() as events:
        await monitor.tick()
        await monitor.tick()
        assert events.of(HealthAlert) == []
        db.status = "fail"
        await monitor.tick()
        await monitor.tick()
    [alert] = events.of(HealthAlert)
    assert (alert.source, alert.old, alert.new, alert.output) == ("db", "pass", "fail", "now fail")
    assert alert.time == 1_700_000_000.0
    assert monitor.last_alerts == (alert,)


async def test_first_result_alerts_only_when_not_passing(
    registry: HealthRegistry, db: Switch
) -> None:
    """A check failing from the start alerts 'unknown -> fail'; one passing from the start not."""
    db.status = "fail"
    monitor = HealthMonitor(registry)
    await monitor.tick()
    assert [(a.source, a.old, a.new) for a in monitor.last_alerts] == [("db", "unknown", "fail")]


async def test_cooldown_stops_a_flapping_check_from_flooding(
    registry: HealthRegistry, db: Switch, clock: ManualClock
) -> None:
    """Within the cooldown changes are held back; after it, a status still changed alerts once."""
    monitor = HealthMonitor(registry, cooldown=300)
    await monitor.tick()
    db.status = "fail"
    await monitor.tick()  # alerts pass -> fail
    for status in ["pass", "fail", "pass", "fail", "pass"]:  # flapping inside the cooldown
        clock.advance(10)
        db.status = status
        await monitor.tick()
    assert [(a.old, a.new) for a in monitor.last_alerts] == [("pass", "fail")]
    clock.advance(250)  # 300 s after the alert, still passing: report the recovery now
    await monitor.tick()
    assert [(a.old, a.new) for a in monitor.last_alerts] == [("pass", "fail"), ("fail", "pass")]
    clock.advance(400)
    await monitor.tick()
    assert len(monitor.last_alerts) == 2  # no change, no alert


async def test_flap_back_to_the_alerted_status_is_silent(
    registry: HealthRegistry, db: Switch, clock: ManualClock
) -> None:
    """A check back at its last alerted status when the cooldown ends does not alert again."""
    monitor = HealthMonitor(registry, cooldown=60)
    await monitor.tick()
    db.status = "warn"
    await monitor.tick()
    db.status = "fail"
    clock.advance(30)
    await monitor.tick()
    db.status = "warn"
    clock.advance(60)
    await monitor.tick()
    assert [(a.old, a.new) for a in monitor.last_alerts] == [("pass", "warn")]


async def test_last_alerts_are_bounded(registry: HealthRegistry, db: Switch) -> None:
    """Only the most recent ``history`` alerts are kept."""
    monitor = HealthMonitor(registry, history=2, cooldown=0)
    for status in ["pass", "fail", "pass", "warn"]:
        db.status = status
        await monitor.tick()
    assert [(a.old, a.new) for a in monitor.last_alerts] == [("fail", "pass"), ("pass", "warn")]


# -- sinks ----------------------------------------------------------------------------------------


async def test_callable_sinks_sync_and_async(registry: HealthRegistry, db: Switch) -> None:
    """Sync and async callables receive each alert."""
    got: list[str] = []

    async def async_fn(alert: HealthAlert) -> None:
        got.append(f"async {alert.new}")

    monitor = HealthMonitor(
        registry,
        sinks=[CallableSink(lambda alert: got.append(f"sync {alert.new}")), CallableSink(async_fn)],
    )
    await monitor.tick()
    db.status = "fail"
    await monitor.tick()
    assert sorted(got) == ["async fail", "sync fail"]


async def test_log_sink_logs_at_warning(
    registry: HealthRegistry, db: Switch, caplog: pytest.LogCaptureFixture
) -> None:
    """LogSink writes the alert's message under the buttress logger at WARNING."""
    monitor = HealthMonitor(registry, sinks=[LogSink()])
    await monitor.tick()
    db.status = "warn"
    with caplog.at_level(logging.WARNING, logger="buttress"):
        await monitor.tick()
    messages = [(r.levelno, r.getMessage()) for r in caplog.records if r.name == "buttress"]
    assert (logging.WARNING, "health check 'db': pass -> warn: now warn") in messages


@pytest.mark.parametrize("httpx_installed", [True, False])
async def test_webhook_posts_the_alert_as_json(
    registry: HealthRegistry,
    db: Switch,
    hook: Hook,
    monkeypatch: pytest.MonkeyPatch,
    httpx_installed: bool,
) -> None:
    """WebhookSink POSTs the alert to a real server, with the URL's credentials as basic auth,
    through httpx or, when httpx is missing, through urllib in a thread."""
    if not httpx_installed:
        monkeypatch.setitem(sys.modules, "httpx", None)
    monitor = HealthMonitor(registry, sinks=[WebhookSink(hook.url, headers={"x-team": "ops"})])
    await monitor.tick()
    db.status = "fail"
    await monitor.tick()
    [body] = hook.bodies
    assert body == {
        "kind": "health.alert",
        "source": "db",
        "time": 1_700_000_000.0,
        "old": "pass",
        "new": "fail",
        "output": "now fail",
        "message": "health check 'db': pass -> fail: now fail",
    }
    assert hook.auth == ["Basic " + base64.b64encode(b"hook:pa55word").decode()]


@pytest.mark.parametrize("httpx_installed", [True, False])
async def test_failing_webhook_is_logged_redacted_and_others_still_deliver(
    registry: HealthRegistry,
    db: Switch,
    closed_url: str,
    caplog: pytest.LogCaptureFixture,
    monkeypatch: pytest.MonkeyPatch,
    httpx_installed: bool,
) -> None:
    """A refused webhook logs a warning without its password; the other sinks still receive."""
    if not httpx_installed:
        monkeypatch.setitem(sys.modules, "httpx", None)
    got: list[HealthAlert] = []
    monitor = HealthMonitor(
        registry, sinks=[WebhookSink(closed_url, timeout=2), CallableSink(got.append)]
    )
    db.status = "fail"
    with caplog.at_level(logging.WARNING, logger="buttress"):
        await monitor.tick()
    assert len(got) == 1
    logged = "\n".join(r.getMessage() for r in caplog.records)
    assert "health alert webhook http://alerts:***@127.0.0.1" in logged
    assert "topsecret" not in logged


async def test_webhook_error_status_is_logged(
    registry: HealthRegistry, db: Switch, caplog: pytest.LogCaptureFixture
) -> None:
    """A webhook answering 500 is logged as a failure."""
    server = Hook(answer=500)
    try:
        monitor = HealthMonitor(registry, sinks=[WebhookSink(server.url)])
        db.status = "fail"
        with caplog.at_level(logging.WARNING, logger="buttress"):
            await monitor.tick()
    finally:
        server.close()
    assert "answered HTTP 500" in caplog.text
    assert "pa55word" not in caplog.text


async def test_a_raising_sink_does_not_stop_the_others(
    registry: HealthRegistry, db: Switch, caplog: pytest.LogCaptureFixture
) -> None:
    """A sink that raises is logged; the sinks after it still get the alert."""
    got: list[str] = []

    def broken(alert: HealthAlert) -> None:
        raise RuntimeError("sink down")

    monitor = HealthMonitor(
        registry, sinks=[CallableSink(broken), CallableSink(lambda a: got.append(a.new))]
    )
    db.status = "fail"
    with caplog.at_level(logging.ERROR, logger="buttress"):
        await monitor.tick()
    assert got == ["fail"]
    assert "health alert sink" in caplog.text
    assert "RuntimeError: sink down" in caplog.text


# -- running periodically -------------------------------------------------------------------------


async def test_start_ticks_every_interval_until_stopped(
    registry: HealthRegistry, clock: ManualClock
) -> None:
    """start() ticks at once and then every interval on the clock; stop() ends it."""
    monitor = HealthMonitor(registry, interval=15)
    monitor.start()
    assert monitor.running
    with pytest.raises(RuntimeError, match="already running"):
        monitor.start()
    for _ in range(100):
        if len(monitor.history("db")) >= 3:
            break
        await clock.asleep(0)
    await monitor.stop()
    assert not monitor.running
    assert len(monitor.history("db")) >= 3
    assert [s for s in clock.sleeps if s][:2] == [15.0, 15.0]
    await monitor.stop()  # a second stop does nothing


def test_options_are_validated(registry: HealthRegistry) -> None:
    """Bad intervals, history sizes, cooldowns, sinks and webhook URLs raise ConfigError."""
    with pytest.raises(ConfigError, match="interval"):
        HealthMonitor(registry, interval=0)
    with pytest.raises(ConfigError, match="history"):
        HealthMonitor(registry, history=0)
    with pytest.raises(ConfigError, match="cooldown"):
        HealthMonitor(registry, cooldown=-1)
    with pytest.raises(ConfigError, match="sinks"):
        HealthMonitor(registry, sinks=[print])  # type: ignore[list-item]
    with pytest.raises(ConfigError, match="url"):
        WebhookSink("ftp://user:secret@host/x")
    with pytest.raises(ConfigError, match="fn"):
        CallableSink(42)  # type: ignore[arg-type]
