"""The ops server's periodic jobs, and the run history they leave in the state store.

``attach_scheduler(ctx, scheduler, monitor)`` gives the app a ``Scheduler`` (``ctx.scheduler``)
with three jobs, started and stopped by the app's lifespan:

- ``health-monitor``, every ``monitor.interval`` (default a minute): one ``HealthMonitor.tick()``
  (fresh checks; status changes alert the monitor's sinks); each run counts towards the
  availability in the reliability report.
- ``breaker-monitor``, every two minutes: each breaker's snapshot goes to the
  ``breaker_samples`` table (kept a day), and a breaker refusing calls (open, half-open or forced
  open without closing in between) for longer than ``OPEN_TOO_LONG`` raises a ``HealthAlert``
  (source ``circuit_breaker:<name>``, emitted and sent to the monitor's sinks), once per episode;
  a second alert says when it closed again.
- ``reliability-report``, every hour: the report, stored as the latest one
  (``store.get("buttress.reports", "reliability")``).

Later capabilities add their own jobs with ``ctx.scheduler.add(...)``. Every run of every job is
appended to ``job_runs`` (the newest ``RUNS_KEPT`` per job are kept); at startup each job's last
stored run becomes its ``last`` again, so it survives a restart.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable, Iterable
from typing import Any

from buttress.errors import StoreError
from buttress.events import HealthAlert, emit
from buttress.health import AlertSink, HealthMonitor
from buttress.ops._context import OpsContext
from buttress.ops._state import StateStore
from buttress.ops.scheduler import JobRun, Scheduler

__all__ = [
    "BREAKER_INTERVAL",
    "JOB_NAMES",
    "OPEN_TOO_LONG",
    "REPORT_INTERVAL",
    "JobHistory",
    "attach_scheduler",
]

logger = logging.getLogger("buttress.ops")

HEALTH_JOB, BREAKER_JOB, REPORT_JOB = "health-monitor", "breaker-monitor", "reliability-report"
JOB_NAMES = (HEALTH_JOB, BREAKER_JOB, REPORT_JOB)
BREAKER_INTERVAL = 120.0
REPORT_INTERVAL = 3600.0
OPEN_TOO_LONG = 300.0
"""Seconds a breaker may refuse calls before the breaker monitor alerts (as the Prometheus rule)."""
SAMPLE_RETENTION = 86400.0
RUNS_KEPT = 500
REPORTS = "buttress.reports"

_COMPONENT = "buttress.scheduler"
_STEPS = (
    """
    CREATE TABLE job_runs (
        id INTEGER PRIMARY KEY AUTOINCREMENT,
        job TEXT NOT NULL,
        started REAL NOT NULL,
        duration REAL NOT NULL,
        outcome TEXT NOT NULL,
        error TEXT NOT NULL DEFAULT ''
    );
    CREATE INDEX job_runs_by_job ON job_runs (job, id);
    CREATE TABLE breaker_samples (
        time REAL NOT NULL,
        name TEXT NOT NULL,
        state TEXT NOT NULL,
        failure_rate REAL NOT NULL,
        calls INTEGER NOT NULL,
        failures INTEGER NOT NULL,
        rejected INTEGER NOT NULL,
        openings INTEGER NOT NULL
    );
    CREATE INDEX breaker_samples_by_time ON breaker_samples (time);
    """,
)


class JobHistory:
    """Job runs in the state store: ``append(run)`` (a scheduler run listener), ``page`` and
    ``last`` to read them back."""

    def __init__(self, store: StateStore, *, keep: int = RUNS_KEPT) -> None:
        self.store = store
        self.keep = keep
        store.register(_COMPONENT, _STEPS)

    def append(self, run: JobRun) -> None:
        """Store ``run`` and drop that job's runs beyond the newest ``keep``."""
        with self.store.transaction() as conn:
            conn.execute(
                "INSERT INTO job_runs (job, started, duration, outcome, error) "
                "VALUES (?, ?, ?, ?, ?)",
                (run.job, run.started, run.duration, run.outcome, run.error),
            )
            conn.execute(
                "DELETE FROM job_runs WHERE job = ? AND id <= (SELECT id FROM job_runs "
                "WHERE job = ? ORDER BY id DESC LIMIT 1 OFFSET ?)",
                (run.job, run.job, self.keep),
            )

    def page(self, job: str, *, limit: int = 50, before: int | None = None) -> list[dict[str, Any]]:
        """The newest ``limit`` runs of ``job`` (older than run id ``before``), newest first."""
        rows = self.store.query(
            "SELECT id, job, started, duration, outcome, error FROM job_runs "
            "WHERE job = ? AND id < ? ORDER BY id DESC LIMIT ?",
            (job, 2**63 - 1 if before is None else before, limit),
        )
        return [{"id": row[0], **_run(row[1:]).to_dict()} for row in rows]

    def last(self, job: str) -> JobRun | None:
        """The newest stored run of ``job`` that ran (not ``skipped``), or None."""
        rows = self.store.query(
            "SELECT job, started, duration, outcome, error FROM job_runs "
            "WHERE job = ? AND outcome != 'skipped' ORDER BY id DESC LIMIT 1",
            (job,),
        )
        return _run(rows[0]) if rows else None


def _run(row: Iterable[Any]) -> JobRun:
    job, started, duration, outcome, error = row
    return JobRun(job, started, duration, outcome, error)


class BreakerMonitor:
    """The ``breaker-monitor`` job: store each breaker's snapshot, alert on long openings."""

    def __init__(self, ctx: OpsContext, sinks: Iterable[AlertSink], *, threshold: float) -> None:
        self.ctx = ctx
        self.sinks = tuple(sinks)
        self.threshold = threshold
        self.alerted: set[str] = set()

    async def __call__(self) -> None:
        ctx = self.ctx
        now = ctx.clock.time()
        rows: list[tuple[Any, ...]] = []
        alerts: list[HealthAlert] = []
        for breaker in ctx.registry.breakers():
            snap = breaker.snapshot()
            state = snap.state.value
            counts = (snap.calls, snap.failures, snap.rejected, snap.openings)
            rows.append((now, breaker.name, state, snap.failure_rate, *counts))
            since = ctx.breaker_states.refusing_since(breaker.name)
            if since is None and state in ("open", "half_open", "forced_open"):
                since = max(snap.since, ctx.started)  # it changed state before we listened
            source = f"circuit_breaker:{breaker.name}"
            if since is not None and now - since >= self.threshold:
                if breaker.name not in self.alerted:
                    self.alerted.add(breaker.name)
                    minutes = (now - since) / 60
                    text = f"refusing calls ({state}) for {minutes:.1f} min"
                    alerts.append(HealthAlert(source, now, "pass", "fail", text))
            elif since is None and breaker.name in self.alerted:
                self.alerted.discard(breaker.name)
                alerts.append(HealthAlert(source, now, "fail", "pass", f"{state} again"))
        with ctx.store.transaction() as conn:
            conn.executemany("INSERT INTO breaker_samples VALUES (?, ?, ?, ?, ?, ?, ?, ?)", rows)
            conn.execute("DELETE FROM breaker_samples WHERE time < ?", (now - SAMPLE_RETENTION,))
        for alert in alerts:
            emit(alert)  # the default listener logs it at WARNING; the dashboard shows it
        await asyncio.gather(*(_send(sink, alert) for alert in alerts for sink in self.sinks))


async def _send(sink: AlertSink, alert: HealthAlert) -> None:
    try:
        await sink.send(alert)
    except Exception:
        logger.exception("alert sink %r failed on %s", sink, alert.source)


def attach_scheduler(
    ctx: OpsContext,
    scheduler: bool | Scheduler | None,
    monitor: HealthMonitor | None,
    *,
    open_too_long: float = OPEN_TOO_LONG,
) -> Scheduler | None:
    """Give ``ctx`` a scheduler (a new one for True, none for None/False) with the standard
    jobs (a job name already taken in a given scheduler is left to it), its runs stored, started
    and stopped by the app's lifespan. ``monitor`` defaults to ``HealthMonitor(ctx.health)``."""
    if scheduler is None or scheduler is False:
        return None
    if scheduler is True:
        scheduler = Scheduler(clock=ctx.clock)
    if not isinstance(scheduler, Scheduler):
        raise TypeError("scheduler must be True, None or a buttress.ops.scheduler.Scheduler")
    if monitor is None:
        monitor = HealthMonitor(ctx.health, clock=ctx.clock)
    ctx.scheduler, ctx.monitor = scheduler, monitor
    history = JobHistory(ctx.store)
    ctx.extra["job_history"] = history
    scheduler.add_run_listener(history.append)

    async def health_monitor() -> None:
        report = await monitor.tick()
        ctx.monitor_runs.record(report)
        ctx.history.record(report)

    async def reliability_report() -> None:
        ctx.store.put(REPORTS, "reliability", await ctx.reliability_report())

    breakers = BreakerMonitor(ctx, monitor.sinks, threshold=open_too_long)
    jobs: dict[str, tuple[Callable[[], object], float]] = {
        HEALTH_JOB: (health_monitor, monitor.interval),
        BREAKER_JOB: (breakers, BREAKER_INTERVAL),
        REPORT_JOB: (reliability_report, REPORT_INTERVAL),
    }
    taken = {job.name for job in scheduler.jobs()}
    for name, (fn, interval) in jobs.items():
        if name not in taken:
            scheduler.add(name, fn, interval=interval)

    def start() -> None:
        try:
            for job in scheduler.jobs():
                if job.last is None:
                    job.last = history.last(job.name)
        except StoreError as exc:
            logger.warning("cannot read the last job runs: %s", exc)
        scheduler.start()

    ctx.on_startup.append(start)
    ctx.on_shutdown.append(scheduler.stop)
    return scheduler
