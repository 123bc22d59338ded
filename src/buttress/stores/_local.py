"""The semantics of the memory and SQLite backends, written once over a tiny transaction.

A backend supplies a transaction (``read``/``write``/``remove`` of raw rows, possibly expired)
and the current time; ``LocalStore`` implements every operation on top, so both backends agree
by construction and the contract suite only has to catch the Redis scripts disagreeing.
``AsyncLocalStore`` drives the same sync store from asyncio: directly for memory (no I/O),
through ``asyncio.to_thread`` for SQLite (a busy database must not block the event loop).
"""

from __future__ import annotations

import abc
import asyncio
import math
from collections.abc import Callable
from contextlib import AbstractContextManager
from types import TracebackType
from typing import NamedTuple, ParamSpec, Protocol, Self, TypeVar

from buttress._clock import Clock
from buttress._options import Duration
from buttress.stores._common import (
    KeyLayout,
    Value,
    add_counter,
    as_bytes,
    check_amount,
    check_ttl,
    mask_url,
    parse_counter,
)

__all__ = ["AsyncLocalStore", "LocalStore", "Row", "Transaction"]

P = ParamSpec("P")
T = TypeVar("T")


class Row(NamedTuple):
    """A stored value and its deadline on the backend's clock (None: never expires)."""

    value: bytes
    deadline: float | None


class Transaction(Protocol):
    """Raw access inside one atomic step; rows may be expired (the caller checks)."""

    def read(self, key: str) -> Row | None:
        """The row under ``key``, expired or not, or None."""

    def write(self, key: str, row: Row) -> None:
        """Insert or replace the row under ``key``."""

    def remove(self, key: str) -> None:
        """Delete the row under ``key`` if there is one."""


def _live(row: Row | None, now: float) -> Row | None:
    return row if row is not None and (row.deadline is None or row.deadline > now) else None


def _deadline(ttl: float | None, now: float) -> float | None:
    return None if ttl is None else now + ttl


class LocalStore(abc.ABC):
    """The operations of ``Store`` over a backend's ``_transaction`` and ``_now``."""

    layout: KeyLayout

    def __init__(self, url: str, layout: KeyLayout, clock: Clock) -> None:
        self._url = url
        self.layout = layout
        self._clock = clock

    @property
    def url(self) -> str:
        """The store's URL with its password masked."""
        return mask_url(self._url)

    @abc.abstractmethod
    def _transaction(self, operation: str, *, write: bool) -> AbstractContextManager[Transaction]:
        """One atomic step: exclusive for ``write``, a consistent read otherwise."""

    @abc.abstractmethod
    def _now(self) -> float:
        """The current time on the clock deadlines are kept in."""

    @abc.abstractmethod
    def close(self) -> None:
        """Release the backend's resources; idempotent."""

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when it is absent or expired."""
        full = self.layout.key(key)
        with self._transaction("get", write=False) as txn:
            row = _live(txn.read(full), self._now())
        return None if row is None else row.value

    def set(self, key: str, value: Value, ttl: Duration | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds (None: never, and clears any ttl)."""
        full, data, seconds = self.layout.key(key), as_bytes(value), check_ttl(ttl)
        with self._transaction("set", write=True) as txn:
            txn.write(full, Row(data, _deadline(seconds, self._now())))

    def set_if_absent(self, key: str, value: Value, ttl: Duration | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent; True if it was stored."""
        full, data, seconds = self.layout.key(key), as_bytes(value), check_ttl(ttl)
        with self._transaction("set_if_absent", write=True) as txn:
            now = self._now()
            if _live(txn.read(full), now) is not None:
                return False
            txn.write(full, Row(data, _deadline(seconds, now)))
            return True

    def compare_and_set(
        self, key: str, expected: Value | None, new: Value | None, ttl: Duration | None = None
    ) -> bool:
        """Replace the value if it equals ``expected`` (None: absent); ``new`` None deletes."""
        full, seconds = self.layout.key(key), check_ttl(ttl)
        want = None if expected is None else as_bytes(expected, "expected")
        data = None if new is None else as_bytes(new, "new")
        with self._transaction("compare_and_set", write=True) as txn:
            now = self._now()
            row = _live(txn.read(full), now)
            if (None if row is None else row.value) != want:
                return False
            if data is None:
                txn.remove(full)
            else:
                txn.write(full, Row(data, _deadline(seconds, now)))
            return True

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was there (and not expired)."""
        full = self.layout.key(key)
        with self._transaction("delete", write=True) as txn:
            row = txn.read(full)
            if row is None:
                return False
            txn.remove(full)
            return _live(row, self._now()) is not None

    def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires: None if absent, ``math.inf`` if it never expires."""
        full = self.layout.key(key)
        with self._transaction("ttl", write=False) as txn:
            now = self._now()
            row = _live(txn.read(full), now)
        if row is None:
            return None
        return math.inf if row.deadline is None else row.deadline - now

    def incr(self, key: str, amount: int = 1, ttl: Duration | None = None) -> int:
        """Add ``amount`` and return the new value; ``ttl`` applies to a counter without expiry."""
        full, step, seconds = self.layout.key(key), check_amount(amount), check_ttl(ttl)
        with self._transaction("incr", write=True) as txn:
            now = self._now()
            row = _live(txn.read(full), now)
            current = parse_counter(None if row is None else row.value, "incr", self._url)
            result = add_counter(current, step, "incr", self._url)
            kept = None if row is None else row.deadline
            deadline = kept if kept is not None else _deadline(seconds, now)
            txn.write(full, Row(str(result).encode(), deadline))
        return result

    def get_counter(self, key: str) -> int:
        """The counter's value; 0 when absent or expired."""
        return parse_counter(self.get(key), "get_counter", self._url)

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, prefix={self.layout.prefix!r})"


class AsyncLocalStore:
    """The asyncio flavour of a ``LocalStore``: the same object driven from coroutines."""

    layout: KeyLayout

    def __init__(self, store: LocalStore, *, offload: bool) -> None:
        self._store = store
        self._offload = offload
        self.layout = store.layout

    @property
    def url(self) -> str:
        """The store's URL with its password masked."""
        return self._store.url

    async def _call(self, fn: Callable[P, T], /, *args: P.args, **kwargs: P.kwargs) -> T:
        if self._offload:
            return await asyncio.to_thread(fn, *args, **kwargs)
        return fn(*args, **kwargs)

    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when it is absent or expired."""
        return await self._call(self._store.get, key)

    async def set(self, key: str, value: Value, ttl: Duration | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds (None: never)."""
        await self._call(self._store.set, key, value, ttl)

    async def set_if_absent(self, key: str, value: Value, ttl: Duration | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent; True if it was stored."""
        return await self._call(self._store.set_if_absent, key, value, ttl)

    async def compare_and_set(
        self, key: str, expected: Value | None, new: Value | None, ttl: Duration | None = None
    ) -> bool:
        """Replace the value if it equals ``expected`` (None: absent); ``new`` None deletes."""
        return await self._call(self._store.compare_and_set, key, expected, new, ttl)

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was there."""
        return await self._call(self._store.delete, key)

    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires: None if absent, ``math.inf`` if it never expires."""
        return await self._call(self._store.ttl, key)

    async def incr(self, key: str, amount: int = 1, ttl: Duration | None = None) -> int:
        """Add ``amount`` and return the new value; ``ttl`` applies to a counter without expiry."""
        return await self._call(self._store.incr, key, amount, ttl)

    async def get_counter(self, key: str) -> int:
        """The counter's value; 0 when absent or expired."""
        return await self._call(self._store.get_counter, key)

    async def aclose(self) -> None:
        """Release the backend's resources; idempotent."""
        await self._call(self._store.close)

    async def __aenter__(self) -> Self:
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self.aclose()

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.url!r}, prefix={self.layout.prefix!r})"
