"""WorkQueue: priorities, shedding, deadlines, backpressure, scaling workers, closing."""

from __future__ import annotations

import asyncio
import threading
from typing import Any, assert_type

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.errors import ConfigError, LoadShedError
from buttress.errors import TimeoutError as ButtressTimeout
from buttress.ratelimit._concurrency import LoadShedChanged
from buttress.ratelimit._queue import WorkQueue
from buttress.ratelimit._queue_events import (
    QueueItemExpired,
    QueueItemFailed,
    QueueWorkersChanged,
)
from buttress.testing import ManualClock, RecordingListener


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(8):
        await asyncio.sleep(0)


class Gated:
    """An async handler that records each item and waits for its gate before returning it."""

    def __init__(self) -> None:
        self.started: list[Any] = []
        self.open = asyncio.Event()
        self.fail: set[Any] = set()

    async def __call__(self, item: Any) -> Any:
        self.started.append(item)
        await self.open.wait()
        if item in self.fail:
            raise ValueError(item)
        return item


async def test_handles_items_and_returns_results() -> None:
    """Each submitted item is handled once and its future gets the handler's result."""

    async def double(x: int) -> int:
        return x * 2

    async with WorkQueue(double, workers=2, name="jobs") as queue:
        results = await asyncio.gather(*(queue.submit(i) for i in range(10)))
    assert results == [i * 2 for i in range(10)]
    snap = queue.snapshot()
    assert (snap.submitted, snap.processed, snap.depth, snap.closed) == (10, 10, 0, True)


async def test_result_types_follow_the_handler() -> None:
    """The queue's result type is the handler's, for async and sync handlers (checked by mypy)."""

    async def alength(text: str) -> int:
        return len(text)

    def upper(text: str) -> str:
        return text.upper()

    async with WorkQueue(alength) as aqueue, WorkQueue(upper) as squeue:
        assert_type(aqueue, WorkQueue[str, int])
        assert_type(squeue, WorkQueue[str, str])
        assert await aqueue.submit("abc") == 3
        assert await squeue.submit("abc") == "ABC"


async def test_sync_handler_runs_in_a_thread() -> None:
    """A sync handler runs off the event loop's thread, in the queue's pool."""
    loop_thread = threading.get_ident()

    def where(x: int) -> tuple[int, str]:
        assert threading.get_ident() != loop_thread
        return x, threading.current_thread().name

    async with WorkQueue(where, name="sync") as queue:
        value, thread = await queue.submit(7)
    assert value == 7
    assert thread.startswith("buttress-queue-sync")


async def test_sync_handlers_run_in_parallel() -> None:
    """Sync handlers run on up to max_workers threads at once."""
    barrier = threading.Barrier(3, timeout=5)

    def meet(x: int) -> int:
        barrier.wait()  # only returns once three handlers run at the same time
        return x

    async with WorkQueue(meet, workers=3) as queue:
        assert await asyncio.gather(*(queue.submit(i) for i in range(3))) == [0, 1, 2]


async def test_highest_priority_first_and_fifo_within_one() -> None:
    """A free worker takes priority 0 before 1 before 2, and each priority in arrival order."""
    handler = Gated()
    queue = WorkQueue(handler, priorities=3, clock=ManualClock())
    blocker = queue.submit("blocker", priority=0)
    await settle()
    futures = [
        queue.submit("low-1", priority=2),
        queue.submit("mid-1", priority=1),
        queue.submit("high-1", priority=0),
        queue.submit("low-2"),  # the default is the lowest priority
        queue.submit("high-2", priority=0),
    ]
    assert queue.snapshot().depth_by_priority == (2, 1, 2)
    handler.open.set()
    await asyncio.gather(blocker, *futures)
    assert handler.started == ["blocker", "high-1", "high-2", "mid-1", "low-1", "low-2"]
    await queue.close()


async def test_full_queue_refuses_equal_or_lower_priority() -> None:
    """At a full queue an item no higher than every queued one is refused at once."""
    handler = Gated()
    queue = WorkQueue(handler, max_size=2, priorities=3, name="q", clock=ManualClock())
    queue.submit("running", priority=0)
    await settle()
    queue.submit("a", priority=1)
    queue.submit("b", priority=1)
    with pytest.raises(LoadShedError) as info:
        queue.submit("c", priority=1)
    with pytest.raises(LoadShedError):
        queue.submit("d", priority=2)
    assert info.value.source == "q"
    snap = queue.snapshot()
    assert (snap.depth, snap.refused, snap.evicted, snap.shedding) == (2, 2, 0, True)
    handler.open.set()
    await queue.close()
    assert handler.started == ["running", "a", "b"]


async def test_higher_priority_evicts_the_newest_lowest() -> None:
    """A higher-priority arrival pushes out the newest lowest-priority item, whose submitter
    gets LoadShedError; the pushed-out item never runs."""
    handler = Gated()
    queue = WorkQueue(handler, max_size=3, priorities=3, clock=ManualClock())
    queue.submit("running", priority=0)
    await settle()
    mid = queue.submit("mid", priority=1)
    old_low = queue.submit("old-low", priority=2)
    new_low = queue.submit("new-low", priority=2)
    with RecordingListener() as events:
        urgent = queue.submit("urgent", priority=0)
        assert new_low.done()
        with pytest.raises(LoadShedError):
            await new_low
        queue.submit("urgent-2", priority=0)  # evicts old-low
        with pytest.raises(LoadShedError):
            await old_low
        with pytest.raises(LoadShedError):  # only mid (priority 1) is left below: refused
            queue.submit("urgent-3", priority=1)
    assert [e.shedding for e in events.of(LoadShedChanged)] == [True]
    snap = queue.snapshot()
    assert (snap.depth, snap.evicted, snap.refused) == (3, 2, 1)
    handler.open.set()
    assert await urgent == "urgent"
    assert await mid == "mid"
    await queue.close()
    assert handler.started == ["running", "urgent", "urgent-2", "mid"]


async def test_expired_items_are_dropped_never_run_late() -> None:
    """An item whose deadline passes while queued fails with TimeoutError, emits an event and
    never reaches the handler."""
    clock = ManualClock()
    handler = Gated()
    queue = WorkQueue(handler, priorities=2, name="q", clock=clock)
    queue.submit("running")
    await settle()
    with RecordingListener() as events:
        doomed = queue.submit("doomed", priority=0, deadline=1.0)
        kept = queue.submit("kept", deadline=5.0)
        clock.advance(0.5)
        assert not doomed.done()
        clock.advance(0.5)
        assert doomed.done()
    with pytest.raises(ButtressTimeout) as info:
        await doomed
    assert isinstance(info.value, TimeoutError)
    [expired] = events.of(QueueItemExpired)
    assert (expired.source, expired.priority, expired.waited, expired.deadline) == (
        "q",
        0,
        1.0,
        1.0,
    )
    handler.open.set()
    assert await kept == "kept"
    assert handler.started == ["running", "kept"]
    snap = queue.snapshot()
    assert (snap.expired, snap.processed, snap.depth) == (1, 2, 0)
    await queue.close()


class LateTimers(ManualClock):
    """A clock whose timers never fire, as if the event loop ran them late."""

    def call_at(self, when: float, callback: Any) -> Any:
        return super().call_at(float("inf"), callback)


async def test_worker_drops_an_expired_item_even_if_its_timer_is_late() -> None:
    """A worker that reaches an item past its deadline drops it instead of running it."""
    clock = LateTimers()
    handler = Gated()
    queue = WorkQueue(handler, clock=clock)
    queue.submit("running")
    await settle()
    with RecordingListener() as events:
        late = queue.submit("late", deadline=1.0)
        clock.advance(1.5)
        assert not late.done()  # the timer did not fire
        handler.open.set()
        with pytest.raises(ButtressTimeout):
            await late
    assert [e.waited for e in events.of(QueueItemExpired)] == [1.5]
    assert handler.started == ["running"]
    await queue.close()


async def test_default_deadline_applies_to_every_item() -> None:
    """The queue's deadline= is each item's deadline unless submit gives one."""
    clock = ManualClock()
    handler = Gated()
    queue = WorkQueue(handler, deadline=2.0, clock=clock)
    queue.submit("running")
    await settle()
    waiting = queue.submit("waiting")
    clock.advance(2.0)
    with pytest.raises(ButtressTimeout):
        await waiting
    handler.open.set()
    await queue.close()


async def test_backpressure_signals_depth_and_oldest_age() -> None:
    """The snapshot tells how many items wait, per priority, and how long the oldest waited."""
    clock = ManualClock()
    handler = Gated()
    queue = WorkQueue(handler, priorities=2, clock=clock)
    assert queue.snapshot().oldest_age is None
    queue.submit("running")
    await settle()
    queue.submit("a", priority=1)
    clock.advance(2.5)
    queue.submit("b", priority=0)
    clock.advance(1.0)
    snap = queue.snapshot()
    assert (snap.depth, snap.depth_by_priority, snap.oldest_age) == (2, (1, 1), 3.5)
    assert (snap.workers, snap.busy) == (1, 1)
    assert queue.depth == 2
    handler.open.set()
    await queue.join()
    assert queue.snapshot().oldest_age is None
    await queue.close()


async def test_workers_scale_with_depth_between_min_and_max() -> None:
    """Workers grow up to max_workers while items wait, and retire to min_workers when idle."""
    clock = ManualClock()
    handler = Gated()
    queue = WorkQueue(handler, min_workers=1, max_workers=3, idle_timeout=5, clock=clock)
    with RecordingListener() as events:
        futures = [queue.submit(i) for i in range(5)]
        await settle()
        snap = queue.snapshot()
        assert (snap.workers, snap.busy, snap.depth) == (3, 3, 2)
        handler.open.set()
        await asyncio.gather(*futures)
        await settle()
        assert queue.snapshot().workers == 3
        clock.advance(4.9)
        assert queue.snapshot().workers == 3
        clock.advance(0.1)
        await settle()
        assert queue.snapshot().workers == 1
    changes = [(e.old, e.new) for e in events.of(QueueWorkersChanged)]
    assert changes[:3] == [(0, 1), (1, 2), (2, 3)]
    assert sorted(changes[3:], reverse=True) == [(3, 2), (2, 1)]
    assert len(queue._pool.tasks) == 1
    await queue.close()


async def test_zero_min_workers_start_on_demand() -> None:
    """With min_workers=0 a worker starts for work and none stays once idle."""
    clock = ManualClock()

    async def echo(x: int) -> int:
        return x

    queue = WorkQueue(echo, workers=0, max_workers=2, idle_timeout=1, clock=clock)
    assert await queue.submit(1) == 1
    await settle()
    clock.advance(1)
    await settle()
    assert queue.snapshot().workers == 0
    assert await queue.submit(2) == 2
    await queue.close()
    assert queue.snapshot().workers == 0


async def test_handler_errors_reach_the_submitter() -> None:
    """A failing handler fails that item's future, is counted and evented; the worker goes on."""
    handler = Gated()
    handler.fail.add("bad")
    handler.open.set()
    queue = WorkQueue(handler, name="q", clock=ManualClock())
    with RecordingListener() as events:
        with pytest.raises(ValueError, match="bad"):
            await queue.submit("bad")
        assert await queue.submit("good") == "good"
    [failed] = events.of(QueueItemFailed)
    assert (failed.source, failed.priority, type(failed.error)) == ("q", 0, ValueError)
    snap = queue.snapshot()
    assert (snap.failed, snap.processed) == (1, 1)
    await queue.close()


async def test_cancelled_submission_never_runs() -> None:
    """Cancelling a queued item's future takes it out of the queue."""
    handler = Gated()
    queue = WorkQueue(handler, clock=ManualClock())
    queue.submit("running")
    await settle()
    skipped = queue.submit("skipped")
    skipped.cancel()
    await settle()
    assert queue.depth == 0
    handler.open.set()
    await queue.close()
    assert handler.started == ["running"]


async def test_close_drains_by_default_then_refuses() -> None:
    """close() lets queued items run, then submit is refused with LoadShedError."""
    handler = Gated()
    queue = WorkQueue(handler, clock=ManualClock())
    futures = [queue.submit(i) for i in range(3)]
    closing = asyncio.create_task(queue.close())
    await settle()
    with pytest.raises(LoadShedError):
        queue.submit(99)
    handler.open.set()
    await closing
    assert [f.result() for f in futures] == [0, 1, 2]
    assert queue.closed


async def test_close_without_drain_sheds_what_waits() -> None:
    """close(drain=False) fails queued items with LoadShedError; the running one finishes."""
    handler = Gated()
    queue = WorkQueue(handler, clock=ManualClock())
    running = queue.submit("running")
    await settle()
    waiting = [queue.submit(i) for i in range(2)]
    closing = asyncio.create_task(queue.close(drain=False))
    await settle()
    for future in waiting:
        with pytest.raises(LoadShedError):
            await future
    handler.open.set()
    await closing
    assert await running == "running"
    assert handler.started == ["running"]


async def test_close_timeout_cancels_stuck_handlers() -> None:
    """After close's timeout, workers stuck in a handler are cancelled with their item."""
    clock = ManualClock()
    handler = Gated()
    queue = WorkQueue(handler, clock=clock)
    stuck = queue.submit("stuck")
    after = queue.submit("after")
    await settle()
    closing = asyncio.create_task(queue.close(timeout=1.0))
    await settle()
    clock.advance(1.0)
    await closing
    assert stuck.cancelled()
    with pytest.raises(LoadShedError):
        await after
    assert queue.snapshot().workers == 0


async def test_describe_and_repr() -> None:
    """describe() gives the options as plain data."""
    queue: WorkQueue[int, int] = WorkQueue(abs, workers=2, max_workers=4, name="jobs")
    described = queue.describe()
    assert described["name"] == "jobs"
    assert described["options"]["max_workers"] == 4
    assert described["options"]["min_workers"] == 2
    assert "depth=0/1000" in repr(queue)


async def test_bad_priority_on_submit() -> None:
    """A priority outside [0, priorities - 1] raises ConfigError and queues nothing."""
    queue: WorkQueue[int, int] = WorkQueue(abs, priorities=2)
    for bad in (-1, 2, 1.0, True):
        with pytest.raises(ConfigError, match=r"^priority: "):
            queue.submit(1, priority=bad)  # type: ignore[arg-type]
    with pytest.raises(ConfigError, match=r"^deadline: "):
        queue.submit(1, deadline=-1)
    assert queue.depth == 0
    await queue.close()


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"handler": 42}, "handler"),
        ({"workers": 0}, "workers"),
        ({"workers": 5, "max_workers": 4}, "max_workers"),
        ({"workers": 5, "min_workers": 1, "max_workers": 4}, "workers"),
        ({"workers": 1, "min_workers": 2}, "max_workers"),
        ({"min_workers": 3, "max_workers": 2}, "max_workers"),
        ({"min_workers": -1}, "min_workers"),
        ({"max_size": 0}, "max_size"),
        ({"priorities": 0}, "priorities"),
        ({"deadline": 0}, "deadline"),
        ({"idle_timeout": -1}, "idle_timeout"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, Any], field: str) -> None:
    """Invalid options raise ConfigError naming the field."""
    kwargs.setdefault("handler", abs)
    with pytest.raises(ConfigError, match=f"^{field}: ") as info:
        WorkQueue(**kwargs)
    assert info.value.field == field


@settings(max_examples=150, deadline=None)
@given(
    max_size=st.integers(1, 4),
    priorities=st.integers(1, 3),
    arrivals=st.lists(st.integers(0, 2), max_size=25),
)
def test_shedding_keeps_the_highest_priorities(
    max_size: int, priorities: int, arrivals: list[int]
) -> None:
    """For any arrivals at a busy queue, what is kept and the order it runs in match a model:
    a full queue evicts the newest of the lowest priority below the arrival, else refuses."""

    async def scenario() -> None:
        handler = Gated()
        queue = WorkQueue(handler, max_size=max_size, priorities=priorities, clock=ManualClock())
        queue.submit(("blocker", 0), priority=0)
        await settle()
        model: list[tuple[int, int]] = []  # (priority, number), in arrival order
        futures = {}
        for number, wanted in enumerate(arrivals):
            priority = wanted % priorities
            if len(model) >= max_size:
                lower = [entry for entry in model if entry[0] > priority]
                if not lower:
                    with pytest.raises(LoadShedError):
                        queue.submit((priority, number), priority=priority)
                    continue
                lowest = max(entry[0] for entry in lower)
                victim = [entry for entry in model if entry[0] == lowest][-1]
                model.remove(victim)
            futures[number] = queue.submit((priority, number), priority=priority)
            model.append((priority, number))
            assert queue.depth == len(model) <= max_size
        handler.open.set()
        await queue.close()
        expected = sorted(model, key=lambda entry: entry[0])  # stable: FIFO within a priority
        assert handler.started[1:] == expected
        for number, future in futures.items():
            kept = any(entry[1] == number for entry in model)
            assert (
                future.exception() is None
                if kept
                else isinstance(future.exception(), LoadShedError)
            )

    asyncio.run(scenario())
