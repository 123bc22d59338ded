"""acquire/aacquire: exact waits, timeouts, FIFO order per key, no starvation, cancellation."""

from __future__ import annotations

import asyncio
import math
import threading
import time

import pytest

from buttress.errors import RateLimitedError
from buttress.ratelimit import FixedWindow, RateLimiter, SlidingWindowLog, TokenBucket
from buttress.testing import ManualClock


async def settle() -> None:
    """Let every ready task run until it blocks."""
    for _ in range(10):
        await asyncio.sleep(0)


async def waited(mode: str, lim: RateLimiter, timeout: float) -> None:
    """acquire() or aacquire() of one unit, by ``mode``."""
    if mode == "sync":
        lim.acquire(timeout=timeout)
    else:
        await lim.aacquire(timeout=timeout)


def test_acquire_sleeps_exactly_the_retry_after() -> None:
    """A blocked acquire sleeps exactly retry_after on the clock, then takes its units."""
    clock = ManualClock(start=5.0)
    lim = RateLimiter(TokenBucket("4/s", burst=2), name="api", clock=clock)
    lim.acquire(cost=2)
    expected = lim.peek(cost=2).retry_after
    lim.acquire(cost=2)
    assert clock.sleeps == [expected]
    assert expected == pytest.approx(0.5)
    assert not lim.allow()


async def test_aacquire_sleeps_exactly_the_retry_after() -> None:
    """aacquire waits exactly retry_after in virtual time, then takes its units."""
    clock = ManualClock()
    lim = RateLimiter(SlidingWindowLog(1, 3), name="api", clock=clock)
    await lim.aacquire("k")
    await lim.aacquire("k")
    assert clock.sleeps == [3.0]
    assert lim.snapshot().allowed == 2


async def test_timeout_too_short_refuses_at_once_and_takes_nothing(mode: str) -> None:
    """When the wait would pass the timeout, RateLimitedError comes at once, with retry_after."""
    clock = ManualClock()
    lim = RateLimiter(FixedWindow(1, 10), name="api", clock=clock)
    lim.acquire()
    with pytest.raises(RateLimitedError) as info:
        await waited(mode, lim, 9.0)
    assert info.value.retry_after == pytest.approx(10.0)
    assert clock.sleeps == []
    assert lim.snapshot().waiting == 0
    lim.acquire(timeout=10.0)  # exactly enough
    assert clock.sleeps == [10.0]


async def test_cost_above_capacity_raises_at_once_even_behind_others() -> None:
    """A request that can never fit raises at once with retry_after=inf, queue or no queue."""
    clock = ManualClock()
    lim = RateLimiter(TokenBucket(1, 2), name="api", clock=clock)
    lim.allow(cost=2)
    head = asyncio.create_task(lim.aacquire(cost=2))
    await asyncio.sleep(0)
    with pytest.raises(RateLimitedError) as info:
        await lim.aacquire(cost=3)
    assert info.value.retry_after == math.inf
    await head


async def test_waiters_are_served_first_come_first_served() -> None:
    """Waiters on one key are admitted in arrival order."""
    clock = ManualClock()
    lim = RateLimiter(TokenBucket(10, 1), name="api", clock=clock)
    order: list[int] = []

    async def take(n: int) -> None:
        await lim.aacquire("k")
        order.append(n)

    lim.allow("k")
    tasks = [asyncio.create_task(take(n)) for n in range(6)]
    await asyncio.gather(*tasks)
    assert order == list(range(6))
    assert clock.monotonic() == pytest.approx(0.6)


async def test_large_request_is_not_starved_by_small_ones() -> None:
    """While a large request waits, newcomers are refused even when their units are free."""
    clock = ManualClock()
    lim = RateLimiter(TokenBucket(10, 5), name="api", clock=clock)
    lim.allow(cost=5)
    big = asyncio.create_task(lim.aacquire(cost=5))
    await asyncio.sleep(0)  # big is at the head, sleeping 0.5 s of virtual time
    assert lim.snapshot().waiting == 1
    refused = lim.try_acquire()
    assert not refused.allowed
    assert refused.remaining == 0
    assert refused.retry_after > 0
    assert not lim.allow()
    small = asyncio.create_task(lim.aacquire(cost=1))
    await big
    assert not small.done()
    await small
    assert lim.snapshot().allowed == 3


async def test_cancelled_waiter_leaves_the_queue_and_takes_nothing() -> None:
    """Cancelling a queued aacquire removes it; the waiter behind it moves up."""
    clock = ManualClock()
    lim = RateLimiter(TokenBucket(1, 1), name="api", clock=clock)
    lim.allow()
    first = asyncio.create_task(lim.aacquire())
    second = asyncio.create_task(lim.aacquire())
    third = asyncio.create_task(lim.aacquire())
    await asyncio.sleep(0)  # first sleeps at the head; second and third are queued
    assert lim.snapshot().waiting == 3
    second.cancel()
    await first
    await third
    with pytest.raises(asyncio.CancelledError):
        await second
    assert lim.snapshot().allowed == 3
    assert lim.snapshot().waiting == 0


async def test_queued_waiter_times_out_behind_a_slow_head() -> None:
    """A waiter behind others gives up at its deadline (a clock timer wakes it)."""
    clock = ManualClock()
    lim = RateLimiter(TokenBucket(1, 5), name="api", clock=clock)
    lim.allow(cost=5)
    first = asyncio.create_task(lim.aacquire(cost=5))  # sleeps to t=5 at once (virtual time)
    second = asyncio.create_task(lim.aacquire(cost=5))  # admitted at t=10
    third = asyncio.create_task(lim.aacquire(timeout=2.0))  # from t=5: gives up at t=7
    await asyncio.sleep(0)
    await first
    await second
    with pytest.raises(RateLimitedError):
        await third
    assert clock.monotonic() == pytest.approx(10.0)
    assert lim.snapshot().waiting == 0
    assert lim.snapshot().refused == 1


async def test_head_gives_up_when_its_wait_passes_the_deadline() -> None:
    """Once at the head, a waiter whose wait would pass its deadline gives up at once."""
    clock = ManualClock()
    lim = RateLimiter(TokenBucket(1, 5), name="api", clock=clock)
    lim.allow(cost=5)
    first = asyncio.create_task(lim.aacquire(cost=5))  # sleeps to t=5 at once (virtual time)
    second = asyncio.create_task(lim.aacquire(cost=5, timeout=2.0))  # from t=5: needs t=10
    await asyncio.sleep(0)
    await first
    with pytest.raises(RateLimitedError) as info:
        await second
    assert info.value.retry_after == pytest.approx(5.0)
    assert clock.monotonic() == pytest.approx(5.0)
    assert lim.snapshot().waiting == 0
    assert lim.peek(cost=5).retry_after == pytest.approx(5.0)  # the refusal took nothing


def test_threads_wait_their_turn_in_real_time() -> None:
    """A thread waiting for a large request holds the key: a newcomer is refused meanwhile."""
    lim = RateLimiter(TokenBucket(100, 3), name="api")  # a unit each 10 ms
    lim.allow(cost=3)
    done = threading.Event()

    def big() -> None:
        lim.acquire(cost=3, timeout=5.0)
        done.set()

    thread = threading.Thread(target=big)
    thread.start()
    deadline = time.monotonic() + 2.0
    while lim.snapshot().waiting == 0 and time.monotonic() < deadline:
        time.sleep(0.001)
    assert not lim.allow()  # even once a unit is free, the waiter goes first
    thread.join(5.0)
    assert done.is_set()
    assert lim.snapshot().waiting == 0


def test_many_threads_are_admitted_at_the_rate_in_arrival_order() -> None:
    """Threads queued on one key are all admitted, each exactly once, none lost."""
    lim = RateLimiter(TokenBucket(500, 1), name="api")  # 2 ms per unit
    admitted: list[int] = []
    lock = threading.Lock()

    def take(n: int) -> None:
        lim.acquire("k", timeout=5.0)
        with lock:
            admitted.append(n)

    threads = [threading.Thread(target=take, args=(n,)) for n in range(12)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(5.0)
    assert sorted(admitted) == list(range(12))
    assert lim.snapshot().allowed == 12
    assert lim.snapshot().waiting == 0


async def test_thread_and_task_share_one_queue() -> None:
    """A thread and a task waiting on one key are both served; the queue empties."""
    lim = RateLimiter(TokenBucket(200, 1), name="api")  # 5 ms per unit
    lim.allow()
    thread = threading.Thread(target=lim.acquire, kwargs={"timeout": 5.0})
    thread.start()
    await asyncio.wait_for(lim.aacquire(timeout=5.0), 5.0)
    await asyncio.to_thread(thread.join, 5.0)
    assert lim.snapshot().allowed == 3
    assert lim.snapshot().waiting == 0
