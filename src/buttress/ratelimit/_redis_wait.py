"""Waiting for a distributed limiter: first come, first served per key within the process.

The shared state lives in Redis, so the queue of waiters is the process's own: per key, only
the head of the queue asks Redis; it sleeps the exact ``retry_after`` it was told (on the
server's clock) and asks again, and the others wait to be woken when it leaves. While a key
has waiters here, this process's newcomers (``allow``, ``try_acquire``) are refused, so a
large request is not starved by a stream of small ones from its own process. Across
processes there is no queue: a waiter competes with the other processes' requests at each
retry (the docs say so).
"""

from __future__ import annotations

import asyncio
import math
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from typing import ParamSpec, TypeVar

from buttress._clock import TimerHandle
from buttress.errors import RateLimitedError, StoreError
from buttress.ratelimit._decision import Decision
from buttress.ratelimit._limiter import RateLimiter
from buttress.ratelimit._waiting import Waiter

__all__ = ["DistributedWaiting"]

P = ParamSpec("P")
T = TypeVar("T")
_new_error = BaseException.__new__

_INF = math.inf
_new = tuple.__new__


class DistributedWaiting(RateLimiter):
    """``acquire``, ``aacquire`` and the refusal of newcomers for ``RedisRateLimiter``."""

    __slots__ = ()

    def _judge(self, key: Hashable, cost: float, count: bool = True) -> Decision:
        """One decision (Redis, a lease, or local while the store is down)."""
        raise NotImplementedError

    async def _ajudge(self, key: Hashable, cost: float, count: bool = True) -> Decision:
        """``_judge`` for asyncio."""
        raise NotImplementedError

    # -- newcomers ------------------------------------------------------------------------------

    def _ahead(self, key: Hashable) -> float:
        """The units that this process's waiters on ``key`` ask for (0: nobody waits)."""
        if not self._queues:
            return 0.0
        with self._lock:
            queue = self._queues.get(key)
            return sum(w.cost for w in queue) if queue else 0.0

    def _behind_waiters(self, forecast: Decision) -> Decision:
        """Refuse a newcomer while others wait here: ``retry_after`` is when the queue and
        this request would fit together (a forecast)."""
        with self._lock:
            self.refused += 1
        return _new(Decision, (False, forecast[1], forecast[2], forecast[3], forecast[4]))

    def _forecast_cost(self, ahead: float, cost: float) -> float:
        capacity = self.algorithm.capacity
        return cost if cost > capacity else min(capacity, ahead + cost)

    # -- the queue ------------------------------------------------------------------------------

    def _join(self, key: Hashable, cost: float, loop: asyncio.AbstractEventLoop | None) -> Waiter:
        waiter = Waiter(cost, loop)
        with self._lock:
            queue = self._queues.get(key)
            if queue:
                queue.append(waiter)
                waiter.arm()
            else:
                self._queues[key] = deque((waiter,))
                self._queues_changed()
        return waiter

    def _first(self, key: Hashable, waiter: Waiter) -> bool:
        """Whether ``waiter`` heads its queue; if not, arm it to be woken."""
        with self._lock:
            queue = self._queues.get(key)
            if queue and queue[0] is waiter:
                return True
            waiter.arm()
            return False

    def _gave_up(self, key: Hashable, cost: float) -> RateLimitedError:
        """The refusal of a waiter whose deadline passed before its turn."""
        with self._lock:
            self.refused += 1
        try:
            wait = self.peek(key, cost).retry_after
        except StoreError:
            wait = 0.0
        return RateLimitedError(self.name, wait)

    def _over(self, decision: Decision, deadline: float | None) -> bool:
        """Whether waiting for ``decision``'s ``retry_after`` is pointless (never, or late)."""
        wait = decision[2]
        if wait == _INF or (deadline is not None and self._monotonic() + wait > deadline):
            with self._lock:
                self.refused += 1
            return True
        return False

    def _oversized(self, cost: float) -> None:
        if cost > self.algorithm.capacity:
            with self._lock:
                self.refused += 1
            raise RateLimitedError(self.name, _INF)

    # -- the policy ------------------------------------------------------------------------------

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` if a unit is free (waiting up to ``max_wait``), else raise."""
        if self._max_wait:
            self.acquire("", 1, self._max_wait)
        else:
            verdict = self.try_acquire()
            if not verdict[0]:
                raise _new_error(RateLimitedError, self.name, verdict[2])
        return fn(*args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn`` if a unit is free (waiting up to ``max_wait``), else raise."""
        if self._max_wait:
            await self.aacquire("", 1, self._max_wait)
        else:
            verdict = await self.atry_acquire()
            if not verdict[0]:
                raise _new_error(RateLimitedError, self.name, verdict[2])
        return await fn(*args, **kwargs)

    # -- the shells -----------------------------------------------------------------------------

    def acquire(self, key: Hashable = "", cost: float = 1.0, timeout: float | None = None) -> None:
        """Wait until ``cost`` units for ``key`` are taken, in arrival order per key (in this
        process). ``timeout`` bounds the wait: when it would be passed, ``RateLimitedError``
        is raised at once; a cost above the capacity raises at once with ``retry_after=inf``."""
        clock, deadline = self._clock, self._deadline(cost, timeout)
        self._oversized(cost)
        waiter = self._join(key, cost, None)
        try:
            while not self._first(key, waiter):
                assert waiter.event is not None
                if deadline is not None and clock.monotonic() >= deadline:
                    raise self._gave_up(key, cost)
                left = None if deadline is None else deadline - clock.monotonic()
                clock.wait(waiter.event, left)
            while True:
                decision = self._judge(key, cost, count=False)
                if decision[0]:
                    return
                if self._over(decision, deadline):
                    raise RateLimitedError(self.name, decision[2])
                clock.sleep(decision[2])
        finally:
            self._abandon(key, waiter)

    async def aacquire(
        self, key: Hashable = "", cost: float = 1.0, timeout: float | None = None
    ) -> None:
        """Await until ``cost`` units for ``key`` are taken; like ``acquire``. Cancelling it
        leaves the queue; a decision already sent to Redis stands."""
        clock, deadline = self._clock, self._deadline(cost, timeout)
        self._oversized(cost)
        waiter = self._join(key, cost, asyncio.get_running_loop())
        timer: TimerHandle | None = None
        try:
            while not self._first(key, waiter):
                future = waiter.future
                assert future is not None
                if deadline is not None:
                    if clock.monotonic() >= deadline:
                        raise self._gave_up(key, cost)
                    if timer is None:
                        timer = clock.call_at(deadline, waiter.wake)
                await future
                waiter.future = None
            while True:
                decision = await self._ajudge(key, cost, count=False)
                if decision[0]:
                    return
                if self._over(decision, deadline):
                    raise RateLimitedError(self.name, decision[2])
                await clock.asleep(decision[2])
        finally:
            if timer is not None:
                timer.cancel()
            self._abandon(key, waiter)
