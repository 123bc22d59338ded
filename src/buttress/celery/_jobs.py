"""The maintenance jobs, run by name: the ops server's own jobs plus DLQ, cleanup and backups.

``Maintenance`` builds what ``buttress serve`` builds for its jobs (an ``OpsContext`` over the
same state directory, and an ops ``Scheduler`` given the standard jobs by
``buttress.ops._jobs.attach_scheduler``), so a Celery task and the in-process scheduler run the
same code and every run lands in the same ``job_runs`` history. The scheduler is never started:
Celery beat is the timer. The other jobs (``dlq-process``, ``cleanup``, ``backup``, ``drill``)
are added to it here, unless the ops scheduler already has a job of that name: then its code
runs. Nothing in this module imports Celery.
"""

from __future__ import annotations

import asyncio
import dataclasses
import inspect
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass
from os import PathLike
from types import MappingProxyType
from typing import Any

from buttress._clock import Clock
from buttress._redact import redact
from buttress.backup import BackupManager
from buttress.dlq import DeadLetterQueue
from buttress.errors import BackupError
from buttress.health import HealthMonitor, HealthRegistry
from buttress.ops._audit import AuditLog
from buttress.ops._context import OpsContext
from buttress.ops._events import EventLog, HealthHistory
from buttress.ops._jobs import (
    BREAKER_INTERVAL,
    JOB_NAMES,
    REPORT_INTERVAL,
    REPORTS,
    attach_scheduler,
)
from buttress.ops._state import StateStore
from buttress.ops._tokens import FailureLimiter, TokenSet
from buttress.ops.scheduler import Scheduler
from buttress.registry import Registry
from buttress.resources import cleanup_temp

__all__ = ["INTERVALS", "JOBS", "Maintenance", "Resources"]

HEALTH_JOB, BREAKER_JOB, REPORT_JOB = JOB_NAMES
DLQ_JOB, CLEANUP_JOB, BACKUP_JOB, DRILL_JOB = "dlq-process", "cleanup", "backup", "drill"
DAY = 86400.0

INTERVALS: Mapping[str, float] = MappingProxyType(
    {
        HEALTH_JOB: 60.0,  # HealthMonitor's default interval
        BREAKER_JOB: BREAKER_INTERVAL,
        REPORT_JOB: REPORT_INTERVAL,
        DLQ_JOB: 300.0,
        CLEANUP_JOB: DAY,
        BACKUP_JOB: DAY,
        DRILL_JOB: 7 * DAY,
    }
)
"""Each job's default interval in seconds, as the ops scheduler runs its own jobs."""
JOBS: tuple[str, ...] = tuple(INTERVALS)
"""Every maintenance job's name."""

NO_DLQ = "nothing to do: no dead letter queue (pass dlq= to buttress.celery.install)"
NO_BACKUPS = "nothing to do: no BackupManager (pass backups= to buttress.celery.install)"
NO_SOURCES = "nothing to do: no backup source is configured in the catalog"


@dataclass(frozen=True, slots=True)
class Resources:
    """What the jobs work on. ``dlq()`` opens the queue in this process (None: no queue);
    ``prepare_dlq(dlq)`` runs before each DLQ run (it registers the replay handlers)."""

    registry: Registry
    health: HealthRegistry
    monitor: HealthMonitor | None
    backups: BackupManager | None
    temp_root: str | PathLike[str] | None
    state_dir: str | PathLike[str]
    clock: Clock
    dlq: Callable[[], DeadLetterQueue | None]
    prepare_dlq: Callable[[DeadLetterQueue], object]


def ops_context(resources: Resources) -> OpsContext:
    """An ``OpsContext`` as ``create_app`` makes one, without the web parts (no tokens)."""
    clock = resources.clock
    store = StateStore.in_directory(resources.state_dir)
    return OpsContext(
        registry=resources.registry,
        health=resources.health,
        tokens=TokenSet(()),
        limiter=FailureLimiter(clock=clock),
        store=store,
        audit=AuditLog(store, clock=clock),
        events=EventLog(),
        history=HealthHistory(),
        clock=clock,
        public_reads=False,
        max_body_bytes=0,
        started=clock.time(),
    )


class Maintenance:
    """The maintenance jobs of one process; ``await run(name)`` runs one now."""

    def __init__(self, resources: Resources) -> None:
        self.resources = resources
        self.ctx = ops_context(resources)
        self.scheduler = Scheduler(clock=resources.clock)
        attach_scheduler(self.ctx, self.scheduler, resources.monitor)
        self._values: dict[str, Any] = {}
        self._errors: dict[str, BaseException] = {}
        summaries: dict[str, Callable[[], Any]] = {
            HEALTH_JOB: self._health_summary,
            BREAKER_JOB: self._breaker_summary,
            REPORT_JOB: lambda: self.ctx.store.get(REPORTS, "reliability"),
        }
        for name, summary in summaries.items():
            job = self.scheduler.get(name)
            job.fn = self._capture(name, job.fn, _ignoring(summary))
        own: dict[str, Callable[[], Any]] = {
            DLQ_JOB: self._process_dead_letters,
            CLEANUP_JOB: lambda: asyncio.to_thread(self._cleanup),
            BACKUP_JOB: lambda: asyncio.to_thread(self._backup),
            DRILL_JOB: lambda: asyncio.to_thread(self._drill),
        }
        taken = {job.name for job in self.scheduler.jobs()}
        for name, fn in own.items():
            if name in taken:  # the ops scheduler has this job itself now: run its code
                job = self.scheduler.get(name)
                job.fn = self._capture(name, job.fn, None)
            else:
                self.scheduler.add(name, self._capture(name, fn, None), interval=INTERVALS[name])
        self.ctx.open()  # listen to breaker transitions from now on, for the report

    def _capture(
        self, name: str, fn: Callable[[], object], summary: Callable[[Any], Any] | None
    ) -> Callable[[], Awaitable[None]]:
        """``fn`` as a scheduler job that keeps its value (or error) for ``run`` to return."""

        async def job() -> None:
            try:
                value = fn()
                if inspect.isawaitable(value):
                    value = await value
                self._values[name] = value if summary is None else summary(value)
            except Exception as exc:
                self._errors[name] = exc
                raise

        return job

    async def run(self, name: str) -> dict[str, Any]:
        """Run job ``name`` now through the scheduler (its run is recorded in the history);
        the run as plain data with the job's ``result``. A failed job raises its error."""
        run = await self.scheduler.run(name)
        if run.outcome == "skipped":  # another run of it is going on in this process
            return {**run.to_dict(), "result": {"note": "skipped: the job is already running"}}
        error = self._errors.pop(name, None)
        value = self._values.pop(name, None)
        if error is not None:
            raise error
        return {**run.to_dict(), "result": value}

    def _health_summary(self) -> dict[str, Any]:
        monitor = self.ctx.monitor
        report = None if monitor is None else monitor.last_report
        return {} if report is None else report.to_dict(verbose=False)

    def _breaker_summary(self) -> dict[str, Any]:
        states = {b.name: b.snapshot().state.value for b in self.ctx.registry.breakers()}
        alerting: set[str] = getattr(self.scheduler.get(BREAKER_JOB).fn, "alerted", set())
        return {"breakers": states, "alerting": sorted(alerting)}

    async def _process_dead_letters(self) -> dict[str, Any]:
        dlq = await asyncio.to_thread(self.resources.dlq)
        if dlq is None:
            return {"note": NO_DLQ}
        self.resources.prepare_dlq(dlq)
        report = await dlq.aprocess()
        alerts = await dlq.check_alerts()
        result = {**dataclasses.asdict(report), "alerts": len(alerts)}
        if not dlq.handlers:
            result["note"] = "no handler is registered: nothing was re-processed"
        return result

    def _cleanup(self) -> dict[str, Any]:
        dlq = self.resources.dlq()
        removed = cleanup_temp(root=self.resources.temp_root, clock=self.resources.clock)
        result: dict[str, Any] = {
            "dead_letters_deleted": None if dlq is None else dlq.cleanup(),
            "temp_removed": [str(path) for path in removed],
        }
        if dlq is None:
            result["note"] = "no dead letter queue: only temporary files were cleaned up"
        return result

    def _backup(self) -> dict[str, Any]:
        manager = self.resources.backups
        if manager is None:
            return {"note": NO_BACKUPS}
        names = manager.catalog.source_names()
        if not names:
            return {"note": NO_SOURCES}
        made: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for name in names:
            try:
                backup = manager.create(name, "full")
            except Exception as exc:  # one source failing must not stop the others
                failed[name] = redact(f"{type(exc).__name__}: {exc}")
            else:
                made[name] = {"id": backup.id, "status": backup.status, "size": backup.size}
        if failed:
            raise BackupError(f"backup failed for {_listing(failed)} (made: {sorted(made)})")
        return {"backups": made}

    def _drill(self) -> dict[str, Any]:
        manager = self.resources.backups
        if manager is None:
            return {"note": NO_BACKUPS}
        names = manager.catalog.source_names()
        if not names:
            return {"note": NO_SOURCES}
        drills: dict[str, Any] = {}
        failed: dict[str, str] = {}
        for name in names:
            try:
                result = manager.drill(name)
            except Exception as exc:
                failed[name] = redact(f"{type(exc).__name__}: {exc}")
                continue
            drills[name] = {
                "ok": result.ok,
                "backup_id": result.backup_id,
                "rto_seconds": result.rto_seconds,
                "rpo_seconds": result.rpo_seconds,
                "error": result.error,
            }
            if not result.ok:
                failed[name] = result.error or "a check failed"
        if failed:
            raise BackupError(f"restore drill failed for {_listing(failed)}")
        return {"drills": drills}

    def detach(self) -> None:
        """Stop listening to events, leaving the state store alone (after a fork it belongs to
        the parent process)."""
        self.ctx.events.close()
        self.ctx.breaker_states.close()

    def close(self) -> None:
        """Stop listening to events and close the state store."""
        self.ctx.close()


def _ignoring(summary: Callable[[], Any]) -> Callable[[Any], Any]:
    """``summary`` as a function of the job's value, which it ignores (the ops jobs return
    None; what they did is read afterwards)."""
    return lambda _: summary()


def _listing(failed: Mapping[str, str]) -> str:
    return "; ".join(f"{name}: {error}" for name, error in sorted(failed.items()))
