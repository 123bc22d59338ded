"""An in-process scheduler for periodic maintenance jobs.

Each job runs every ``interval`` seconds give or take ``jitter`` (a fraction of the interval, so a
fleet's processes spread out), never overlaps itself (a run that is still going when the next
is due makes that one ``skipped``), and is isolated: an error is recorded and logged, and the
job runs again at its next time. The last run and its outcome are visible in ``jobs()`` for the
admin API and the dashboard; ``on_run`` receives every finished run (the ops server stores them).

A fleet runs each periodic job on one process: give every process's scheduler the same
``store`` (an ``AsyncStore``: Redis for a fleet, SQLite for the processes of one host) and they
elect a leader through ``AsyncLeaderLock(lock_name, store, lock_ttl)``. Every scheduler keeps
its timers, and when one fires only the leader runs the job; the leader renews the lock every
``lock_ttl / 3``, and a process that loses it (another holds it, or the store is unreachable
until its lease lapses) stops running jobs at once. Another process takes over at its next
attempt after the lease ends: at most ``lock_ttl`` after a leader crashed, sooner when it
stopped (``stop()`` releases the lock). Runs started by hand (``run``, ``spawn``) run on the
process asked, leader or not.
"""

from __future__ import annotations

import asyncio
import inspect
import logging
import random
import traceback
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from buttress import _options as opt
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._redact import redact
from buttress.errors import ConfigError

if TYPE_CHECKING:
    from datetime import timedelta

    from buttress.fleet import AsyncLeaderLock
    from buttress.stores import AsyncStore

__all__ = ["Job", "JobRun", "Scheduler"]

logger = logging.getLogger("buttress")

JobFunction = Callable[[], object | Awaitable[object]]


@dataclass(frozen=True, slots=True)
class JobRun:
    """One run of a job: when, how long, and how it ended (``ok``, ``error`` or ``skipped``)."""

    job: str
    started: float
    duration: float
    outcome: str
    error: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The run as plain data."""
        return {
            "job": self.job,
            "started": self.started,
            "duration": self.duration,
            "outcome": self.outcome,
            "error": self.error,
        }


@dataclass(slots=True)
class Job:
    """A periodic job and what is known of its runs."""

    name: str
    fn: JobFunction
    interval: float
    jitter: float = 0.1
    runs: int = 0
    failures: int = 0
    skipped: int = 0
    running: bool = False
    next_run: float | None = None
    last: JobRun | None = None
    history: deque[JobRun] = field(default_factory=lambda: deque(maxlen=50))

    def to_dict(self) -> dict[str, Any]:
        """The job's schedule and last outcome as plain data."""
        return {
            "name": self.name,
            "interval": self.interval,
            "jitter": self.jitter,
            "runs": self.runs,
            "failures": self.failures,
            "skipped": self.skipped,
            "running": self.running,
            "next_run": self.next_run,
            "last": None if self.last is None else self.last.to_dict(),
        }


class Scheduler:
    """Runs jobs periodically in the running event loop; ``start()`` and ``stop()`` it.

    ``Scheduler(*, clock=None, rng=None, on_run=None, store=None, lock_ttl=15.0,
    lock_name="scheduler")``; ``on_run(run)`` is called after every run (a failing callback is
    logged), as is every function given to ``add_run_listener``. With ``store`` the periodic
    runs happen only while this process leads the fleet (see the module docstring).
    """

    def __init__(
        self,
        *,
        clock: Clock | None = None,
        rng: random.Random | None = None,
        on_run: Callable[[JobRun], object] | None = None,
        store: AsyncStore | None = None,
        lock_ttl: float | timedelta = 15.0,
        lock_name: str = "scheduler",
    ) -> None:
        self._clock = clock if clock is not None else SYSTEM_CLOCK
        self._rng = rng if rng is not None else random.Random()
        self._listeners: list[Callable[[JobRun], object]] = [] if on_run is None else [on_run]
        self._jobs: dict[str, Job] = {}
        self._tasks: dict[str, asyncio.Task[None]] = {}
        self._runs: set[asyncio.Task[JobRun]] = set()
        self._lock: AsyncLeaderLock | None = None
        if store is not None:
            from buttress.fleet import AsyncLeaderLock

            ttl = opt.duration("lock_ttl", lock_ttl)
            if not isinstance(lock_name, str) or not lock_name:
                raise ConfigError("lock_name", lock_name, "must be a non-empty string")
            self._lock = AsyncLeaderLock(lock_name, store, ttl, clock=self._clock)
        self._leading: asyncio.Task[None] | None = None
        self._stopping = False
        self._renewing = False

    @property
    def is_leader(self) -> bool:
        """Whether periodic runs happen here: always without a store, else while we lead."""
        return self._lock is None or self._lock.is_leader

    @property
    def leader_lock(self) -> AsyncLeaderLock | None:
        """The lock this scheduler leads the fleet with (None without a store)."""
        return self._lock

    def add(self, name: str, fn: JobFunction, *, interval: float, jitter: float = 0.1) -> Job:
        """Schedule ``fn`` (sync or async, no arguments) every ``interval`` seconds."""
        if name in self._jobs:
            raise ConfigError(f"jobs.{name}", name, "is already scheduled")
        if not callable(fn):
            raise ConfigError(f"jobs.{name}.fn", fn, "must be a callable")
        seconds = opt.duration(f"jobs.{name}.interval", interval)
        spread = opt.number(f"jobs.{name}.jitter", jitter, minimum=0)
        if spread >= 1:
            raise ConfigError(f"jobs.{name}.jitter", jitter, "must be a fraction in [0, 1)")
        job = Job(name, fn, seconds, spread)
        self._jobs[name] = job
        if self._tasks:  # already started: start this one too
            self._start_job(job)
        return job

    def add_run_listener(self, fn: Callable[[JobRun], object]) -> None:
        """Also call ``fn(run)`` after every run, like ``on_run`` (the ops server stores runs)."""
        self._listeners.append(fn)

    def jobs(self) -> list[Job]:
        """Every job, sorted by name."""
        return [self._jobs[name] for name in sorted(self._jobs)]

    def get(self, name: str) -> Job:
        """The job called ``name`` (KeyError if none)."""
        return self._jobs[name]

    def _delay(self, job: Job) -> float:
        spread = job.interval * job.jitter
        return job.interval + (self._rng.uniform(-spread, spread) if spread else 0.0)

    def start(self) -> None:
        """Start every job's loop in the running event loop (first runs after one interval),
        and with a ``store`` the election (the first attempt to lead is made at once)."""
        if self._lock is not None and self._leading is None:
            self._stopping = False
            self._leading = asyncio.get_running_loop().create_task(
                self._lead(self._lock), name="buttress-scheduler-leader"
            )
        for job in self._jobs.values():
            if job.name not in self._tasks:
                self._start_job(job)

    async def _lead(self, lock: AsyncLeaderLock) -> None:
        """Take the lock, then keep renewing it (``acquire`` renews what we hold)."""
        was = False
        while not self._stopping:
            self._renewing = True  # stop() lets a store call finish rather than cut it
            try:
                await lock.acquire()
            finally:
                self._renewing = False
            now = lock.is_leader
            if now != was:
                was = now
                logger.info("scheduler %s the lock %r", "took" if now else "lost", lock.name)
            if not self._stopping:
                await self._clock.asleep(lock.ttl / 3)

    def _start_job(self, job: Job) -> None:
        self._tasks[job.name] = asyncio.get_running_loop().create_task(
            self._loop(job), name=f"buttress-job-{job.name}"
        )

    async def stop(self) -> None:
        """Stop the loops, wait for runs in progress to be cancelled, and give the lock up."""
        tasks: list[asyncio.Task[Any]] = [*self._tasks.values(), *self._runs]
        self._tasks.clear()
        for task in tasks:
            task.cancel()
        leading, self._leading = self._leading, None
        if leading is not None:
            self._stopping = True
            if not self._renewing:  # asleep: cancel it; else it ends after its store call
                leading.cancel()
            tasks.append(leading)
        await asyncio.gather(*tasks, return_exceptions=True)
        if self._lock is not None:
            await self._lock.release()

    async def _loop(self, job: Job) -> None:
        while True:
            delay = self._delay(job)
            job.next_run = self._clock.time() + delay
            await self._clock.asleep(delay)
            if not self.is_leader:
                continue  # another process of the fleet runs it
            if job.running:
                self._record(job, JobRun(job.name, self._clock.time(), 0.0, "skipped"))
                continue
            # A run is a task of its own, so a slow run never delays the schedule.
            self.spawn(job.name)

    def spawn(self, name: str) -> asyncio.Task[JobRun]:
        """Start a run of ``name`` now in a task of its own, held until it ends (``stop()``
        cancels it); KeyError if there is no such job."""
        if name not in self._jobs:  # fail here, not in the task
            raise KeyError(name)
        task = asyncio.get_running_loop().create_task(self.run(name), name=f"buttress-run-{name}")
        self._runs.add(task)
        task.add_done_callback(self._runs.discard)
        return task

    async def run(self, name: str) -> JobRun:
        """Run the job ``name`` now (unless it is running: then the run is ``skipped``)."""
        job = self._jobs[name]
        started = self._clock.time()
        if job.running:
            return self._record(job, JobRun(name, started, 0.0, "skipped"))
        job.running = True
        begin = self._clock.monotonic()
        try:
            result = job.fn()
            if inspect.isawaitable(result):
                await result
        except asyncio.CancelledError:
            raise
        except Exception as exc:
            text = redact(f"{type(exc).__name__}: {exc}")
            logger.error(
                "scheduled job %r failed: %s\n%s",
                name,
                text,
                redact("".join(traceback.format_exception(exc))),
            )
            outcome = JobRun(name, started, self._clock.monotonic() - begin, "error", text)
        else:
            outcome = JobRun(name, started, self._clock.monotonic() - begin, "ok")
        finally:
            job.running = False
        return self._record(job, outcome)

    def _record(self, job: Job, run: JobRun) -> JobRun:
        if run.outcome == "skipped":
            job.skipped += 1
        else:
            job.runs += 1
            job.failures += run.outcome == "error"
            job.last = run
        job.history.append(run)
        for listener in self._listeners:
            try:
                listener(run)
            except Exception:
                logger.exception("scheduler on_run callback failed for %r", job.name)
        return run
