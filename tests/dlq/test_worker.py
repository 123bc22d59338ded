"""The worker: sync and async handlers, batches, queues, loops, counters and cancellation."""

from __future__ import annotations

import asyncio
import threading

import pytest

from buttress import ConfigError
from buttress.dlq import DeadLetterQueue, ProcessReport, Status, Worker
from buttress.retry import Backoff
from buttress.testing import ManualClock

ERROR = ConnectionError("down")


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock."""
    return ManualClock()


@pytest.fixture
def dlq(clock: ManualClock):
    """An in-memory queue with a one-second backoff."""
    with DeadLetterQueue("sqlite:///:memory:", clock=clock, backoff=Backoff.constant(1)) as q:
        yield q


def test_async_handler_in_sync_process(dlq, clock) -> None:
    """process() runs an async handler in a private event loop."""
    seen = []

    @dlq.handler("q")
    async def handle(letter) -> None:
        await asyncio.sleep(0)
        seen.append(letter.payload)

    dlq.add_many([1, 2], error=ERROR, queue="q")
    clock.advance(2)
    assert dlq.process().resolved == 2
    assert sorted(seen) == [1, 2]


async def test_aprocess_runs_async_handlers_concurrently(dlq, clock) -> None:
    """aprocess() runs at most `concurrency` async handlers at once, and sync ones in a thread."""
    running, peak, threads = 0, 0, set()

    @dlq.handler("a")
    async def handle(letter) -> None:
        nonlocal running, peak
        running += 1
        peak = max(peak, running)
        await asyncio.sleep(0.001)
        running -= 1

    @dlq.handler("b")
    def handle_sync(letter) -> None:
        threads.add(threading.current_thread().name)

    dlq.add_many(range(10), error=ERROR, queue="a")
    dlq.add_many(range(3), error=ERROR, queue="b")
    clock.advance(2)
    report = await Worker(dlq, concurrency=3).arun(until_idle=True)
    assert report.resolved == 13
    assert peak == 3
    assert threading.current_thread().name not in threads


def test_only_handled_queues_are_taken(dlq, clock) -> None:
    """A worker takes messages of its queues that have a handler; others stay pending."""
    dlq.handler("a")(lambda letter: None)
    dlq.handler("b")(lambda letter: None)
    a = dlq.add(1, error=ERROR, queue="a")
    b = dlq.add(2, error=ERROR, queue="b")
    nobody = dlq.add(3, error=ERROR, queue="c")
    clock.advance(2)
    assert Worker(dlq, queues=["a", "c"]).run(until_idle=True).resolved == 1
    assert [dlq.get(i).status for i in (a, b, nobody)] == [
        Status.RESOLVED,
        Status.PENDING,
        Status.PENDING,
    ]


def test_batches_and_limit(dlq, clock) -> None:
    """A batch takes at most `batch` records; run(limit=) stops once that many were taken."""
    dlq.handler("q")(lambda letter: None)
    dlq.add_many(range(7), error=ERROR, queue="q")
    clock.advance(2)
    worker = Worker(dlq, batch=3)
    assert worker.process_batch().taken == 3
    assert worker.run(limit=2).taken == 3  # whole batches
    assert worker.run(until_idle=True).taken == 1


def test_run_until_stopped(dlq, clock) -> None:
    """run() waits `idle` on the clock when nothing is due, and returns when stop is set."""
    stop = threading.Event()
    dlq.handler("q")(lambda letter: stop.set() if letter.payload == "last" else None)
    dlq.add("first", error=ERROR, queue="q")
    clock.advance(2)
    dlq.add("last", error=ERROR, queue="q")  # due one second later: after an idle wait
    report = Worker(dlq).run(stop=stop, idle=5)
    assert report.resolved == 2
    assert 5 in clock.sleeps


async def test_arun_until_stopped(dlq, clock) -> None:
    """arun() sleeps `idle` on the clock between empty batches and stops with its event."""
    stop = asyncio.Event()
    dlq.handler("q")(lambda letter: None)

    async def stopper() -> None:
        while not clock.sleeps:
            await asyncio.sleep(0)
        stop.set()

    task = asyncio.create_task(stopper())
    report = await Worker(dlq).arun(stop=stop, idle=7)
    await task
    assert report.taken == 0
    assert clock.sleeps[0] == 7


def test_counters(dlq, clock) -> None:
    """Adds count by queue and reason; attempts count by result with their durations."""
    dlq.handler("q")(lambda letter: None if letter.payload else int("x"))
    dlq.add_many([1, 0], error=ERROR, queue="q")
    dlq.add(2, error=ValueError("bad"), queue="q")
    clock.advance(2)
    dlq.process()
    added, processed = dlq.counters.snapshot()
    assert added == {("q", "transient"): 2, ("q", "permanent"): 1}
    assert processed == {("q", "resolved"): 1, ("q", "parked"): 1}
    histogram = dlq.counters.durations()["q"]
    assert histogram.count == 2
    assert histogram.buckets[-1] == 2


def test_cancellation_is_not_a_failure(dlq, clock) -> None:
    """A handler interrupted by KeyboardInterrupt stops the worker; the record stays leased
    (it comes back when the lease ends) and no attempt outcome is stored."""
    dlq.handler("q")(lambda letter: (_ for _ in ()).throw(KeyboardInterrupt))
    id = dlq.add(1, error=ERROR, queue="q")
    clock.advance(2)
    with pytest.raises(KeyboardInterrupt):
        dlq.process()
    letter = dlq.get(id)
    assert letter.status is Status.RETRYING
    assert len(letter.history) == 1


def test_report_merge_and_options(dlq) -> None:
    """Reports add up; bad worker options raise ConfigError naming the field."""
    total = ProcessReport(taken=1, resolved=1)
    total.merge(ProcessReport(taken=2, retried=1, parked=1, stale=3))
    assert total == ProcessReport(taken=3, resolved=1, retried=1, parked=1, stale=3)
    for options, field in (
        ({"batch": 0}, "batch"),
        ({"batch": 5000}, "batch"),
        ({"lease": 0}, "lease"),
        ({"concurrency": 0}, "concurrency"),
    ):
        with pytest.raises(ConfigError) as info:
            Worker(dlq, **options)
        assert info.value.field == field
    assert "batch=100" in repr(dlq.worker())
