"""``OpsContext``: everything the ops endpoints share, without any web framework in it."""

from __future__ import annotations

import inspect
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from buttress._clock import Clock
from buttress.health import HealthMonitor, HealthRegistry, HealthReport, Status
from buttress.ops._audit import AuditLog
from buttress.ops._events import BreakerStates, EventLog, HealthHistory
from buttress.ops._report import reliability_report
from buttress.ops._state import StateStore
from buttress.ops._tokens import FailureLimiter, TokenSet
from buttress.ops.scheduler import Scheduler
from buttress.registry import Registry

__all__ = ["OpsContext"]

logger = logging.getLogger("buttress.ops")


@dataclass(slots=True, eq=False)
class OpsContext:
    """The ops app's collaborators; ``app.state.ops`` holds it.

    Other parts of the server (the dashboard, the scheduler) read ``events`` (recent events),
    ``history`` (health samples), ``store`` (the SQLite state) and ``audit`` from here.
    ``scheduler`` runs the periodic jobs (None when the app has none): later capabilities add
    theirs with ``ctx.scheduler.add(name, fn, interval=...)``. ``monitor`` is the health monitor
    its ``health-monitor`` job ticks; ``monitor_runs`` counts those runs' results per check and
    ``breaker_states`` the time each breaker spent in each state (both for the report).
    """

    registry: Registry
    health: HealthRegistry
    tokens: TokenSet
    limiter: FailureLimiter
    store: StateStore
    audit: AuditLog
    events: EventLog
    history: HealthHistory
    clock: Clock
    public_reads: bool
    max_body_bytes: int
    started: float
    owns_store: bool = True
    scheduler: Scheduler | None = None
    monitor: HealthMonitor | None = None
    monitor_runs: HealthHistory = field(default_factory=lambda: HealthHistory(distinct=False))
    breaker_states: BreakerStates = field(init=False)
    extra: dict[str, Any] = field(default_factory=dict)
    """A place for later parts (scheduler, dashboard) to hang their objects."""
    on_startup: list[Callable[[], object]] = field(default_factory=list)
    """Called (awaited if they return an awaitable) when the app's lifespan starts, in order."""
    on_shutdown: list[Callable[[], object]] = field(default_factory=list)
    """Called when the lifespan ends, in reverse order, before the context closes."""

    def __post_init__(self) -> None:
        self.breaker_states = BreakerStates(self.started)

    async def startup(self) -> None:
        """Open the context and run the ``on_startup`` hooks (the app's lifespan calls this)."""
        self.open()
        for hook in self.on_startup:
            result = hook()
            if inspect.isawaitable(result):
                await result

    async def shutdown(self) -> None:
        """Run the ``on_shutdown`` hooks (even if one fails), then close the context."""
        try:
            for hook in reversed(self.on_shutdown):
                try:
                    result = hook()
                    if inspect.isawaitable(result):
                        await result
                except Exception:
                    logger.exception("ops shutdown hook %r failed", hook)
        finally:
            self.close()

    async def health_report(
        self, group: str | None = None, *, fresh: bool = False, wait: bool = False
    ) -> HealthReport:
        """Run the health registry (cached results unless ``fresh``) and remember the samples."""
        report = await self.health.run(group, fresh=fresh, wait=wait)
        self.history.record(report)
        return report

    async def reliability_report(self) -> dict[str, Any]:
        """The reliability report since the app was created (cached health results).
        Availability counts the health monitor's runs once there are any, else the distinct
        results the endpoints saw."""
        report = await self.health_report(None)
        monitored = bool(self.monitor_runs)
        return reliability_report(
            self.registry,
            start=self.started,
            end=self.clock.time(),
            health=report,
            history=self.monitor_runs if monitored else self.history,
            states=self.breaker_states,
            availability_from="monitor runs" if monitored else "results seen",
        )

    def open(self) -> None:
        """Listen to events (again, after ``close``); the store opens itself on first use."""
        self.events.listen()
        self.breaker_states.listen()

    def close(self) -> None:
        """Stop listening to events and close the state store if the app opened it (both come
        back with ``open`` and the next use: a lifespan may run more than once)."""
        self.events.close()
        self.breaker_states.close()
        if self.owns_store:
            self.store.close()


def never_ran(report: HealthReport) -> list[str]:
    """The critical checks of ``report`` that have no result yet."""
    return [
        name
        for name, outcome in report.checks.items()
        if outcome.check.critical and outcome.result.status is Status.UNKNOWN
    ]
