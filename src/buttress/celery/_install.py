"""``install``: the maintenance tasks and their beat schedule on a Celery app; ``beat_schedule``."""

from __future__ import annotations

import os
import threading
from collections.abc import Iterable, Mapping
from os import PathLike
from typing import Any

from celery.app.base import Celery  # type: ignore[import-untyped]
from celery.signals import worker_init, worker_process_init  # type: ignore[import-untyped]

from buttress import _options as opt
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress.backup import BackupManager
from buttress.celery._jobs import INTERVALS, JOBS, Maintenance, Resources
from buttress.celery._loop import LoopThread
from buttress.celery._replay import replay_handler
from buttress.celery._shared import installed, open_dlq, remember
from buttress.celery._task import ResilientTask
from buttress.config import Config
from buttress.dlq import DeadLetterQueue
from buttress.errors import ConfigError
from buttress.health import HealthMonitor, HealthRegistry
from buttress.registry import Registry

__all__ = ["CeleryIntegration", "beat_schedule", "install"]


def _job_names(jobs: Iterable[str] | None) -> tuple[str, ...]:
    if jobs is None:
        return JOBS
    if isinstance(jobs, str):
        jobs = (jobs,)
    names = tuple(jobs)
    unknown = [name for name in names if name not in INTERVALS]
    if unknown or len(set(names)) != len(names):
        raise ConfigError("jobs", jobs, f"must name distinct jobs among {', '.join(JOBS)}")
    return names


def _prefix(prefix: object) -> str:
    if not isinstance(prefix, str) or not prefix or any(c.isspace() for c in prefix):
        raise ConfigError("prefix", prefix, "must be a non-empty string without spaces")
    return prefix


def beat_schedule(
    jobs: Iterable[str] | None = None,
    *,
    prefix: str = "buttress",
    intervals: Mapping[str, opt.Duration] | None = None,
) -> dict[str, dict[str, Any]]:
    """Celery beat entries for the maintenance ``jobs`` (default: all of ``JOBS``), keyed and
    named ``<prefix>.<job>``, every ``INTERVALS[job]`` seconds unless ``intervals`` says
    otherwise; a run not started within its interval expires (the next one is on its way)."""
    names, start = _job_names(jobs), _prefix(prefix)
    given = dict(intervals or {})
    _job_names(given)  # unknown names in intervals are refused too
    entries: dict[str, dict[str, Any]] = {}
    for job in names:
        seconds = opt.duration(f"intervals.{job}", given.get(job, INTERVALS[job]))
        name = f"{start}.{job}"
        entries[name] = {"task": name, "schedule": seconds, "options": {"expires": seconds}}
    return entries


class CeleryIntegration:
    """What ``install`` set up on a Celery app: ``tasks`` (job name -> Celery task), the
    objects the jobs work on, and the per-process machinery that runs them."""

    def __init__(
        self,
        app: Any,
        *,
        registry: Registry,
        health: HealthRegistry,
        monitor: HealthMonitor,
        dlq: DeadLetterQueue | str | None,
        backups: BackupManager | None,
        temp_root: str | PathLike[str] | None,
        state_dir: str | PathLike[str],
        jobs: tuple[str, ...],
        prefix: str,
        replay_wait: float,
        clock: Clock,
    ) -> None:
        self.app = app
        self.registry = registry
        self.health = health
        self.monitor = monitor
        self.backups = backups
        self.jobs = jobs
        self.prefix = prefix
        self.replay_wait = replay_wait
        self._dlq = dlq
        self._resources = Resources(
            registry=registry,
            health=health,
            monitor=monitor,
            backups=backups,
            temp_root=temp_root,
            state_dir=state_dir,
            clock=clock,
            dlq=self.dead_letters,
            prepare_dlq=self.register_replays,
        )
        self._lock = threading.Lock()
        self._pid: int | None = None
        self._maintenance: Maintenance | None = None
        self._loop: LoopThread | None = None
        self.tasks: dict[str, Any] = {job: self._register(job) for job in jobs}

    def _register(self, job: str) -> Any:
        def maintenance() -> dict[str, Any]:
            return self.run(job)

        maintenance.__name__ = maintenance.__qualname__ = job.replace("-", "_")
        maintenance.__doc__ = f"Run the buttress maintenance job {job!r} (buttress.celery)."
        return self.app.task(name=f"{self.prefix}.{job}", shared=False)(maintenance)

    def dead_letters(self) -> DeadLetterQueue | None:
        """The dead letter queue in this process (a URL is opened here once), or None."""
        return open_dlq(self._dlq) if isinstance(self._dlq, str) else self._dlq

    def register_replays(self, dlq: DeadLetterQueue | None = None) -> list[str]:
        """Give ``dlq`` (default ours) a ``replay_handler`` for each ``ResilientTask`` of the
        app that dead-letters into it and has no handler yet; the queues given one. The DLQ
        job calls this before each run."""
        target = dlq if dlq is not None else self.dead_letters()
        if target is None:
            return []
        handled = target.handlers
        added: list[str] = []
        for task in list(self.app.tasks.values()):
            if not isinstance(task, ResilientTask) or task.dead_letters() is not target:
                continue
            queue = type(task).dead_letter_queue or task.name
            if queue not in handled and queue not in added:
                target.handler(queue)(replay_handler(self.app, wait=self.replay_wait))
                added.append(queue)
        return added

    def _process(self) -> tuple[Maintenance, LoopThread]:
        """This process's jobs and loop: made again after a fork (prefork children)."""
        with self._lock:
            if self._pid != os.getpid() or self._maintenance is None or self._loop is None:
                if self._maintenance is not None:  # the parent's, inherited by a fork
                    self._maintenance.detach()
                self._maintenance = Maintenance(self._resources)
                self._loop = LoopThread()
                self._pid = os.getpid()
            return self._maintenance, self._loop

    def run(self, job: str) -> dict[str, Any]:
        """Run maintenance job ``job`` now in this process: the run (``job``, ``outcome``,
        ``started``, ``duration``, ``error``) and its ``result``; a failed job raises."""
        if job not in INTERVALS:
            raise ConfigError("job", job, f"must be one of {', '.join(JOBS)}")
        maintenance, loop = self._process()
        return loop.run(maintenance.run(job))

    def beat_schedule(self) -> dict[str, dict[str, Any]]:
        """The beat entries of the installed jobs (the health monitor at its own interval)."""
        return beat_schedule(
            self.jobs, prefix=self.prefix, intervals={"health-monitor": self.monitor.interval}
        )

    def _warm(self, sender: Any = None, **_: Any) -> None:
        """Build the jobs when a worker (process) starts, so that the reliability report
        counts breaker states from then on rather than from the first job run."""
        if getattr(sender, "app", self.app) is self.app:
            self._process()

    def close(self) -> None:
        """Stop this process's loop and close its jobs' state; forget the app (idempotent)."""
        worker_init.disconnect(self._warm)
        worker_process_init.disconnect(self._warm)
        with self._lock:
            maintenance, loop = self._maintenance, self._loop
            self._maintenance = self._loop = None
            self._pid = None
        if loop is not None:
            loop.close()
        if maintenance is not None:
            maintenance.close()
        if installed(self.app) is self:
            remember(self.app, None)

    def __repr__(self) -> str:
        return f"CeleryIntegration({self.app.main!r}, jobs={list(self.jobs)})"


def install(
    app: Any,
    *,
    config: Config | None = None,
    registry: Registry | None = None,
    health: HealthRegistry | None = None,
    monitor: HealthMonitor | None = None,
    dlq: DeadLetterQueue | str | None = None,
    backups: BackupManager | None = None,
    temp_root: str | PathLike[str] | None = None,
    state_dir: str | PathLike[str] | None = None,
    jobs: Iterable[str] | None = None,
    schedule: bool = True,
    prefix: str = "buttress",
    replay_wait: opt.Duration = 30.0,
    clock: Clock | None = None,
) -> CeleryIntegration:
    """Register buttress's maintenance ``jobs`` (default all) as tasks ``<prefix>.<job>`` on
    the Celery ``app`` and, with ``schedule`` (default), add their entries to
    ``app.conf.beat_schedule`` (entries already there win).

    ``config`` (a loaded ``buttress.config.Config``) gives the registry, health checks,
    monitor and ``server.state_dir``; the explicit arguments win. ``dlq`` (a queue or its URL)
    is where ``ResilientTask`` failures go, processed and cleaned up by the jobs; ``backups``
    is backed up and drilled for every configured source; ``temp_root`` is where the cleanup
    looks for leftover temporary files (default ``buttress.resources``'). ``state_dir``
    (default ``.buttress``, as ``buttress serve``) keeps the job history. ``replay_wait``
    bounds a replay's wait for its task. Jobs lacking what they need do nothing and say so.
    """
    if not isinstance(app, Celery):
        raise ConfigError("app", app, "must be a celery.Celery app")
    if installed(app) is not None:
        raise ConfigError("app", app, "already has buttress installed")
    for field, path in (("temp_root", temp_root), ("state_dir", state_dir)):
        if path is not None and not isinstance(path, str | PathLike):
            raise ConfigError(field, path, "must be a path or None")
    if config is not None and not isinstance(config, Config):
        raise ConfigError("config", config, "must be a buttress.config.Config or None")
    if dlq is not None and not isinstance(dlq, DeadLetterQueue | str):
        raise ConfigError("dlq", dlq, "must be a DeadLetterQueue, its URL or None")
    if backups is not None and not isinstance(backups, BackupManager):
        raise ConfigError("backups", backups, "must be a BackupManager or None")
    clock = clock if clock is not None else SYSTEM_CLOCK
    if registry is None:
        registry = config.registry if config is not None else Registry(clock=clock)
    if health is None:
        health = config.health if config is not None else HealthRegistry(clock=clock)
    if monitor is None:
        monitor = config.health_monitor() if config is not None else HealthMonitor(health)
    if state_dir is None:
        state_dir = config.server.state_dir if config is not None else ".buttress"
    integration = CeleryIntegration(
        app,
        registry=registry,
        health=health,
        monitor=monitor,
        dlq=dlq,
        backups=backups,
        temp_root=temp_root,
        state_dir=state_dir,
        jobs=_job_names(jobs),
        prefix=_prefix(prefix),
        replay_wait=opt.duration("replay_wait", replay_wait),
        clock=clock,
    )
    remember(app, integration)
    if schedule:
        existing = dict(app.conf.beat_schedule or {})
        app.conf.beat_schedule = {**integration.beat_schedule(), **existing}
    worker_init.connect(integration._warm, weak=False)
    worker_process_init.connect(integration._warm, weak=False)
    return integration
