"""The periodic job scheduler: intervals with jitter, no overlap, isolated errors, history."""

from __future__ import annotations

import asyncio
import random

import pytest

from buttress import ConfigError
from buttress.ops.scheduler import JobRun, Scheduler
from buttress.testing import ManualClock


async def test_runs_every_interval_with_jitter_bounds() -> None:
    """Each run comes interval ± jitter after the previous one, on the injected clock."""
    clock = ManualClock()
    runs: list[float] = []
    scheduler = Scheduler(clock=clock, rng=random.Random(1))
    scheduler.add("tick", lambda: runs.append(clock.monotonic()), interval=10, jitter=0.2)
    scheduler.start()
    for _ in range(20):
        await asyncio.sleep(0)
    await scheduler.stop()
    assert len(runs) >= 5
    assert all(8 <= gap <= 12 for gap in clock.sleeps)  # the waits between runs
    assert len(set(clock.sleeps)) > 1  # jittered, not fixed


async def test_errors_are_isolated_and_recorded(caplog: pytest.LogCaptureFixture) -> None:
    """A failing job is recorded as an error (secrets redacted) and keeps its schedule."""
    seen: list[JobRun] = []
    scheduler = Scheduler(clock=ManualClock(), on_run=seen.append)

    def broken() -> None:
        raise RuntimeError("cannot reach postgresql://app:hunter2@db/prod")

    scheduler.add("broken", broken, interval=1)
    run = await scheduler.run("broken")
    assert run.outcome == "error"
    assert "hunter2" not in run.error
    assert "RuntimeError" in run.error
    assert "hunter2" not in caplog.text
    assert seen == [run]
    job = scheduler.get("broken")
    assert (job.runs, job.failures, job.last) == (1, 1, run)


async def test_no_overlap() -> None:
    """A run still going when the job is due again makes that run `skipped`."""
    gate = asyncio.Event()

    async def slow() -> None:
        await gate.wait()

    scheduler = Scheduler(clock=ManualClock())
    scheduler.add("slow", slow, interval=1)
    first = asyncio.create_task(scheduler.run("slow"))
    await asyncio.sleep(0)
    second = await scheduler.run("slow")
    gate.set()
    assert second.outcome == "skipped"
    assert (await first).outcome == "ok"
    job = scheduler.get("slow")
    assert (job.runs, job.skipped) == (1, 1)
    assert job.to_dict()["last"]["outcome"] == "ok"


def test_bad_options() -> None:
    """Bad intervals, jitter and duplicate names are ConfigErrors naming the job."""
    scheduler = Scheduler()
    with pytest.raises(ConfigError, match=r"jobs\.a\.interval"):
        scheduler.add("a", lambda: None, interval=0)
    with pytest.raises(ConfigError, match=r"jobs\.a\.jitter"):
        scheduler.add("a", lambda: None, interval=1, jitter=1.5)
    scheduler.add("a", lambda: None, interval=1)
    with pytest.raises(ConfigError, match="already"):
        scheduler.add("a", lambda: None, interval=1)
