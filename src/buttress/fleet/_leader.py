"""``LeaderLock`` and ``AsyncLeaderLock``: one holder at a time across a fleet, with renewal and a
fencing token.

The lock is the key ``leader:<name>`` holding the holder's token, set with ``set_if_absent``
and a ttl, so a holder that dies frees it when the ttl runs out. Every successful ``acquire``
first takes a number from the counter ``leader:<name>:fence`` (``incr``); that number is the
``fencing_token``: it only grows, so a resource that remembers the largest token it has seen can
refuse the writes of a holder that lost the lock without noticing (a long pause, a partition).
``renew`` extends the ttl only while the key still holds our token (``compare_and_set``) and
``release`` deletes it the same way, so nobody ever frees or extends another holder's lock.

``is_leader`` is judged locally and conservatively: the lock counts as held until ``ttl`` after
the moment the acquiring (or renewing) request was *sent*, by this process's monotonic clock.
Works on every store: Redis for a fleet, SQLite for the processes of one host, memory for tests.

One core, two shells: the steps of ``acquire``, ``renew`` and ``release`` are generators that
yield store operations (``_Op``) and receive their results; ``LeaderLock`` runs them against a
sync ``Store``, ``AsyncLeaderLock`` awaits them on an ``AsyncStore``.
"""

from __future__ import annotations

import secrets
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, TypeVar

from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._options import Duration, duration
from buttress.errors import ConfigError, StoreError

if TYPE_CHECKING:
    from buttress.stores import AsyncStore, Store

__all__ = ["AsyncLeaderLock", "LeaderLock"]

T = TypeVar("T")
_Op = tuple[str, tuple[Any, ...]]
"""A store method's name and its arguments."""
_Flow = Generator[_Op, Any, T]


class _Lease:
    """The state of a lease and the steps that change it (no I/O: see the module docstring)."""

    __slots__ = ("_clock", "_deadline", "_fence", "_fence_key", "_key", "_token", "name", "ttl")

    def __init__(self, name: str, ttl: Duration, clock: Clock | None) -> None:
        if not isinstance(name, str) or not name:
            raise ConfigError("name", name, "must be a non-empty string")
        self.name = name
        self.ttl = duration("ttl", ttl)
        self._clock: Clock = SYSTEM_CLOCK if clock is None else clock
        self._key = f"leader:{name}"
        self._fence_key = f"leader:{name}:fence"
        self._token: bytes | None = None
        self._fence: int | None = None
        self._deadline = 0.0

    @property
    def is_leader(self) -> bool:
        """Whether we hold the lock (by the local deadline; renew before it passes)."""
        return self._token is not None and self._clock.monotonic() < self._deadline

    @property
    def fencing_token(self) -> int | None:
        """The fencing number of our current tenure (larger than every earlier one), or None."""
        return self._fence if self.is_leader else None

    def _acquire(self) -> _Flow[bool]:
        if self._token is not None and (yield from self._renew()):
            return True
        sent = self._clock.monotonic()
        try:
            fence = int((yield ("incr", (self._fence_key,))))
            token = f"{fence}:{secrets.token_hex(8)}".encode()
            taken = bool((yield ("set_if_absent", (self._key, token, self.ttl))))
        except StoreError:
            return False
        if not taken:
            return False
        self._token, self._fence, self._deadline = token, fence, sent + self.ttl
        return True

    def _renew(self) -> _Flow[bool]:
        token = self._token
        if token is None:
            return False
        sent = self._clock.monotonic()
        try:
            renewed = bool((yield ("compare_and_set", (self._key, token, token, self.ttl))))
        except StoreError:
            return False  # maybe still ours: keep the local deadline, try again later
        if not renewed:
            self._token = self._fence = None
            return False
        self._deadline = sent + self.ttl
        return True

    def _release(self) -> _Flow[None]:
        token, self._token, self._fence = self._token, None, None
        if token is not None:
            try:
                yield ("compare_and_set", (self._key, token, None))
            except StoreError:
                pass  # it expires at the ttl

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r}, ttl={self.ttl:g}, leader={self.is_leader})"


class LeaderLock(_Lease):
    """A lease on leadership: ``acquire()``, then ``renew()`` well within ``ttl``, ``release()``.

    ``LeaderLock(name, store, ttl, *, clock=None)``. ``acquire`` and ``renew`` return whether we
    hold the lock; a store failure reads as "not acquired"/"not renewed" (never raises), and
    leadership then lapses at the local deadline. Also a context manager (acquire or raise
    ``RuntimeError``; release on exit). Not shared between threads without a lock of your own.
    """

    __slots__ = ("store",)

    def __init__(
        self, name: str, store: Store, ttl: Duration, *, clock: Clock | None = None
    ) -> None:
        super().__init__(name, ttl, clock)
        self.store = store

    def _drive(self, flow: _Flow[T]) -> T:
        try:
            op = next(flow)
            while True:
                method, args = op
                try:
                    result = getattr(self.store, method)(*args)
                except StoreError as exc:
                    op = flow.throw(exc)
                else:
                    op = flow.send(result)
        except StopIteration as stop:
            value: T = stop.value
            return value

    def acquire(self) -> bool:
        """Take the lock if it is free (or already ours: then renew it); True if we hold it."""
        return self._drive(self._acquire())

    def renew(self) -> bool:
        """Extend the lock by ``ttl`` if it is still ours; False (and no longer leader) if not."""
        return self._drive(self._renew())

    def release(self) -> None:
        """Give the lock up if it is ours (a store failure only lets it expire)."""
        self._drive(self._release())

    def __enter__(self) -> LeaderLock:
        if not self.acquire():
            raise RuntimeError(f"leader lock {self.name!r} is held elsewhere")
        return self

    def __exit__(self, *exc: object) -> None:
        self.release()


class AsyncLeaderLock(_Lease):
    """``LeaderLock`` on an ``AsyncStore``: the same lease, with ``await acquire()``,
    ``await renew()``, ``await release()`` and ``async with``. Not shared between tasks that
    may run its methods concurrently without a lock of your own."""

    __slots__ = ("store",)

    def __init__(
        self, name: str, store: AsyncStore, ttl: Duration, *, clock: Clock | None = None
    ) -> None:
        super().__init__(name, ttl, clock)
        self.store = store

    async def _drive(self, flow: _Flow[T]) -> T:
        try:
            op = next(flow)
            while True:
                method, args = op
                try:
                    result = await getattr(self.store, method)(*args)
                except StoreError as exc:
                    op = flow.throw(exc)
                else:
                    op = flow.send(result)
        except StopIteration as stop:
            value: T = stop.value
            return value

    async def acquire(self) -> bool:
        """Take the lock if it is free (or already ours: then renew it); True if we hold it."""
        return await self._drive(self._acquire())

    async def renew(self) -> bool:
        """Extend the lock by ``ttl`` if it is still ours; False (and no longer leader) if not."""
        return await self._drive(self._renew())

    async def release(self) -> None:
        """Give the lock up if it is ours (a store failure only lets it expire)."""
        await self._drive(self._release())

    async def __aenter__(self) -> AsyncLeaderLock:
        if not await self.acquire():
            raise RuntimeError(f"leader lock {self.name!r} is held elsewhere")
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.release()
