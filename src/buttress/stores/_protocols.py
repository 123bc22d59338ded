"""The capabilities a store offers, each a small protocol in a sync and an async flavour.

Code that needs state asks for the smallest capability it uses: a leader lock needs a
``KeyValueStore`` (``set_if_absent`` to take it, ``compare_and_set`` to renew and release it),
a shared budget needs a ``CounterStore``. ``Store`` is everything a backend built by
``store_from_url`` offers. ``ScriptStore`` is the Redis-only capability to run the Lua scripts
of the fleet and rate-limit work atomically; check for it with ``isinstance``.

Semantics shared by every backend (the contract suite in ``tests/stores`` checks them):

- values are bytes (a str is stored UTF-8 encoded); absent and expired keys read as None;
- ``ttl`` is seconds (float or timedelta, > 0); None means no expiry; expiry is exact to the
  millisecond on Redis and to the clock's resolution elsewhere;
- counters share the key space with values, stored as decimal integers; a value that is not
  an integer makes ``incr``/``get_counter`` raise ``StoreError``, as does signed 64-bit overflow;
- every driver failure is a ``buttress.errors.StoreError`` naming the operation and the URL with
  its password masked; an operation on a closed store raises ``StoreError`` too.
"""

from __future__ import annotations

from collections.abc import Sequence
from types import TracebackType
from typing import Any, Protocol, Self, runtime_checkable

from buttress._options import Duration
from buttress.stores._common import KeyLayout, Value
from buttress.stores._scripts import Script

__all__ = [
    "AsyncCounterStore",
    "AsyncKeyValueStore",
    "AsyncScriptStore",
    "AsyncStore",
    "CounterStore",
    "KeyValueStore",
    "ScriptStore",
    "Store",
]


@runtime_checkable
class KeyValueStore(Protocol):
    """Bytes under string keys, with expiry and atomic compare-and-set."""

    def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when it is absent or expired."""

    def set(self, key: str, value: Value, ttl: Duration | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds (None: never, and clears any ttl)."""

    def set_if_absent(self, key: str, value: Value, ttl: Duration | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent (``SET NX``); True if it was stored."""

    def compare_and_set(
        self, key: str, expected: Value | None, new: Value | None, ttl: Duration | None = None
    ) -> bool:
        """Atomically replace the value if it equals ``expected`` (None: if absent).

        ``new`` None deletes the key. The new value expires after ``ttl`` (None: never).
        Returns whether the swap happened.
        """

    def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was there (and not expired)."""

    def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires: None if absent, ``math.inf`` if it never expires."""


@runtime_checkable
class CounterStore(Protocol):
    """Integer counters that can expire (time buckets, budgets, fencing tokens)."""

    def incr(self, key: str, amount: int = 1, ttl: Duration | None = None) -> int:
        """Add ``amount`` (may be negative) and return the new value; absent counts as 0.

        ``ttl`` is applied only when the counter has no expiry yet (a new counter), so a
        fixed window started by the first increment is not pushed back by later ones.
        """

    def get_counter(self, key: str) -> int:
        """The counter's value; 0 when absent or expired."""


@runtime_checkable
class Store(KeyValueStore, CounterStore, Protocol):
    """A sync store with every capability above; close it, or use it as a context manager.

    ``url`` is where it points, password masked (safe for logs, snapshots and health output);
    ``layout`` is how its logical keys map to backend keys.
    """

    layout: KeyLayout

    @property
    def url(self) -> str:
        """The store's URL with its password masked."""

    def close(self) -> None:
        """Release connections; idempotent. Later operations raise ``StoreError``."""

    def __enter__(self) -> Self: ...

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class AsyncKeyValueStore(Protocol):
    """The asyncio flavour of ``KeyValueStore``: same methods, same semantics, awaited."""

    async def get(self, key: str) -> bytes | None:
        """The value of ``key``, or None when it is absent or expired."""

    async def set(self, key: str, value: Value, ttl: Duration | None = None) -> None:
        """Store ``value``; it expires after ``ttl`` seconds (None: never)."""

    async def set_if_absent(self, key: str, value: Value, ttl: Duration | None = None) -> bool:
        """Store ``value`` only if ``key`` is absent; True if it was stored."""

    async def compare_and_set(
        self, key: str, expected: Value | None, new: Value | None, ttl: Duration | None = None
    ) -> bool:
        """Replace the value if it equals ``expected`` (None: absent); ``new`` None deletes."""

    async def delete(self, key: str) -> bool:
        """Remove ``key``; True if it was there."""

    async def ttl(self, key: str) -> float | None:
        """Seconds until ``key`` expires: None if absent, ``math.inf`` if it never expires."""


@runtime_checkable
class AsyncCounterStore(Protocol):
    """The asyncio flavour of ``CounterStore``."""

    async def incr(self, key: str, amount: int = 1, ttl: Duration | None = None) -> int:
        """Add ``amount`` and return the new value; ``ttl`` applies to a counter without expiry."""

    async def get_counter(self, key: str) -> int:
        """The counter's value; 0 when absent or expired."""


@runtime_checkable
class AsyncStore(AsyncKeyValueStore, AsyncCounterStore, Protocol):
    """An asyncio store with every capability; ``aclose()`` it or use ``async with``.

    ``url`` (password masked) and ``layout`` as in ``Store``.
    """

    layout: KeyLayout

    @property
    def url(self) -> str:
        """The store's URL with its password masked."""

    async def aclose(self) -> None:
        """Release connections; idempotent. Later operations raise ``StoreError``."""

    async def __aenter__(self) -> Self: ...

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None: ...


@runtime_checkable
class ScriptStore(Protocol):
    """Runs a shipped Lua script atomically on the server (Redis backends only).

    ``layout`` builds the script's keys: pass ``layout.key(name, part, ...)`` so that every key
    of one call shares the hash tag of ``name`` (Redis Cluster runs a script on one slot).
    """

    layout: KeyLayout

    def run_script(self, script: Script, keys: Sequence[str], args: Sequence[Any] = ()) -> Any:
        """Run ``script`` with ``keys`` (full keys from ``layout``) and ``args``; the raw reply."""


@runtime_checkable
class AsyncScriptStore(Protocol):
    """The asyncio flavour of ``ScriptStore``."""

    layout: KeyLayout

    async def run_script(
        self, script: Script, keys: Sequence[str], args: Sequence[Any] = ()
    ) -> Any:
        """Run ``script`` with ``keys`` and ``args``; the raw reply."""
