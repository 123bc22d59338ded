"""Bulkhead: concurrency limit, FIFO queue, queue timeout, rejection, no leaked slots."""

from __future__ import annotations

import asyncio
import threading
import time
from typing import Any

import pytest
from hypothesis import example, given, settings
from hypothesis import strategies as st

from buttress.bulkhead import Bulkhead, BulkheadSnapshot
from buttress.errors import BulkheadFullError, ConfigError, RejectedError
from buttress.testing import ManualClock


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(5):
        await asyncio.sleep(0)


class Held:
    """Async calls that enter the bulkhead and stay inside until released."""

    def __init__(self, bulkhead: Bulkhead) -> None:
        self.bulkhead = bulkhead
        self.inside: list[int] = []
        self.order: list[int] = []
        self.gates: dict[int, asyncio.Event] = {}
        self.tasks: dict[int, asyncio.Task[int]] = {}

    async def _body(self, key: int) -> int:
        self.inside.append(key)
        self.order.append(key)
        try:
            await self.gates[key].wait()
        finally:
            self.inside.remove(key)
        return key

    def start(self, key: int) -> asyncio.Task[int]:
        self.gates[key] = asyncio.Event()
        task = asyncio.create_task(self.bulkhead.acall(self._body, key))
        self.tasks[key] = task
        return task

    def finish(self, key: int) -> None:
        self.gates[key].set()


async def test_limits_concurrency_and_rejects_beyond() -> None:
    """At most max_concurrent calls run; with no queue the next one is rejected at once."""
    bulkhead = Bulkhead(2, name="db")
    held = Held(bulkhead)
    held.start(1)
    held.start(2)
    await settle()
    assert held.inside == [1, 2]
    with pytest.raises(BulkheadFullError) as first:
        await bulkhead.acall(asyncio.sleep, 0)
    with pytest.raises(BulkheadFullError) as second:
        bulkhead.call(lambda: None)
    assert first.value is not second.value  # a new exception every time
    assert isinstance(first.value, RejectedError)
    assert first.value.source == "db"
    assert bulkhead.snapshot() == BulkheadSnapshot("db", 2, 0, 2, 0, 2)
    held.finish(1)
    held.finish(2)
    assert await asyncio.gather(*held.tasks.values()) == [1, 2]
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


async def test_queue_is_served_in_fifo_order() -> None:
    """Queued callers get the slot in arrival order."""
    bulkhead = Bulkhead(1, max_queued=3)
    held = Held(bulkhead)
    for key in range(4):
        held.start(key)
        await settle()
    assert bulkhead.snapshot().queued == 3
    for key in range(4):
        held.finish(key)
        await settle()
    assert held.order == [0, 1, 2, 3]
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


async def test_release_hands_the_slot_over_without_barging() -> None:
    """A newcomer arriving right after a release queues behind the waiter that got the slot."""
    bulkhead = Bulkhead(1, max_queued=1)
    held = Held(bulkhead)
    held.start(0)
    await settle()
    held.start(1)
    await settle()
    held.finish(0)
    await asyncio.sleep(0)  # slot 0 released and handed to waiter 1, which has not run yet
    held.start(2)
    await settle()
    assert held.order == [0, 1]
    assert (bulkhead.active, bulkhead.queued) == (1, 1)
    held.finish(1)
    held.finish(2)
    await asyncio.gather(*held.tasks.values())
    assert held.order == [0, 1, 2]


async def test_async_queue_timeout_rejects() -> None:
    """A queued task that waits longer than queue_timeout is rejected."""
    clock = ManualClock()
    bulkhead = Bulkhead(1, max_queued=1, queue_timeout=1, clock=clock)
    held = Held(bulkhead)
    held.start(0)
    waiter = held.start(1)
    await settle()
    clock.advance(0.5)
    await settle()
    assert not waiter.done()
    clock.advance(0.5)
    with pytest.raises(BulkheadFullError):
        await waiter
    assert bulkhead.snapshot() == BulkheadSnapshot("bulkhead", 1, 0, 1, 1, 1)
    held.finish(0)
    await held.tasks[0]
    assert bulkhead.active == 0


async def test_granted_waiter_does_not_time_out() -> None:
    """A waiter that got its slot before the queue timeout is not rejected later."""
    clock = ManualClock()
    bulkhead = Bulkhead(1, max_queued=1, queue_timeout=1, clock=clock)
    held = Held(bulkhead)
    held.start(0)
    held.start(1)
    await settle()
    held.finish(0)
    await settle()
    clock.advance(5)
    held.finish(1)
    assert await held.tasks[1] == 1
    assert bulkhead.snapshot().rejected == 0


def test_sync_queue_timeout_rejects() -> None:
    """A thread that waits longer than queue_timeout for a slot is rejected."""
    clock = ManualClock()
    bulkhead = Bulkhead(1, max_queued=1, queue_timeout=2, clock=clock)
    with pytest.raises(BulkheadFullError):
        bulkhead.call(bulkhead.call, lambda: None)  # the inner call waits for the outer's slot
    assert clock.sleeps == [2.0]
    assert bulkhead.snapshot() == BulkheadSnapshot("bulkhead", 0, 0, 1, 1, 1)


async def test_cancelled_call_releases_its_slot() -> None:
    """Cancelling a running call gives its slot back."""
    bulkhead = Bulkhead(1)
    held = Held(bulkhead)
    task = held.start(0)
    await settle()
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert bulkhead.active == 0


async def test_cancelled_waiter_leaves_the_queue() -> None:
    """Cancelling a queued call removes it from the queue; the next waiter gets the slot."""
    bulkhead = Bulkhead(1, max_queued=2)
    held = Held(bulkhead)
    for key in range(3):
        held.start(key)
    await settle()
    held.tasks[1].cancel()
    await settle()
    assert bulkhead.queued == 1
    held.finish(0)
    await settle()
    assert held.inside == [2]
    held.finish(2)
    await held.tasks[2]
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


async def test_waiter_granted_and_cancelled_at_once_passes_the_slot_on() -> None:
    """A waiter cancelled just as a slot is handed to it passes that slot to the next waiter."""
    bulkhead = Bulkhead(1, max_queued=2)
    held = Held(bulkhead)
    gate = asyncio.Event()

    async def holder() -> None:
        await gate.wait()
        # Cancel waiter 1 while it is still queued: the release that follows grants it the slot.
        held.tasks[1].cancel()

    first = asyncio.create_task(bulkhead.acall(holder))
    await settle()
    held.start(1)
    held.start(2)
    await settle()
    gate.set()
    await first
    with pytest.raises(asyncio.CancelledError):
        await held.tasks[1]
    await settle()
    assert held.inside == [2]
    held.finish(2)
    await held.tasks[2]
    assert (bulkhead.active, bulkhead.queued) == (0, 0)


@pytest.mark.parametrize("mode", ["sync", "async"])
async def test_errors_release_the_slot(mode: str) -> None:
    """A call that raises still gives its slot back."""
    bulkhead = Bulkhead(1)

    def boom() -> None:
        raise ValueError("boom")

    async def aboom() -> None:
        raise ValueError("boom")

    async def call() -> None:
        if mode == "sync":
            bulkhead.call(boom)
        else:
            await bulkhead.acall(aboom)

    for _ in range(3):
        with pytest.raises(ValueError, match="boom"):
            await call()
    assert bulkhead.active == 0


async def test_threads_and_tasks_share_one_bulkhead() -> None:
    """Threads and tasks mixed never run more than max_concurrent at once, and all get through."""
    bulkhead = Bulkhead(2, max_queued=20)
    lock = threading.Lock()
    running, peak, done = [0], [0], [0]

    def enter() -> None:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])

    def leave() -> None:
        with lock:
            running[0] -= 1
            done[0] += 1

    def sync_work() -> None:
        enter()
        time.sleep(0.004)
        leave()

    async def async_work() -> None:
        enter()
        await asyncio.sleep(0.004)
        leave()

    threads = [threading.Thread(target=bulkhead.call, args=(sync_work,)) for _ in range(8)]
    for thread in threads:
        thread.start()
    await asyncio.gather(*(bulkhead.acall(async_work) for _ in range(8)))
    for thread in threads:
        await asyncio.to_thread(thread.join)
    assert done[0] == 16
    assert peak[0] <= 2
    assert bulkhead.snapshot() == BulkheadSnapshot("bulkhead", 0, 0, 2, 20, 0)


def test_sync_decorator_and_waiting_thread() -> None:
    """A decorated sync function waits in the queue for a slot held by another thread."""
    bulkhead = Bulkhead(1, max_queued=1)
    entered, release = threading.Event(), threading.Event()

    @bulkhead
    def hold() -> str:
        entered.set()
        release.wait(1)
        return "held"

    @bulkhead
    def quick() -> str:
        return "quick"

    results: list[str] = []
    holder = threading.Thread(target=lambda: results.append(hold()))
    holder.start()
    assert entered.wait(1)
    waiter = threading.Thread(target=lambda: results.append(quick()))
    waiter.start()
    while bulkhead.queued == 0:
        time.sleep(0.001)
    release.set()
    holder.join(1)
    waiter.join(1)
    assert results == ["held", "quick"]
    assert bulkhead.active == 0


async def test_async_decorator() -> None:
    """Decorating an async function runs it inside the bulkhead."""
    bulkhead = Bulkhead(1)

    @bulkhead
    async def work(x: int) -> int:
        assert bulkhead.active == 1
        return x * 2

    assert await work(21) == 42
    assert bulkhead.active == 0


@settings(max_examples=150, deadline=None)
@example(  # a slot handed to a waiter cancelled in the same tick
    max_concurrent=1,
    max_queued=1,
    ops=[("start", 0, True), ("start", 0, True), ("finish", 0, False), ("cancel", 1, True)],
)
@given(
    max_concurrent=st.integers(1, 3),
    max_queued=st.integers(0, 3),
    ops=st.lists(
        st.tuples(
            st.sampled_from(["start", "finish", "cancel", "advance"]),
            st.integers(0, 9),
            st.booleans(),
        ),
        max_size=40,
    ),
)
def test_limits_hold_for_any_sequence(max_concurrent: int, max_queued: int, ops: Any) -> None:
    """For any sequence of calls, releases, cancellations and queue timeouts the limits hold.

    Ops that do not let the loop settle pile up in one tick, racing hand-overs with cancels.
    """

    async def scenario() -> None:
        clock = ManualClock()
        bulkhead = Bulkhead(
            max_concurrent,
            max_queued=max_queued,
            queue_timeout=1.0 if max_queued else None,
            clock=clock,
        )
        held = Held(bulkhead)
        for number, (op, pick, settled) in enumerate(ops):
            live = [key for key, task in held.tasks.items() if not task.done()]
            if op == "start":
                held.start(number)
            elif op == "finish" and live:
                held.finish(live[pick % len(live)])
            elif op == "cancel" and live:
                held.tasks[live[pick % len(live)]].cancel()
            elif op == "advance":
                clock.advance(0.6)
            if settled:
                await settle()
            snap = bulkhead.snapshot()
            assert len(held.inside) <= max_concurrent
            assert snap.active <= max_concurrent
            assert snap.queued <= max_queued
            if settled:
                assert snap.active == len(held.inside)
        for key in held.tasks:
            held.finish(key)
        await asyncio.gather(*held.tasks.values(), return_exceptions=True)
        assert (bulkhead.active, bulkhead.queued) == (0, 0)

    asyncio.run(scenario())


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("kwargs", "field"),
    [
        ({"max_concurrent": 0}, "max_concurrent"),
        ({"max_concurrent": 1.5}, "max_concurrent"),
        ({"max_concurrent": True}, "max_concurrent"),
        ({"max_concurrent": 1, "max_queued": -1}, "max_queued"),
        ({"max_concurrent": 1, "max_queued": 1, "queue_timeout": -1}, "queue_timeout"),
        ({"max_concurrent": 1, "max_queued": 1, "queue_timeout": float("nan")}, "queue_timeout"),
    ],
)
def test_bad_options_are_rejected(kwargs: dict[str, Any], field: str) -> None:
    """Invalid limits raise ConfigError naming the field."""
    with pytest.raises(ConfigError, match=f"^{field}: ") as info:
        Bulkhead(**kwargs)
    assert info.value.field == field


def test_queue_timeout_without_queue_warns() -> None:
    """A queue_timeout that can never apply (max_queued=0) is flagged with a warning."""
    with pytest.warns(UserWarning, match="queue_timeout has no effect"):
        Bulkhead(1, queue_timeout=1)


def test_describe_lists_the_options() -> None:
    """describe() reports the limits."""
    assert Bulkhead(3, max_queued=5, queue_timeout=0.5, name="pool").describe() == {
        "policy": "Bulkhead",
        "name": "pool",
        "options": {"max_concurrent": 3, "max_queued": 5, "queue_timeout": 0.5},
    }
