"""Fair waiting for a rate limiter: a FIFO queue of waiters per key, one core, two shells.

Only the first waiter of a key (the head) asks the algorithm; it sleeps exactly the
``retry_after`` it was told and asks again. The others wait to be woken when the head leaves.
While a key has waiters, newcomers (``allow``, ``try_acquire``) are refused, so a large
request at the head cannot be starved by a stream of small ones. A head whose wait would pass
its deadline gives up at once with ``RateLimitedError`` rather than sleeping in vain.
"""

from __future__ import annotations

import asyncio
import math
import threading
from collections import deque
from collections.abc import Hashable

from buttress import _options
from buttress._clock import TimerHandle
from buttress.errors import ConfigError, RateLimitedError
from buttress.ratelimit._table import KeyTable, get_ident

__all__ = ["FairWaiting", "Waiter"]

_ADMITTED = -1.0
_NEG_INF = -math.inf
_INF = math.inf


class Waiter:
    """One queued caller: a thread (an event to set) or a task (a future on its loop)."""

    __slots__ = ("cost", "event", "future", "loop")

    def __init__(self, cost: float, loop: asyncio.AbstractEventLoop | None = None) -> None:
        self.cost = cost
        self.loop = loop
        self.event = threading.Event() if loop is None else None
        self.future: asyncio.Future[None] | None = None

    def arm(self) -> None:
        """Get ready to be woken (called under the limiter's lock, before waiting)."""
        if self.event is not None:
            self.event.clear()
        else:
            assert self.loop is not None
            self.future = self.loop.create_future()

    def wake(self) -> bool:
        """Wake the caller; False when it can never wake (its event loop is closed)."""
        if self.event is not None:
            self.event.set()
            return True
        future, loop = self.future, self.loop
        if future is None or loop is None:
            return True  # not armed: it looks at the queue before it waits
        if _running_loop() is loop:
            _resolve(future)
            return True
        try:
            loop.call_soon_threadsafe(_resolve, future)
        except RuntimeError:
            return False
        return True


def _resolve(future: asyncio.Future[None]) -> None:
    if not future.done():
        future.set_result(None)


def _running_loop() -> asyncio.AbstractEventLoop | None:
    try:
        return asyncio.get_running_loop()
    except RuntimeError:
        return None


class FairWaiting(KeyTable):
    """``acquire`` and ``aacquire`` for ``RateLimiter``."""

    __slots__ = ()

    # -- the core: one look at the queue, under the lock --------------------------------------

    def _enter(
        self,
        key: Hashable,
        cost: float,
        deadline: float | None,
        loop: asyncio.AbstractEventLoop | None,
    ) -> tuple[float | None, Waiter | None]:
        """Admit at once (``_ADMITTED``), refuse at once (raise), or queue a new waiter: say
        how long it must sleep as the head, or None when others are ahead (wait to be woken)."""
        now = self._monotonic()
        with self._lock:
            self._deciding()
            if cost > self.algorithm.capacity:
                self.refused += 1
                raise _refusal(self.name, _INF)
            queue = self._queues.get(key)
            if queue:
                waiter = Waiter(cost, loop)
                queue.append(waiter)
                waiter.arm()
                return None, waiter
            state, decision = self._decide(self._states.get(key), now, cost)
            if decision[0]:
                self._take(key, state, now)
                return _ADMITTED, None
            wait = decision[2]
            if wait == _INF or (deadline is not None and now + wait > deadline):
                self.refused += 1
                raise _refusal(self.name, wait)
            waiter = Waiter(cost, loop)
            self._queues[key] = deque((waiter,))
            self._queues_changed()
            return wait, waiter

    def _step(self, key: Hashable, waiter: Waiter, deadline: float | None) -> float | None:
        """The waiter looks again: admitted (``_ADMITTED``), sleep this long as the head, or
        None (wait to be woken). Raises ``RateLimitedError`` when the deadline is passed."""
        now = self._monotonic()
        with self._lock:
            self._deciding()
            queue = self._queues[key]
            state = self._states.get(key)
            if queue[0] is not waiter:
                if deadline is not None and now >= deadline:
                    self._leave(key, waiter)
                    self.refused += 1
                    raise _refusal(self.name, self.algorithm.peek(state, now, waiter.cost)[2])
                waiter.arm()
                return None
            state, decision = self._decide(state, now, waiter.cost)
            if decision[0]:
                self._leave(key, waiter)
                self._take(key, state, now)
                return _ADMITTED
            wait = decision[2]
            if deadline is not None and now + wait > deadline:
                self._leave(key, waiter)
                self.refused += 1
                raise _refusal(self.name, wait)
            return wait

    def _leave(self, key: Hashable, waiter: Waiter) -> None:
        """Take ``waiter`` out of its queue (under the lock); wake the next head if it was one."""
        queue = self._queues.get(key)
        if queue is None or waiter not in queue:
            return
        was_head = queue[0] is waiter
        queue.remove(waiter)
        if was_head:
            while queue and not queue[0].wake():
                queue.popleft()  # its event loop is gone: it will never take its turn
        if not queue:
            del self._queues[key]
            self._queues_changed()

    def _abandon(self, key: Hashable, waiter: Waiter) -> None:
        with self._lock:
            self._leave(key, waiter)

    # -- the shells ---------------------------------------------------------------------------

    def acquire(self, key: Hashable = "", cost: float = 1.0, timeout: float | None = None) -> None:
        """Wait until ``cost`` units for ``key`` are taken, in arrival order per key.

        ``timeout`` (seconds, None: no limit) bounds the wait; when the wait would pass it,
        ``RateLimitedError`` is raised at once. A cost above the capacity raises at once, with
        ``retry_after = inf``. Blocks the thread: use ``aacquire`` on an event loop."""
        clock, deadline = self._clock, self._deadline(cost, timeout)
        sleep, waiter = self._enter(key, cost, deadline, None)
        if waiter is None:
            return
        try:
            while sleep != _ADMITTED:
                if sleep is None:
                    assert waiter.event is not None
                    left = None if deadline is None else max(0.0, deadline - clock.monotonic())
                    clock.wait(waiter.event, left)
                else:
                    clock.sleep(sleep)
                sleep = self._step(key, waiter, deadline)
        except BaseException:
            self._abandon(key, waiter)
            raise

    async def aacquire(
        self, key: Hashable = "", cost: float = 1.0, timeout: float | None = None
    ) -> None:
        """Await until ``cost`` units for ``key`` are taken, in arrival order per key.

        Like ``acquire``; cancellation while waiting leaves the queue and takes nothing."""
        # The same fast path as RateLimiter.allow (see there and _table.py), inlined.
        now = self._monotonic()
        me = get_ident()
        owned = False
        if me == self._fast:
            self._busy = True
            try:
                if me == self._fast:
                    owned = True
                    states = self._states
                    meter = self._meter
                    if meter is not None:
                        tat = states.get(key, _NEG_INF)
                        if tat <= now:
                            if 0.0 < cost <= self._capacity:
                                states[key] = now + cost * self._interval
                                self.allowed += 1
                                if tat is _NEG_INF and len(states) > self._sweep_at:
                                    self._sweep(now)
                                return
                        else:
                            new = tat + cost * self._interval
                            if 0.0 < cost <= self._capacity and (
                                now >= new - meter.tau or now >= meter.threshold(new)
                            ):
                                states[key] = new
                                self.allowed += 1
                                return
                    elif cost > 0 and self._admit(states, key, now, cost):
                        self.allowed += 1
                        if len(states) > self._sweep_at:
                            self._sweep(now)
                        return
            finally:
                self._busy = False
        if not owned and self._admit_locked(key, cost, now, False):
            return
        await self._await_turn(key, cost, timeout)

    async def _await_turn(self, key: Hashable, cost: float, timeout: float | None) -> None:
        clock, deadline = self._clock, self._deadline(cost, timeout)
        sleep, waiter = self._enter(key, cost, deadline, asyncio.get_running_loop())
        if waiter is None:
            return
        timer: TimerHandle | None = None
        try:
            while sleep != _ADMITTED:
                if sleep is None:
                    future = waiter.future
                    assert future is not None
                    if deadline is not None and timer is None:
                        timer = clock.call_at(deadline, waiter.wake)
                    await future
                    waiter.future = None
                else:
                    await clock.asleep(sleep)
                sleep = self._step(key, waiter, deadline)
        except BaseException:
            self._abandon(key, waiter)
            raise
        finally:
            if timer is not None:
                timer.cancel()

    def _deadline(self, cost: float, timeout: float | None) -> float | None:
        if not cost > 0:
            raise ConfigError("cost", cost, "must be a number > 0")
        seconds = _options.optional_duration("timeout", timeout, allow_zero=True)
        return None if seconds is None else self._monotonic() + seconds


def _refusal(source: str, retry_after: float) -> RateLimitedError:
    return RateLimitedError(source, retry_after)
