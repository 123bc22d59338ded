"""``HealthMonitor``: run the registry periodically, keep a bounded history per check, and raise
an alert (a ``HealthAlert`` event, delivered to sinks) when a check changes status, at most once
per check per cooldown. Sinks: ``LogSink``, ``WebhookSink``, ``CallableSink``."""

from __future__ import annotations

import asyncio
import base64
import inspect
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Protocol, runtime_checkable

from buttress import _options as opt
from buttress._clock import Clock
from buttress._redact import redact
from buttress.errors import ConfigError
from buttress.events import HealthAlert, emit
from buttress.health._model import CheckResult, Status
from buttress.health._registry import HealthRegistry
from buttress.health._report import HealthReport

__all__ = ["AlertSink", "CallableSink", "HealthMonitor", "LogSink", "WebhookSink"]

logger = logging.getLogger("buttress")


@runtime_checkable
class AlertSink(Protocol):
    """Where alerts go: anything with ``async send(alert)``."""

    async def send(self, alert: HealthAlert) -> None:
        """Deliver ``alert``; an exception is logged by the monitor and skipped."""


class LogSink:
    """Logs each alert under ``logger`` (default the ``buttress`` logger) at ``level``
    (default WARNING)."""

    def __init__(self, logger: logging.Logger | None = None, *, level: int = logging.WARNING):
        self.logger = logger if logger is not None else logging.getLogger("buttress")
        self.level = level

    async def send(self, alert: HealthAlert) -> None:
        """Log the alert's message, with its fields in ``extra``."""
        self.logger.log(
            self.level,
            alert.message(),
            extra={"buttress_event": alert.kind, "buttress_source": alert.source},
        )

    def __repr__(self) -> str:
        return f"LogSink({self.logger.name!r})"


class WebhookSink:
    """POSTs each alert as JSON (``HealthAlert.to_dict()`` plus ``message``) to ``url``.

    ``WebhookSink(url, *, timeout=5.0, headers=None)``. Uses ``httpx.AsyncClient`` when httpx is
    installed, else ``urllib`` in a thread. A failure (network error, non-2xx answer) is logged
    with the URL's password masked, never raised.
    """

    def __init__(
        self, url: str, *, timeout: float = 5.0, headers: dict[str, str] | None = None
    ) -> None:
        if not url.startswith(("http://", "https://")):
            raise ConfigError("url", redact(url), "must be an http:// or https:// URL")
        self.url = url
        self.timeout = opt.duration("timeout", timeout)
        self.headers = dict(headers or {})
        if not any(key.lower() == "content-type" for key in self.headers):
            self.headers["content-type"] = "application/json"

    async def send(self, alert: HealthAlert) -> None:
        """POST the alert; log a failure at WARNING."""
        body = json.dumps({**alert.to_dict(), "message": alert.message()}).encode()
        try:
            status = await self._post(body)
        except Exception as exc:
            logger.warning(
                "health alert webhook %s failed: %s", redact(self.url), redact(_describe(exc))
            )
            return
        if not 200 <= status < 300:
            logger.warning("health alert webhook %s answered HTTP %d", redact(self.url), status)

    async def _post(self, body: bytes) -> int:
        try:
            import httpx
        except ImportError:
            return await asyncio.to_thread(self._post_urllib, body)
        async with httpx.AsyncClient(timeout=self.timeout) as client:
            response = await client.post(self.url, content=body, headers=self.headers)
            return response.status_code

    def _post_urllib(self, body: bytes) -> int:
        # urllib does not take credentials from the URL: send them as basic auth, as httpx does.
        parts = urllib.parse.urlsplit(self.url)
        url, headers = self.url, dict(self.headers)
        if parts.username is not None or parts.password is not None:
            netloc = parts.netloc.rpartition("@")[2]
            url = urllib.parse.urlunsplit(parts._replace(netloc=netloc))
            user, password = (
                urllib.parse.unquote(v or "") for v in (parts.username, parts.password)
            )
            userinfo = f"{user}:{password}"
            headers["authorization"] = "Basic " + base64.b64encode(userinfo.encode()).decode()
        request = urllib.request.Request(url, data=body, headers=headers, method="POST")
        try:
            with urllib.request.urlopen(request, timeout=self.timeout) as response:
                return int(response.status)
        except urllib.error.HTTPError as exc:
            return exc.code

    def __repr__(self) -> str:
        return f"WebhookSink({redact(self.url)!r})"


def _describe(exc: BaseException) -> str:
    text = str(exc)
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


class CallableSink:
    """Calls ``fn(alert)``; ``fn`` may be sync (called in the event loop's thread, keep it quick)
    or async."""

    def __init__(self, fn: Callable[[HealthAlert], object | Awaitable[object]]) -> None:
        if not callable(fn):
            raise ConfigError("fn", fn, "must be a callable")
        self.fn = fn

    async def send(self, alert: HealthAlert) -> None:
        """Call the function with the alert (and await it if it returns an awaitable)."""
        value = self.fn(alert)
        if inspect.isawaitable(value):
            await value

    def __repr__(self) -> str:
        return f"CallableSink({self.fn!r})"


@dataclass(slots=True)
class _Track:
    """Per check: its history, the last status alerted (or the baseline), when it alerted."""

    history: deque[CheckResult]
    alerted: Status
    alerted_at: float | None = None


class HealthMonitor:
    """Runs ``registry`` every ``interval`` seconds and alerts on status changes.

    ``HealthMonitor(registry, *, interval=60.0, history=100, cooldown=300.0, sinks=(),
    clock=None)`` (clock defaults to the registry's). Each ``tick()`` runs every check fresh and
    appends its result to a history of at most ``history`` results. A check whose status differs
    from the last one alerted raises a ``HealthAlert`` (emitted as an event and sent to every
    sink), unless it alerted less than ``cooldown`` seconds ago: then the first tick after the
    cooldown alerts if the status still differs. A check's first result alerts only when it is not
    a pass (``unknown -> fail``).
    """

    def __init__(
        self,
        registry: HealthRegistry,
        *,
        interval: float = 60.0,
        history: int = 100,
        cooldown: float = 300.0,
        sinks: Iterable[AlertSink] = (),
        clock: Clock | None = None,
    ) -> None:
        self.registry = registry
        self.interval = opt.duration("interval", interval)
        self.history_size = opt.integer("history", history)
        self.cooldown = opt.duration("cooldown", cooldown, allow_zero=True)
        self.sinks: tuple[AlertSink, ...] = tuple(sinks)
        for index, sink in enumerate(self.sinks):
            if not isinstance(sink, AlertSink):
                raise ConfigError(f"sinks[{index}]", sink, "must have an async send(alert)")
        self.clock: Clock = clock if clock is not None else registry.clock
        self.last_report: HealthReport | None = None
        self._tracks: dict[str, _Track] = {}
        self._alerts: deque[HealthAlert] = deque(maxlen=self.history_size)
        self._task: asyncio.Task[None] | None = None

    @property
    def last_alerts(self) -> tuple[HealthAlert, ...]:
        """The most recent alerts (at most ``history``), oldest first."""
        return tuple(self._alerts)

    @property
    def running(self) -> bool:
        """Whether ``start()`` launched the periodic task and it has not stopped."""
        return self._task is not None and not self._task.done()

    def history(self, name: str) -> tuple[CheckResult, ...]:
        """The recent results of check ``name``, oldest first (empty if never seen)."""
        track = self._tracks.get(name)
        return tuple(track.history) if track is not None else ()

    async def tick(self) -> HealthReport:
        """Run every check once (fresh), record the results, raise and deliver the alerts."""
        report = await self.registry.run(fresh=True)
        self.last_report = report
        now = self.clock.monotonic()
        alerts: list[HealthAlert] = []
        for name, outcome in report.checks.items():
            result = outcome.result
            track = self._tracks.get(name)
            if track is None:
                history = deque([result], maxlen=self.history_size)
                track = self._tracks[name] = _Track(history, result.status)
                if result.status is not Status.PASS:
                    alerts.append(self._alert(name, track, Status.UNKNOWN, result, now))
                continue
            track.history.append(result)
            if result.status is track.alerted:
                continue
            if track.alerted_at is not None and now - track.alerted_at < self.cooldown:
                continue  # flapping: the first tick after the cooldown decides
            alerts.append(self._alert(name, track, track.alerted, result, now))
        if alerts:
            await self._deliver(alerts)
        return report

    def _alert(
        self, name: str, track: _Track, old: Status, result: CheckResult, now: float
    ) -> HealthAlert:
        track.alerted, track.alerted_at = result.status, now
        alert = HealthAlert(name, self.clock.time(), old.value, result.status.value, result.output)
        self._alerts.append(alert)
        emit(alert)
        return alert

    async def _deliver(self, alerts: list[HealthAlert]) -> None:
        jobs = [_send(sink, alert) for alert in alerts for sink in self.sinks]
        if jobs:
            await asyncio.gather(*jobs)

    def start(self) -> None:
        """Tick now and then every ``interval`` seconds in a task of the running loop."""
        if self.running:
            raise RuntimeError("this HealthMonitor is already running")
        self._task = asyncio.get_running_loop().create_task(
            self._loop(), name="buttress-health-monitor"
        )

    async def stop(self) -> None:
        """Stop the periodic task and wait for it to end (does nothing if not running)."""
        task, self._task = self._task, None
        if task is None:
            return
        task.cancel()
        try:
            await task
        except asyncio.CancelledError:
            current = asyncio.current_task()
            if current is not None and current.cancelling():  # the caller is cancelled too
                raise

    async def _loop(self) -> None:
        clock = self.clock
        due = clock.monotonic()
        while True:
            try:
                await self.tick()
            except Exception:
                logger.exception("health monitor tick failed")
            # Keep to the schedule; after a tick longer than the interval, skip the missed ones.
            due = max(due + self.interval, clock.monotonic())
            await clock.asleep(due - clock.monotonic())


async def _send(sink: AlertSink, alert: HealthAlert) -> None:
    try:
        await sink.send(alert)
    except Exception:
        logger.exception("health alert sink %r failed on %s", sink, alert.source)
