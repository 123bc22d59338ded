"""Timeout: asyncio cancellation at the deadline, deadline propagation, sync and thread modes."""

from __future__ import annotations

import asyncio
import builtins
import random
import threading
import time
from datetime import timedelta
from typing import Any

import pytest

import buttress
from buttress._deadline import remaining
from buttress.errors import ConfigError
from buttress.events import TimeoutExpired
from buttress.testing import ManualClock, RecordingListener
from buttress.timeout import RESOLUTION, Timeout


class CountingClock(ManualClock):
    """A manual clock that counts the timers scheduled on it."""

    def __init__(self) -> None:
        super().__init__()
        self.scheduled = 0

    def call_at(self, when: float, callback: Any) -> Any:
        self.scheduled += 1
        return super().call_at(when, callback)


async def forever() -> None:
    await asyncio.Event().wait()


def cancelling() -> int:
    task = asyncio.current_task()
    assert task is not None
    return task.cancelling()


# -- asyncio ----------------------------------------------------------------------------------


async def test_expired_call_raises_timeout_error() -> None:
    """A call still running at the deadline is cancelled and TimeoutError is raised instead."""
    clock = ManualClock()
    timeout = Timeout(1, clock=clock, name="db")
    cancelled = []

    async def slow() -> str:
        try:
            await clock.asleep(5)
        except asyncio.CancelledError:
            cancelled.append(True)
            raise
        return "done"

    with pytest.raises(buttress.TimeoutError) as info:
        await timeout.acall(slow)
    assert isinstance(info.value, builtins.TimeoutError)
    assert (info.value.source, info.value.seconds) == ("db", 1.0)
    assert cancelled == [True]
    assert timeout.snapshot().timeouts == 1
    assert cancelling() == 0
    await asyncio.sleep(0)  # no stray cancellation is left pending on the task


async def test_call_within_deadline_returns_its_result() -> None:
    """A call that finishes before the deadline returns its result untouched."""
    clock = ManualClock()
    timeout = Timeout(1, clock=clock)

    async def quick(a: int, *, b: int) -> int:
        await clock.asleep(0.5)
        return a + b

    assert await timeout.acall(quick, 1, b=2) == 3
    assert timeout.snapshot().timeouts == 0
    assert cancelling() == 0


async def test_never_expires_before_the_deadline() -> None:
    """The timer fires at the deadline, not a moment before."""
    clock = ManualClock()
    task = asyncio.create_task(Timeout(1, clock=clock).acall(forever))
    await asyncio.sleep(0)
    clock.advance(0.999)
    await asyncio.sleep(0)
    assert not task.done()
    clock.advance(0.001)
    with pytest.raises(TimeoutError):
        await task


async def test_staggered_deadlines_expire_one_by_one() -> None:
    """Calls started at different times expire at their own deadlines (the timer re-arms)."""
    clock = ManualClock()
    timeout = Timeout(1, clock=clock)
    first = asyncio.create_task(timeout.acall(forever))
    await asyncio.sleep(0)
    clock.advance(0.5)
    second = asyncio.create_task(timeout.acall(forever))
    await asyncio.sleep(0)
    clock.advance(0.5)
    await asyncio.sleep(0)
    assert first.done()
    assert not second.done()
    clock.advance(0.5)
    await asyncio.sleep(0)
    assert second.done()
    for task in (first, second):
        with pytest.raises(TimeoutError):
            task.result()
    assert timeout.snapshot().timeouts == 2


async def test_close_deadlines_expire_within_resolution() -> None:
    """A deadline just after one that fired is honoured at most RESOLUTION late."""
    clock = ManualClock()
    timeout = Timeout(1, clock=clock)
    first = asyncio.create_task(timeout.acall(forever))
    await asyncio.sleep(0)
    clock.advance(RESOLUTION / 2)
    second = asyncio.create_task(timeout.acall(forever))
    await asyncio.sleep(0)
    clock.advance(1 - RESOLUTION / 2)
    await asyncio.sleep(0)
    assert first.done()
    assert not second.done()
    clock.advance(RESOLUTION / 2 + RESOLUTION / 4)
    await asyncio.sleep(0)
    assert not second.done()
    clock.advance(RESOLUTION / 4)
    await asyncio.sleep(0)
    assert second.done()
    assert isinstance(second.exception(), TimeoutError)
    assert isinstance(first.exception(), TimeoutError)


@pytest.mark.parametrize(
    ("outer_after", "inner_after", "work_for", "source", "expired"),
    [
        pytest.param(5, 1, 2, "inner", (0, 1), id="inner-first"),
        pytest.param(1, 5, 2, "outer", (1, 0), id="outer-first"),
        pytest.param(1, 2, 10, "outer", (1, 1), id="both-expire-together"),
    ],
)
async def test_nested_timeouts_name_the_one_that_expired(
    outer_after: float, inner_after: float, work_for: float, source: str, expired: tuple[int, int]
) -> None:
    """In nested timeouts the shorter inner one fires and the outer lets its error through;
    when the outer deadline passes first the inner re-raises the cancellation; when both pass
    at once (virtual time jumps past both) the outer raises and each counts its expiry. The
    task's cancel count stays balanced."""
    clock = ManualClock()
    outer = Timeout(outer_after, clock=clock, name="outer")
    inner = Timeout(inner_after, clock=clock, name="inner")

    async def work() -> None:
        await clock.asleep(work_for)

    with pytest.raises(buttress.TimeoutError) as info:
        await outer.acall(inner.acall, work)
    assert info.value.source == source
    assert (outer.timeouts, inner.timeouts) == expired
    assert cancelling() == 0
    await asyncio.sleep(0)


async def test_swallowed_cancellation_keeps_the_cancel_count_balanced() -> None:
    """If the call swallows our cancellation and returns, its result stands and no cancel leaks."""
    clock = ManualClock()
    timeout = Timeout(1, clock=clock)

    async def stubborn() -> str:
        try:
            await clock.asleep(5)
        except asyncio.CancelledError:
            return "swallowed"
        return "finished"

    assert await timeout.acall(stubborn) == "swallowed"
    assert cancelling() == 0
    await asyncio.sleep(0)
    assert timeout.snapshot().tracked == 0


async def test_outer_cancellation_passes_through() -> None:
    """Cancelling the caller raises CancelledError, not TimeoutError, and counts nothing."""
    timeout = Timeout(10, clock=ManualClock())
    task = asyncio.create_task(timeout.acall(forever))
    await asyncio.sleep(0)
    task.cancel()
    with pytest.raises(asyncio.CancelledError):
        await task
    assert task.cancelled()
    assert timeout.snapshot() == buttress.timeout.TimeoutSnapshot("timeout", 10.0, 0, 0)


async def test_remaining_reads_the_deadline_inside() -> None:
    """Inner code sees the time left through buttress.remaining(); outside there is none."""
    clock = ManualClock()
    seen = []

    async def work() -> None:
        seen.append(remaining())
        await clock.asleep(0.5)
        seen.append(remaining())

    await Timeout(2, clock=clock).acall(work)
    assert seen == [2.0, 1.5]
    assert remaining() is None


async def test_tighter_outer_deadline_wins() -> None:
    """An inner, longer timeout does not loosen the deadline that inner code sees."""
    clock = ManualClock()
    outer, inner = Timeout(1, clock=clock), Timeout(5, clock=clock)

    async def work() -> float | None:
        return remaining()

    assert await outer.acall(inner.acall, work) == 1.0
    assert await inner.acall(outer.acall, work) == 1.0


async def test_entries_stay_bounded_after_many_calls() -> None:
    """After many sequential and overlapping calls no entry is left behind."""
    clock = CountingClock()
    timeout = Timeout(1, clock=clock)

    async def quick() -> None:
        await asyncio.sleep(0)

    for _ in range(1000):
        await timeout.acall(quick)
    assert timeout.snapshot().tracked == 0

    gates = [asyncio.Event() for _ in range(200)]
    tasks = [asyncio.create_task(timeout.acall(gate.wait)) for gate in gates]
    await asyncio.sleep(0)
    assert timeout.snapshot().tracked == 200
    assert clock.scheduled == 1  # one timer serves every call in flight
    random.Random(7).shuffle(gates)
    for gate in gates:
        gate.set()
    await asyncio.gather(*tasks)
    assert timeout.snapshot().tracked == 0  # the last call at the head swept the rest away
    assert clock.scheduled == 1


async def test_call_ignoring_its_cancellation_holds_nothing_back() -> None:
    """An expired call that keeps running does not keep later, finished entries alive."""
    clock = ManualClock()
    timeout = Timeout(1, clock=clock)
    gate = asyncio.Event()

    async def stubborn() -> str:
        try:
            await forever()
        except asyncio.CancelledError:
            await gate.wait()
        return "late"

    first = asyncio.create_task(timeout.acall(stubborn))
    await asyncio.sleep(0)
    clock.advance(1)
    await asyncio.sleep(0)
    await timeout.acall(asyncio.sleep, 0)
    assert timeout.snapshot().tracked == 0
    gate.set()
    assert await first == "late"
    assert timeout.snapshot().timeouts == 1


async def test_expiry_emits_an_event() -> None:
    """An expiry is reported as a TimeoutExpired event."""
    clock = ManualClock()
    with RecordingListener() as events, pytest.raises(TimeoutError):
        await Timeout(0.5, clock=clock, name="api").acall(clock.asleep, 1)
    (event,) = events.of(TimeoutExpired)
    assert (event.source, event.seconds) == ("api", 0.5)


def test_works_on_several_event_loops() -> None:
    """One Timeout serves successive loops and a loop in another thread."""
    timeout = Timeout(5)

    async def work() -> int:
        await asyncio.sleep(0)
        return 7

    assert asyncio.run(timeout.acall(work)) == 7
    assert asyncio.run(timeout.acall(work)) == 7
    results = []
    thread = threading.Thread(target=lambda: results.append(asyncio.run(timeout.acall(work))))
    thread.start()
    thread.join()
    assert results == [7]
    assert asyncio.run(timeout.acall(work)) == 7


async def test_real_clock_expiry() -> None:
    """With the system clock a short timeout cancels a real sleep."""
    started = time.monotonic()
    with pytest.raises(TimeoutError):
        await Timeout(0.02).acall(asyncio.sleep, 1)
    assert 0.015 < time.monotonic() - started < 0.5


async def test_async_decorator() -> None:
    """Decorating an async function runs every call under the timeout."""
    clock = ManualClock()

    @Timeout(1, clock=clock)
    async def fetch(delay: float) -> str:
        await clock.asleep(delay)
        return "ok"

    assert await fetch(0.5) == "ok"
    with pytest.raises(TimeoutError):
        await fetch(2)


# -- sync -------------------------------------------------------------------------------------


def test_sync_overrun_raises_after_the_fact() -> None:
    """A sync call that overran has its result discarded and raises TimeoutError."""
    clock = ManualClock()
    timeout = Timeout(1, clock=clock)

    def work(seconds: float) -> str:
        clock.sleep(seconds)
        return "done"

    assert timeout.call(work, 0.5) == "done"
    with pytest.raises(buttress.TimeoutError):
        timeout.call(work, 2)
    assert timeout.snapshot().timeouts == 1


def test_sync_own_error_wins_over_overrun() -> None:
    """If the sync call raised after overrunning, its own error is re-raised."""
    clock = ManualClock()

    def fail() -> None:
        clock.sleep(2)
        raise KeyError("own")

    with pytest.raises(KeyError):
        Timeout(1, clock=clock).call(fail)


def test_sync_propagates_the_deadline() -> None:
    """Sync inner code reads the time left with buttress.remaining()."""
    clock = ManualClock()

    @Timeout(timedelta(seconds=3), clock=clock)
    def work() -> float | None:
        clock.sleep(1)
        return remaining()

    assert work() == 2.0
    assert remaining() is None


def test_thread_mode_abandons_a_slow_call() -> None:
    """In thread mode the caller gets TimeoutError at the deadline; the abandoned work finishes."""
    release, finished = threading.Event(), threading.Event()

    def slow() -> str:
        release.wait(1)
        finished.set()
        return "late"

    started = time.monotonic()
    with pytest.raises(buttress.TimeoutError):
        Timeout(0.03, thread=True).call(slow)
    assert time.monotonic() - started < 0.5
    assert not finished.is_set()
    release.set()
    assert finished.wait(1)  # the work kept running: Python cannot kill threads


def test_thread_mode_returns_results_and_errors() -> None:
    """In thread mode a quick call returns its result, sees the deadline, and keeps its errors."""
    timeout = Timeout(1, thread=True)
    left = timeout.call(remaining)
    assert left is not None
    assert 0.5 < left <= 1
    assert timeout.call(lambda a, b: a * b, 6, 7) == 42

    def fail() -> None:
        raise ValueError("inner")

    with pytest.raises(ValueError, match="inner"):
        timeout.call(fail)
    assert timeout.snapshot().timeouts == 0


# -- options ----------------------------------------------------------------------------------


@pytest.mark.parametrize("seconds", [0, -1, float("nan"), float("inf"), "1", None, True])
def test_bad_seconds_are_rejected(seconds: object) -> None:
    """A duration that is not finite and > 0 raises ConfigError naming the field."""
    with pytest.raises(ConfigError, match=r"^seconds: ") as info:
        Timeout(seconds)  # type: ignore[arg-type]
    assert info.value.field == "seconds"


def test_bad_thread_flag_is_rejected() -> None:
    """thread= must be a bool."""
    with pytest.raises(ConfigError, match="thread"):
        Timeout(1, thread="yes")  # type: ignore[arg-type]


def test_describe_lists_the_options() -> None:
    """describe() reports the policy, its name and its options as plain data."""
    assert Timeout(timedelta(milliseconds=250), name="t").describe() == {
        "policy": "Timeout",
        "name": "t",
        "options": {"seconds": 0.25, "thread": False},
    }
