"""The DLQ's scheduled jobs in the ops server: processing every 5 minutes, cleanup daily."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest

from buttress import Registry
from buttress.dlq import Alerts, DeadLetterQueue, Operations, SQLiteBackend, Status
from buttress.health import CallableSink, HealthRegistry
from buttress.ops import create_app
from buttress.ops._routes_dlq import CLEANUP_JOB, PROCESS_JOB
from buttress.ops.scheduler import Scheduler
from buttress.retry import Backoff
from buttress.testing import ManualClock
from tests.ops.conftest import TOKENS


@pytest.fixture
def seen() -> list[Any]:
    """The alerts the queue sent."""
    return []


@pytest.fixture
def dlq(tmp_path: Any, clock: ManualClock, seen: list[Any]) -> Iterator[DeadLetterQueue]:
    """A queue whose attempts are due a second after a failure, alerting on any parked one."""
    queue = DeadLetterQueue(
        SQLiteBackend(tmp_path / "dlq.db"),
        backoff=Backoff.constant(1),
        max_attempts=1,
        alerts=Alerts(parked_above=0, sinks=(CallableSink(seen.append),)),
        clock=clock,
    )
    yield queue
    queue.close()


def _app(registry: Registry, clock: ManualClock, scheduler: Scheduler, **options: Any) -> Any:
    return create_app(
        registry,
        health=HealthRegistry(clock=clock),
        tokens=TOKENS,
        state_dir=":memory:",
        clock=clock,
        scheduler=scheduler,
        **options,
    )


async def test_startup_adds_both_jobs(dlq: DeadLetterQueue, clock: ManualClock) -> None:
    """The app's startup schedules dlq-process every 5 minutes and dlq-cleanup daily."""
    scheduler = Scheduler()  # real time: its first runs would be minutes away
    app = _app(Registry(clock=clock), clock, scheduler, dlq=dlq)
    try:
        async with app.router.lifespan_context(app):
            assert scheduler.get(PROCESS_JOB).interval == 300.0
            assert scheduler.get(CLEANUP_JOB).interval == 86400.0
    finally:
        app.state.ops.close()


async def test_process_job_runs_handlers_and_alerts(
    dlq: DeadLetterQueue, clock: ManualClock, seen: list[Any]
) -> None:
    """A run of dlq-process resolves what its handler accepts, parks what fails for good,
    and checks the alert thresholds (one parked record alerts)."""
    scheduler = Scheduler(clock=clock)  # never started: runs are made by hand
    app = _app(Registry(clock=clock), clock, scheduler, dlq=dlq)
    handled: list[Any] = []

    @dlq.handler("emails")
    def send(letter: Any) -> None:
        handled.append(letter.payload)
        if letter.payload == "bad":
            raise ValueError("no such mailbox")

    ok = dlq.add("good", error=ConnectionError("down"), queue="emails")
    bad = dlq.add("bad", error=ConnectionError("down"), queue="emails")
    try:
        async with app.router.lifespan_context(app):
            await scheduler.stop()  # the loops sleep on the manual clock: runs by hand only
            clock.advance(2)
            run = await scheduler.run(PROCESS_JOB)
    finally:
        app.state.ops.close()
    assert run.outcome == "ok"
    assert sorted(handled) == ["bad", "good"]
    assert [getattr(dlq.get(id), "status", None) for id in (ok, bad)] == [
        Status.RESOLVED,
        Status.PARKED,
    ]
    assert [alert.metric for alert in seen] == ["parked"]


async def test_cleanup_job_deletes_old_finished_records(
    dlq: DeadLetterQueue, clock: ManualClock
) -> None:
    """A run of dlq-cleanup deletes resolved and discarded records past the retention."""
    scheduler = Scheduler(clock=clock)
    app = _app(Registry(clock=clock), clock, scheduler, dlq=dlq)
    old = dlq.add("old", error=ConnectionError("down"))
    dlq.discard(old, "duplicate")
    kept = dlq.add("open", error=ConnectionError("down"))
    try:
        async with app.router.lifespan_context(app):
            await scheduler.stop()
            clock.advance(timedelta(days=8).total_seconds())
            run = await scheduler.run(CLEANUP_JOB)
    finally:
        app.state.ops.close()
    assert run.outcome == "ok"
    assert dlq.get(old) is None
    assert dlq.get(kept) is not None


async def test_operations_set_or_turn_off_the_jobs(
    dlq: DeadLetterQueue, clock: ManualClock
) -> None:
    """Operations attached beside the queue change the intervals; None leaves a job out."""
    registry = Registry(clock=clock)
    registry.attach("dlq", dlq, dlq.name)
    registry.attach("dlq_operations", Operations(process_interval=60, cleanup_interval=None), "dlq")
    scheduler = Scheduler()
    app = _app(registry, clock, scheduler)
    try:
        async with app.router.lifespan_context(app):
            names = {job.name for job in scheduler.jobs()}
            assert scheduler.get(PROCESS_JOB).interval == 60.0
    finally:
        app.state.ops.close()
    assert CLEANUP_JOB not in names


def test_operations_refuse_bad_values() -> None:
    """Bad intervals and thresholds raise ConfigError naming the field."""
    from buttress.dlq import HealthThresholds
    from buttress.errors import ConfigError

    with pytest.raises(ConfigError, match="process_interval"):
        Operations(process_interval=0)
    with pytest.raises(ConfigError, match="parked_fail"):
        HealthThresholds(parked_warn=5, parked_fail=2)
    with pytest.raises(ConfigError, match="pending_warn"):
        HealthThresholds(pending_warn=-1)
    with pytest.raises(ConfigError, match="health"):
        Operations(health="strict")  # type: ignore[arg-type]
