"""``RateLimiter``: per-key state in memory around one algorithm, and the policy shell.

The hot path (``allow``, and ``aacquire`` in ``_waiting.py``) inlines the meter's admission
(no ``Decision`` is built), bumps a plain integer and, for the thread that owns the table,
skips the lock (``_table.py``). Idle keys (state equivalent to none: a whole bucket, an ended
window) are swept when the table has doubled since the last sweep, so memory follows the
active keys.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Awaitable, Callable, Hashable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, ParamSpec, Self, TypeVar

from buttress import _options, events
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._policy import Policy
from buttress.errors import ConfigError, RateLimitedError
from buttress.ratelimit._algorithm import Algorithm
from buttress.ratelimit._decision import Decision
from buttress.ratelimit._log import LogState
from buttress.ratelimit._table import bad_cost as _bad_cost
from buttress.ratelimit._table import get_ident
from buttress.ratelimit._waiting import FairWaiting, Waiter

__all__ = ["RateLimiter", "RateLimiterOptions", "RateLimiterSnapshot", "SharedRateLimiterOptions"]

P = ParamSpec("P")
T = TypeVar("T")

_new = tuple.__new__
_new_error = BaseException.__new__  # a rejection without a Python __init__ (see RejectedError)
_NEG_INF = -math.inf
REPORT_INTERVAL = 1.0  # at most one RateLimited event per limiter per this many seconds


@dataclass(frozen=True, slots=True)
class RateLimiterOptions:
    """A rate limiter's options; see ``RateLimiter``."""

    algorithm: Algorithm
    max_wait: float = 0.0


@dataclass(frozen=True, slots=True)
class SharedRateLimiterOptions(RateLimiterOptions):
    """A distributed limiter's options: also its ``store`` (the URL, password masked) and
    ``lease`` (lease mode's largest block as a fraction of the limit; 0: off)."""

    store: str = ""
    lease: float = 0.0


@dataclass(frozen=True, slots=True)
class RateLimiterSnapshot:
    """A limiter's state: keys held, callers waiting, and decisions so far; for a shared store
    its URL (masked) and whether it is unreachable (``degraded``, with the reason)."""

    name: str
    algorithm: dict[str, Any]
    keys: int
    waiting: int
    allowed: int
    refused: int
    store: str | None = None
    degraded: bool = False
    degraded_reason: str | None = None


class RateLimiter(FairWaiting, Policy):
    """Admits requests per key at the pace of ``algorithm``; refuses, or waits fairly, beyond it.

    ``RateLimiter(algorithm, *, name, max_wait=0, store=None, clock=None)``. ``try_acquire(key,
    cost)`` answers a ``Decision`` at once; ``allow(key, cost)`` only a bool (the fast path);
    ``acquire``/``aacquire(key, cost, timeout)`` wait their turn, first come first served per
    key. A refused request consumes nothing. As a policy (``call``, ``acall``, decorator) it
    takes one unit of key ``""`` per call, waiting at most ``max_wait`` seconds, else raises
    ``RateLimitedError`` with ``retry_after``. ``store=None`` keeps state in memory; a
    ``RedisStore``, ``AsyncRedisStore`` or ``redis://`` URL shares it across processes (one
    atomic Lua call per decision on the server's clock; ``atry_acquire``/``aallow``/``apeek``
    do not block an event loop), and ``lease=True`` (or a fraction of the limit) serves hot
    keys from blocks taken in advance (docs/ratelimit.md, "Distributed").
    """

    __slots__ = ("_max_wait", "_report_at", "_unreported", "options")

    options: RateLimiterOptions

    def __new__(cls, algorithm: Algorithm, *args: Any, store: object = None, **kwargs: Any) -> Self:
        if store is not None and cls is RateLimiter:
            from buttress.ratelimit._redis import RedisRateLimiter

            return super().__new__(RedisRateLimiter)  # type: ignore[return-value]
        return super().__new__(cls)

    def __init__(
        self,
        algorithm: Algorithm,
        *,
        name: str,
        max_wait: float | timedelta = 0.0,
        store: object | None = None,
        lease: bool | float = False,
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(algorithm, Algorithm):
            raise ConfigError(
                "algorithm",
                algorithm,
                "must be a TokenBucket, LeakyBucket, GCRA, FixedWindow,"
                " SlidingWindowLog or SlidingWindowCounter",
            )
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "must be a non-empty string")
        if lease and store is None and type(self) is RateLimiter:
            raise ConfigError("lease", lease, "needs a shared store (store=...)")
        wait = _options.duration("max_wait", max_wait, allow_zero=True)
        self._init_table(name, algorithm, SYSTEM_CLOCK if clock is None else clock)
        self.options = RateLimiterOptions(algorithm, wait)
        self._max_wait = wait
        self._report_at = -math.inf
        self._unreported = 0

    # -- decisions ---------------------------------------------------------------------------

    def allow(self, key: Hashable = "", cost: float = 1.0) -> bool:
        """Take ``cost`` units for ``key`` if they fit now; True when admitted (the fast path)."""
        now = self._monotonic()
        me = get_ident()
        owned = False
        if me == self._fast:  # the owner decides without the lock (see _table.py)
            self._busy = True
            try:
                if me == self._fast:  # still the owner, now that it announced itself
                    owned = True
                    states = self._states
                    meter = self._meter
                    if meter is not None:  # the meter's admit, inlined: one call less
                        tat = states.get(key, _NEG_INF)
                        if tat <= now:
                            if 0.0 < cost <= self._capacity:
                                states[key] = now + cost * self._interval
                                self.allowed += 1
                                if tat is _NEG_INF and len(states) > self._sweep_at:
                                    self._sweep(now)  # a new key: the table may have doubled
                                return True
                        else:
                            new = tat + cost * self._interval
                            if 0.0 < cost <= self._capacity and (
                                now >= new - meter.tau or now >= meter.threshold(new)
                            ):
                                states[key] = new
                                self.allowed += 1
                                return True
                    elif cost > 0 and self._admit(states, key, now, cost):
                        self.allowed += 1
                        if len(states) > self._sweep_at:
                            self._sweep(now)
                        return True
                    if not cost > 0:
                        raise _bad_cost(cost)
                    self.refused += 1
            finally:
                self._busy = False
        if not owned and self._admit_locked(key, cost, now, True):
            return True
        if now >= self._report_at:
            self._report(now, key, cost, None)
        else:
            self._unreported += 1
        return False

    def try_acquire(self, key: Hashable = "", cost: float = 1.0) -> Decision:
        """Take ``cost`` units for ``key`` if they fit now, and say how it stands."""
        if not cost > 0:
            raise _bad_cost(cost)
        now = self._monotonic()
        lock = self._lock
        lock.acquire()
        try:
            self._deciding()
            states = self._states
            queue = self._queues.get(key) if self._queues else None
            if queue:
                decision = self._behind(queue, states.get(key), now, cost)
            else:
                state, decision = self._decide(states.get(key), now, cost)
                if decision[0]:
                    states[key] = state
                    self.allowed += 1
                    if len(states) > self._sweep_at:
                        self._sweep(now)
                    return decision
            self.refused += 1
        finally:
            lock.release()
        if now >= self._report_at:
            self._report(now, key, cost, decision[2])
        else:
            self._unreported += 1
        return decision

    async def atry_acquire(self, key: Hashable = "", cost: float = 1.0) -> Decision:
        """``try_acquire`` for asyncio (in memory it never waits; with a store, decisions made
        while a round trip is in flight share the next one)."""
        return self.try_acquire(key, cost)

    async def aallow(self, key: Hashable = "", cost: float = 1.0) -> bool:
        """``allow`` for asyncio."""
        return self.allow(key, cost)

    async def apeek(self, key: Hashable = "", cost: float = 1.0) -> Decision:
        """``peek`` for asyncio."""
        return self.peek(key, cost)

    def close(self) -> None:
        """Release what the limiter holds (nothing in memory; connections and leases with a
        store). Idempotent."""

    async def aclose(self) -> None:
        """``close`` for asyncio (with a store: also this event loop's connection)."""

    def peek(self, key: Hashable = "", cost: float = 1.0) -> Decision:
        """What ``try_acquire(key, cost)`` would answer now, without taking anything."""
        if not cost > 0:
            raise _bad_cost(cost)
        now = self._monotonic()
        with self._lock:
            queue = self._queues.get(key)
            state = self._states.get(key)
            if queue:
                return self._behind(queue, state, now, cost)
            return self.algorithm.peek(state, now, cost)

    def _behind(self, queue: deque[Waiter], state: Any, now: float, cost: float) -> Decision:
        """Refuse a newcomer while callers wait on its key: they go first.

        ``retry_after`` is when this request would fit once the waiters ahead have taken
        their turns at their earliest (a forecast: later waiters may join ahead of a retry)."""
        algorithm = self.algorithm
        own = algorithm.peek(state, now, cost)
        if own.exceeds_capacity:
            return own
        if isinstance(state, LogState):
            state = state.copy()
        at = now
        for waiter in queue:
            new, decision = algorithm.decide(state, at, waiter.cost)
            if not decision[0]:
                at += decision[2]
                new, decision = algorithm.decide(state, at, waiter.cost)
            state = new
        retry = at - now + algorithm.peek(state, at, cost)[2]
        return _new(Decision, (False, 0, retry, own[3], own[4]))

    # -- bookkeeping -------------------------------------------------------------------------

    def _report(self, now: float, key: Hashable, cost: float, retry_after: float | None) -> None:
        """Emit one ``RateLimited`` event for this refusal and those since the last event."""
        refused, self._unreported = self._unreported + 1, 0
        self._report_at = now + REPORT_INTERVAL
        if events.wants(events.RateLimited):
            if retry_after is None:  # from allow(), which builds no decision
                retry_after = self.peek(key, cost).retry_after
            events.emit(
                events.RateLimited(
                    source=self.name,
                    time=self._clock.time(),
                    refused=refused,
                    retry_after=retry_after,
                )
            )

    def snapshot(self) -> RateLimiterSnapshot:
        """Keys held, callers waiting, and how many requests were allowed and refused."""
        with self._lock:
            return RateLimiterSnapshot(
                self.name,
                self.algorithm.describe(),
                len(self._states),
                sum(len(q) for q in self._queues.values()),
                self.allowed,
                self.refused,
            )

    def reset(self, key: Hashable | None = None) -> None:
        """Forget the state of ``key`` (or of every key): its quota is whole again."""
        with self._lock:
            if key is None:
                self._states.clear()
            else:
                self._states.pop(key, None)

    # -- the policy --------------------------------------------------------------------------

    def call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Run ``fn`` if a unit is free (waiting up to ``max_wait``), else raise."""
        if self._max_wait:
            self.acquire("", 1, self._max_wait)
        elif not self.allow():
            raise _new_error(RateLimitedError, self.name, self._retry_hint())
        return fn(*args, **kwargs)

    async def acall(self, fn: Callable[P, Awaitable[T]], /, *args: P.args, **kwargs: P.kwargs) -> T:
        """Await ``fn`` if a unit is free (waiting up to ``max_wait``), else raise."""
        if self._max_wait:
            await self.aacquire("", 1, self._max_wait)
        elif not self.allow():
            raise _new_error(RateLimitedError, self.name, self._retry_hint())
        return await fn(*args, **kwargs)

    def _retry_hint(self) -> float:
        return self.peek().retry_after

    def __repr__(self) -> str:
        return f"RateLimiter({self.name!r}, {self.algorithm!r})"
