"""``TieredCache``: a cache in a shared store (Redis) that falls back to process memory while
the store is down, and goes back to it when it returns.

While the store answers, reads and writes go to it, and a bounded copy is kept in memory
(``max_local`` entries, least recently used dropped; a copy read from the store lives
``local_ttl`` seconds). When the store fails (``StoreError`` or ``OSError``), the cache serves
and takes writes in memory, and tries the store again ``retry_after`` seconds later. On its
return the writes and deletes made meanwhile are written back first (last writer wins), then
the store is used again. Every operation served from memory counts in ``used`` and emits a
``FallbackUsed``; going down and coming back are logged at WARNING.
"""

from __future__ import annotations

import logging
import threading
from collections import OrderedDict
from collections.abc import Iterator
from typing import TYPE_CHECKING, ClassVar, Final, Generic, TypeVar

from buttress import _options as opt
from buttress._clock import SYSTEM_CLOCK, Clock
from buttress.errors import ConfigError, StoreError
from buttress.events import FallbackUsed, emit, wants
from buttress.fallback import FallbackSnapshot
from buttress.stores import AsyncKeyValueStore, KeyValueStore

if TYPE_CHECKING:
    from buttress.stores import Value

__all__ = ["AsyncTieredCache", "TieredCache"]

logger = logging.getLogger("buttress")

DOWN: Final = (StoreError, OSError)
"""The errors that mean the shared store is down."""
_DELETED: Final = None
S = TypeVar("S")  # the store: a KeyValueStore or an AsyncKeyValueStore


def _as_bytes(value: Value) -> bytes:
    if isinstance(value, bytes):
        return value
    if isinstance(value, str):
        return value.encode()
    raise TypeError(f"cache values are bytes or str, got {type(value).__name__}")


class _Tiers:
    """The state both flavours share: the memory copy, the writes made while down, and whether
    the store is down. No I/O; ``now`` is monotonic seconds."""

    def __init__(
        self, name: str, max_local: int, local_ttl: float, retry_after: float, clock: Clock
    ) -> None:
        self.name = name
        self.max_local = max_local
        self.local_ttl = local_ttl
        self.retry_after = retry_after
        self.clock = clock
        self.lock = threading.Lock()
        self.local: OrderedDict[str, tuple[bytes, float | None]] = OrderedDict()
        self.dirty: dict[str, tuple[bytes, float | None] | None] = {}
        self.down_since: float | None = None
        self.retry_at = 0.0
        self.used = 0
        self.failovers = 0
        self.recoveries = 0

    def use_store(self, now: float) -> bool | None:
        """Whether to use the store now: True while it is up, False while it is down, None once
        it has been down long enough to try again (the backlog is written back first)."""
        if self.down_since is None:
            return True
        return None if now >= self.retry_at else False

    def remember(self, key: str, value: bytes | None, expires: float | None) -> None:
        with self.lock:
            if value is None:
                self.local.pop(key, None)
                return
            self.local[key] = (value, expires)
            self.local.move_to_end(key)
            while len(self.local) > self.max_local:
                self.local.popitem(last=False)

    def recall(self, key: str, now: float) -> bytes | None:
        with self.lock:
            entry = self.local.get(key)
            if entry is None:
                return None
            if entry[1] is not None and now >= entry[1]:
                del self.local[key]
                return None
            self.local.move_to_end(key)
            return entry[0]

    def expiry(self, now: float, ttl: opt.Duration | None) -> float | None:
        return None if ttl is None else now + opt.duration("ttl", ttl)

    def failed(self, exc: BaseException, now: float) -> None:
        """The store failed: serve from memory until ``retry_after`` has passed."""
        if self.down_since is None:
            self.down_since = now
            self.failovers += 1
            logger.warning("cache %r: store down, serving from memory: %s", self.name, exc)
        self.retry_at = now + self.retry_after

    def served_locally(self, error: BaseException | None, now: float) -> None:
        """Count an operation memory serves; ``error``: the store's, if it failed just now."""
        if error is not None:
            self.failed(error, now)
        self.used += 1
        if wants(FallbackUsed):
            emit(FallbackUsed(self.name, self.clock.time(), error))

    def read_locally(self, key: str, now: float, error: BaseException | None) -> bytes | None:
        """``get`` served from memory."""
        self.served_locally(error, now)
        return self.recall(key, now)

    def write_locally(
        self,
        key: str,
        entry: tuple[bytes, float | None] | None,
        now: float,
        error: BaseException | None,
    ) -> None:
        """``set`` (``entry``) or ``delete`` (None) served from memory, kept for writing back."""
        self.served_locally(error, now)
        self.remember(key, None if entry is None else entry[0], None if entry is None else entry[1])
        with self.lock:
            self.dirty[key] = entry

    def write_back(self, now: float) -> Iterator[tuple[str, bytes | None, float | None]]:
        """The writes made while down that the store still needs, as ``(key, value, ttl)``
        (``value`` None: delete). Resuming the iterator means the last write succeeded."""
        with self.lock:
            backlog = list(self.dirty.items())
        for key, entry in backlog:
            if entry is _DELETED:
                yield key, None, None
            elif entry[1] is None or entry[1] > now:
                yield key, entry[0], None if entry[1] is None else entry[1] - now
            with self.lock:
                if self.dirty.get(key, self) is entry:  # not written again meanwhile
                    del self.dirty[key]

    def recovered(self) -> None:
        if self.down_since is not None:
            self.down_since = None
            self.recoveries += 1
            logger.warning("cache %r: store back, memory writes written back", self.name)


class _Base(Generic[S]):
    registry_kind: ClassVar[str] = "fallback"

    def __init__(
        self,
        store: S,
        *,
        max_local: int = 10_000,
        local_ttl: opt.Duration = 300.0,
        retry_after: opt.Duration = 5.0,
        name: str = "tiered-cache",
        clock: Clock | None = None,
    ) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "must be a non-empty string")
        self.name = name
        self._tiers = _Tiers(
            name,
            opt.integer("max_local", max_local),
            opt.duration("local_ttl", local_ttl),
            opt.duration("retry_after", retry_after),
            SYSTEM_CLOCK if clock is None else clock,
        )
        self.store = store

    @property
    def degraded(self) -> bool:
        """Whether the store is down and memory serves."""
        return self._tiers.down_since is not None

    @property
    def used(self) -> int:
        """Operations served from memory because the store was down."""
        return self._tiers.used

    def snapshot(self) -> FallbackSnapshot:
        """How many operations memory served instead of the store."""
        return FallbackSnapshot(self.name, self._tiers.used)

    def describe(self) -> dict[str, object]:
        """The cache's type, name and state as plain data."""
        tiers = self._tiers
        return {
            "policy": type(self).__name__,
            "name": self.name,
            "options": {"max_local": tiers.max_local, "retry_after": tiers.retry_after},
            "degraded": self.degraded,
            "pending_writes": len(tiers.dirty),
        }


class TieredCache(_Base[KeyValueStore]):
    """``TieredCache(store, *, max_local=10000, local_ttl=300.0, retry_after=5.0,
    name="tiered-cache", clock=None)`` over a ``KeyValueStore`` (a ``RedisStore``):
    ``get``, ``set`` and ``delete`` of bytes (or str) values."""

    def _up(self, now: float) -> bool:
        """Whether the store can be used now (writing back the backlog after an outage)."""
        tiers = self._tiers
        use = tiers.use_store(now)
        if use is not None:
            return use
        try:
            for key, value, ttl in tiers.write_back(now):
                if value is None:
                    self.store.delete(key)
                else:
                    self.store.set(key, value, ttl=ttl)
        except DOWN as exc:
            tiers.failed(exc, now)
            return False
        tiers.recovered()
        return True

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None."""
        tiers = self._tiers
        now = tiers.clock.monotonic()
        error: BaseException | None = None
        if self._up(now):
            try:
                value = self.store.get(key)
            except DOWN as exc:
                error = exc
            else:
                tiers.remember(key, value, now + tiers.local_ttl)
                return value
        return tiers.read_locally(key, now, error)

    def set(self, key: str, value: Value, ttl: opt.Duration | None = None) -> None:
        """Set ``key`` to ``value``, expiring after ``ttl`` seconds (None: never)."""
        tiers = self._tiers
        now = tiers.clock.monotonic()
        data, expires = _as_bytes(value), tiers.expiry(now, ttl)
        error: BaseException | None = None
        if self._up(now):
            try:
                self.store.set(key, data, ttl=ttl)
            except DOWN as exc:
                error = exc
            else:
                tiers.remember(key, data, expires)
                return
        tiers.write_locally(key, (data, expires), now, error)

    def delete(self, key: str) -> None:
        """Delete ``key`` (nothing happens if it is absent)."""
        tiers = self._tiers
        now = tiers.clock.monotonic()
        error: BaseException | None = None
        if self._up(now):
            try:
                self.store.delete(key)
            except DOWN as exc:
                error = exc
            else:
                tiers.remember(key, None, None)
                return
        tiers.write_locally(key, _DELETED, now, error)


class AsyncTieredCache(_Base[AsyncKeyValueStore]):
    """``TieredCache`` over an ``AsyncKeyValueStore`` (an ``AsyncRedisStore``): awaitable
    ``get``, ``set`` and ``delete``."""

    async def _up(self, now: float) -> bool:
        tiers = self._tiers
        use = tiers.use_store(now)
        if use is not None:
            return use
        try:
            for key, value, ttl in tiers.write_back(now):
                if value is None:
                    await self.store.delete(key)
                else:
                    await self.store.set(key, value, ttl=ttl)
        except DOWN as exc:
            tiers.failed(exc, now)
            return False
        tiers.recovered()
        return True

    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None."""
        tiers = self._tiers
        now = tiers.clock.monotonic()
        error: BaseException | None = None
        if await self._up(now):
            try:
                value = await self.store.get(key)
            except DOWN as exc:
                error = exc
            else:
                tiers.remember(key, value, now + tiers.local_ttl)
                return value
        return tiers.read_locally(key, now, error)

    async def set(self, key: str, value: Value, ttl: opt.Duration | None = None) -> None:
        """Set ``key`` to ``value``, expiring after ``ttl`` seconds (None: never)."""
        tiers = self._tiers
        now = tiers.clock.monotonic()
        data, expires = _as_bytes(value), tiers.expiry(now, ttl)
        error: BaseException | None = None
        if await self._up(now):
            try:
                await self.store.set(key, data, ttl=ttl)
            except DOWN as exc:
                error = exc
            else:
                tiers.remember(key, data, expires)
                return
        tiers.write_locally(key, (data, expires), now, error)

    async def delete(self, key: str) -> None:
        """Delete ``key`` (nothing happens if it is absent)."""
        tiers = self._tiers
        now = tiers.clock.monotonic()
        error: BaseException | None = None
        if await self._up(now):
            try:
                await self.store.delete(key)
            except DOWN as exc:
                error = exc
            else:
                tiers.remember(key, None, None)
                return
        tiers.write_locally(key, _DELETED, now, error)
