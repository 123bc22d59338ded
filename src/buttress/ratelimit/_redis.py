"""``RedisRateLimiter``: what ``RateLimiter(algorithm, name=..., store=redis_store)`` builds.

Every decision is one atomic call of the algorithm's Lua script (``_lua/``) on the server's
clock; ``_redis_core.py`` says what is sent and what comes back, ``_redis_io.py`` sends it
(asyncio decisions made while a round trip is in flight share the next one). Keys are
``<prefix>{ratelimit:<name>:<key>}:<algorithm>``: the hash tag holds the limiter and the key,
so every Redis key of one decision is in one Redis Cluster slot, and changing a limiter's
algorithm starts from fresh state. Each key expires (``PEXPIRE``) when its state returns to
whole, so idle keys cost nothing.

With ``lease=`` hot keys are served from blocks taken in advance (``_lease.py``).

When Redis fails, the limiter decides alone on its in-memory table (the same algorithm, per
process) for ``STORE_RETRY`` seconds before trying Redis again, emits ``FleetStoreDegraded``
(and ``FleetStoreRestored`` on the way back) and reports ``degraded=True`` in ``snapshot()``:
like a shared circuit breaker, it never fails calls because the coordination store is down.
"""

from __future__ import annotations

import asyncio
import math
import weakref
from collections.abc import Callable, Hashable
from typing import Any, ClassVar, ParamSpec, TypeVar

from buttress._clock import Clock
from buttress.errors import ConfigError, StoreError
from buttress.fleet._events import FleetStoreDegraded, FleetStoreRestored, announce
from buttress.ratelimit._algorithm import Algorithm
from buttress.ratelimit._decision import Decision
from buttress.ratelimit._lease import LeaseBook
from buttress.ratelimit._limiter import (
    RateLimiter,
    RateLimiterSnapshot,
    SharedRateLimiterOptions,
)
from buttress.ratelimit._redis_core import (
    cost_arg,
    decision,
    endpoint,
    key_pattern,
    key_text,
    lease_fraction,
    plan_for,
)
from buttress.ratelimit._redis_io import AsyncChannel, Job, SyncChannel, evalsha
from buttress.ratelimit._redis_lease import LeasedDecisions
from buttress.ratelimit._table import bad_cost
from buttress.stores._common import mask_url, store_error

__all__ = ["STORE_RETRY", "RedisRateLimiter", "server_time_override"]

P = ParamSpec("P")
T = TypeVar("T")

STORE_RETRY = 1.0
"""Seconds a limiter whose store failed decides locally before it tries the store again."""
_KEY_CACHE = 4096
_WIDTH = 4
_new = tuple.__new__
_new_error = BaseException.__new__


class RedisRateLimiter(LeasedDecisions):
    """A ``RateLimiter`` whose state lives in Redis, shared by every process that uses the same
    name, store and key (see the module docstring). Built by ``RateLimiter(..., store=...)``.

    ``close()`` (or ``await aclose()``, in each event loop that used it) gives leased units
    back and closes its connections; it never closes the store it was given.
    """

    __slots__ = (
        "_achannels",
        "_book",
        "_channel",
        "_degraded",
        "_error",
        "_heads",
        "_keyset",
        "_layout",
        "_limit",
        "_local_until",
        "_plan",
        "_server_now",
        "_timeout",
        "_url",
    )

    registry_kind: ClassVar[str] = "limiter"

    def __init__(
        self,
        algorithm: Algorithm,
        *,
        name: str,
        max_wait: float = 0.0,
        store: object = None,
        lease: bool | float = False,
        clock: Clock | None = None,
    ) -> None:
        super().__init__(algorithm, name=name, max_wait=max_wait, clock=clock)
        fraction = lease_fraction(lease)
        self._url, self._timeout, self._layout = endpoint(store)
        self._plan = plan_for(algorithm)
        self._limit = algorithm.limit
        self.options = SharedRateLimiterOptions(
            algorithm, self._max_wait, store=mask_url(self._url), lease=fraction
        )
        self._book = LeaseBook(algorithm.limit, fraction, algorithm.period) if fraction else None
        self._keyset: dict[Hashable, tuple[str, ...]] = {}
        self._heads: dict[str, tuple[str, ...]] = {}
        self._channel: SyncChannel | None = None
        self._achannels: weakref.WeakKeyDictionary[asyncio.AbstractEventLoop, AsyncChannel]
        self._achannels = weakref.WeakKeyDictionary()
        self._degraded = False
        self._error: str | None = None
        self._local_until = -math.inf
        self._server_now: Callable[[], int] | None = None

    # -- what a decision sends -------------------------------------------------------------------

    def _keys(self, key: Hashable) -> tuple[str, ...]:
        keys = self._keyset.get(key)
        if keys is None:
            if len(self._keyset) >= _KEY_CACHE:
                self._keyset.clear()
            keys = self._keyset[key] = self._plan.keys(self._layout, key_text(self.name, key))
        return keys

    def _head(self, op: str) -> tuple[str, ...]:
        if self._server_now is None:
            head = self._heads.get(op)
            if head is None:
                head = self._heads[op] = (op, "", *self._plan.params)
            return head
        return (op, str(self._server_now()), *self._plan.params)

    def _run(self, key: Hashable, op: str, args: tuple[str, ...]) -> Any:
        channel = self._sync()
        script = self._plan.script
        words = evalsha(script, self._keys(key), (*self._head(op), *args))
        reply = channel.run(((script, words),), "rate limit")[0]
        if isinstance(reply, Exception):
            raise store_error("rate limit", self._url, reply)
        return reply

    async def _arun(self, key: Hashable, op: str, args: tuple[str, ...], width: int) -> Any:
        loop = asyncio.get_running_loop()
        channel = self._achannels.get(loop)
        if channel is None:
            channel = self._achannels[loop] = AsyncChannel(self._url, self._timeout)
        future: asyncio.Future[Any] = loop.create_future()
        keys = self._keys(key)
        channel.submit(Job(self._plan.script, keys, self._head(op), args, width, future))
        return await future

    # -- the store failing -------------------------------------------------------------------------

    def _local(self, key: Hashable, cost: float, count: bool) -> Decision:
        """Decide on the in-memory table while the store is unreachable."""
        now = self._monotonic()
        with self._lock:
            state, verdict = self.algorithm.decide(self._states.get(key), now, cost)
            if verdict[0]:
                self._take(key, state, now)
                return verdict
        return self._counted(verdict, key, cost, count)

    def _failed(self, exc: StoreError) -> None:
        self._local_until = self._monotonic() + STORE_RETRY
        self._error = str(exc)
        if not self._degraded:
            self._degraded = True
            announce(
                FleetStoreDegraded(
                    source=self.name,
                    time=self._clock.time(),
                    store=mask_url(self._url),
                    error=str(exc),
                )
            )

    def _restored(self) -> None:
        self._degraded = False
        self._error = None
        announce(
            FleetStoreRestored(source=self.name, time=self._clock.time(), store=mask_url(self._url))
        )

    def _counted(self, verdict: Decision, key: Hashable, cost: float, count: bool) -> Decision:
        if verdict[0]:
            with self._lock:
                self.allowed += 1
            return verdict
        if count:
            with self._lock:
                self.refused += 1
            now = self._monotonic()
            if now >= self._report_at:
                self._report(now, key, cost, verdict[2])
            else:
                self._unreported += 1
        return verdict

    # -- decisions -----------------------------------------------------------------------------

    def _judge(self, key: Hashable, cost: float, count: bool = True) -> Decision:
        now = self._monotonic()
        if now < self._local_until:
            return self._local(key, cost, count)
        try:
            if self._book is not None:
                verdict = self._leased(key, cost, now)
            else:
                verdict = decision(self._run(key, "take", (cost_arg(cost),)), 0, self._limit)
        except StoreError as exc:
            self._failed(exc)
            return self._local(key, cost, count)
        if self._degraded:
            self._restored()
        return self._counted(verdict, key, cost, count)

    async def _ajudge(self, key: Hashable, cost: float, count: bool = True) -> Decision:
        now = self._monotonic()
        if now < self._local_until:
            return self._local(key, cost, count)
        try:
            if self._book is not None:
                verdict = await self._aleased(key, cost, now)
            else:
                reply = await self._arun(key, "take", (cost_arg(cost),), _WIDTH)
                verdict = decision(reply, 0, self._limit)
        except StoreError as exc:
            self._failed(exc)
            return self._local(key, cost, count)
        if self._degraded:
            self._restored()
        return self._counted(verdict, key, cost, count)

    def try_acquire(self, key: Hashable = "", cost: float = 1.0) -> Decision:
        """Take ``cost`` units for ``key`` if they fit now (one Redis round trip, or none from
        a lease), and say how it stands. ``retry_after`` is exact on the server's clock."""
        if not cost > 0:
            raise bad_cost(cost)
        ahead = self._ahead(key) if self._queues else 0.0
        if ahead:
            return self._behind_waiters(self.peek(key, self._forecast_cost(ahead, cost)))
        return self._judge(key, cost)

    async def atry_acquire(self, key: Hashable = "", cost: float = 1.0) -> Decision:
        """``try_acquire`` for asyncio: decisions made while a round trip is in flight share
        the next one."""
        if not cost > 0:
            raise bad_cost(cost)
        ahead = self._ahead(key) if self._queues else 0.0
        if ahead:
            return self._behind_waiters(await self.apeek(key, self._forecast_cost(ahead, cost)))
        return await self._ajudge(key, cost)

    def allow(self, key: Hashable = "", cost: float = 1.0) -> bool:
        """Take ``cost`` units for ``key`` if they fit now; True when admitted."""
        book = self._book
        if book is not None and not self._queues:
            lease = book.leases.get(key)
            if lease is not None and 0 < cost <= lease.tokens:
                now = self._monotonic()
                with self._lock:
                    if cost <= lease.tokens and now < lease.expires:
                        lease.tokens -= cost
                        self.allowed += 1
                        return True
        return self.try_acquire(key, cost)[0]

    async def aallow(self, key: Hashable = "", cost: float = 1.0) -> bool:
        """``allow`` for asyncio."""
        return (await self.atry_acquire(key, cost))[0]

    def peek(self, key: Hashable = "", cost: float = 1.0) -> Decision:
        """What ``try_acquire(key, cost)`` would answer now (from Redis), taking nothing."""
        if not cost > 0:
            raise bad_cost(cost)
        if self._monotonic() >= self._local_until:
            try:
                return decision(self._run(key, "peek", (cost_arg(cost),)), 0, self._limit)
            except StoreError as exc:
                self._failed(exc)
        return self.algorithm.peek(self._states.get(key), self._monotonic(), cost)

    async def apeek(self, key: Hashable = "", cost: float = 1.0) -> Decision:
        """``peek`` for asyncio."""
        if not cost > 0:
            raise bad_cost(cost)
        if self._monotonic() >= self._local_until:
            try:
                reply = await self._arun(key, "peek", (cost_arg(cost),), _WIDTH)
                return decision(reply, 0, self._limit)
            except StoreError as exc:
                self._failed(exc)
        return self.algorithm.peek(self._states.get(key), self._monotonic(), cost)

    # -- state -----------------------------------------------------------------------------------

    def snapshot(self) -> RateLimiterSnapshot:
        """Decisions so far and callers waiting here; ``keys`` counts the keys this process
        holds locally (leases, or state while the store is down): the shared keys are in
        Redis. ``degraded`` is true while the store is unreachable."""
        with self._lock:
            local = len(self._states) + (self._book.held() if self._book is not None else 0)
            return RateLimiterSnapshot(
                self.name,
                self.algorithm.describe(),
                local,
                sum(len(q) for q in self._queues.values()),
                self.allowed,
                self.refused,
                store=mask_url(self._url),
                degraded=self._degraded,
                degraded_reason=self._error,
            )

    def describe(self) -> dict[str, Any]:
        """The policy's type (``RateLimiter``), name and options (the store's URL masked)."""
        return {**super().describe(), "policy": "RateLimiter"}

    def reset(self, key: Hashable | None = None) -> None:
        """Delete the shared state of ``key`` (or of every key of this limiter) in Redis, and
        forget the local state and leases: the quota is whole again for the whole fleet."""
        with self._lock:
            if key is None:
                self._states.clear()
                if self._book is not None:
                    self._book.leases.clear()
            else:
                self._states.pop(key, None)
                if self._book is not None:
                    self._book.leases.pop(key, None)
        channel = self._sync()
        if key is not None:
            channel.delete(self._keys(key), "rate limit reset")
        else:
            channel.delete_matching(key_pattern(self._layout, self.name), "rate limit reset")

    def _sync(self) -> SyncChannel:
        channel = self._channel
        if channel is None:
            channel = self._channel = SyncChannel(self._url, self._timeout)
        return channel

    def close(self) -> None:
        """Give leased units back and close the limiter's connections (not the store)."""
        for key, args in self._leftovers():
            try:
                self._run(key, "lease", args)
            except StoreError:
                break  # the units expire with the key's state
        if self._channel is not None:
            self._channel.close()

    async def aclose(self) -> None:
        """``close()`` for asyncio: also closes this event loop's connection."""
        for key, args in self._leftovers():
            try:
                await self._arun(key, "lease", args, 0)
            except StoreError:
                break
        channel = self._achannels.pop(asyncio.get_running_loop(), None)
        if channel is not None:
            await channel.aclose()
        if self._channel is not None:
            self._channel.close()

    def __repr__(self) -> str:
        return f"RateLimiter({self.name!r}, {self.algorithm!r}, store={mask_url(self._url)!r})"


def server_time_override(limiter: RateLimiter, clock: Clock) -> None:
    """TESTS ONLY: make ``limiter``'s scripts use ``clock.monotonic()`` (in whole microseconds)
    instead of the server's ``TIME``, so that a test can replay exact times against Redis.
    Production code never calls this; docs/ratelimit.md ("Testing against Redis") says why."""
    if not isinstance(limiter, RedisRateLimiter):
        raise ConfigError("limiter", limiter, "must be a RateLimiter with a Redis store")
    limiter._server_now = lambda: round(clock.monotonic() * 1e6)
