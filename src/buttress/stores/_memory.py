"""``memory://``: a process-local store, thread-safe, with expiry on an injected clock.

Deadlines are kept on the clock's monotonic time, so ``ManualClock.advance`` expires keys in
tests. Expired keys read as absent at once and are dropped by the next write (a heap of
deadlines), so a keyed workload whose keys go idle holds bounded memory without a timer thread.
"""

from __future__ import annotations

import heapq
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from buttress._clock import SYSTEM_CLOCK, Clock
from buttress.stores._common import DEFAULT_PREFIX, KeyLayout, closed_error
from buttress.stores._local import AsyncLocalStore, LocalStore, Row, Transaction

__all__ = ["AsyncMemoryStore", "MemoryStore"]


class _Rows:
    """The dict of rows and a heap of their deadlines (entries go stale when a key changes)."""

    __slots__ = ("expiry", "rows")

    def __init__(self) -> None:
        self.rows: dict[str, Row] = {}
        self.expiry: list[tuple[float, str]] = []

    def read(self, key: str) -> Row | None:
        return self.rows.get(key)

    def write(self, key: str, row: Row) -> None:
        self.rows[key] = row
        if row.deadline is not None:
            heapq.heappush(self.expiry, (row.deadline, key))

    def remove(self, key: str) -> None:
        self.rows.pop(key, None)

    def sweep(self, now: float) -> None:
        """Drop rows whose deadline passed; rebuild the heap when stale entries dominate it."""
        expiry, rows = self.expiry, self.rows
        while expiry and expiry[0][0] <= now:
            deadline, key = heapq.heappop(expiry)
            row = rows.get(key)
            if row is not None and row.deadline == deadline:
                del rows[key]
        if len(expiry) > 2 * len(rows) + 64:
            self.expiry = [(r.deadline, k) for k, r in rows.items() if r.deadline is not None]
            heapq.heapify(self.expiry)


class MemoryStore(LocalStore):
    """A ``Store`` in this process's memory: ``MemoryStore(*, prefix="buttress:", clock=None)``.

    Thread-safe (one lock); ``clock`` (default ``SystemClock()``) times expiry on its monotonic
    clock. Nothing is shared with other processes; ``close()`` drops every key.
    """

    def __init__(self, *, prefix: str = DEFAULT_PREFIX, clock: Clock | None = None) -> None:
        super().__init__("memory://", KeyLayout(prefix), clock or SYSTEM_CLOCK)
        self._data = _Rows()
        self._lock = threading.Lock()
        self._closed = False

    def _now(self) -> float:
        return self._clock.monotonic()

    @contextmanager
    def _transaction(self, operation: str, *, write: bool) -> Iterator[Transaction]:
        with self._lock:
            if self._closed:
                raise closed_error(operation, self._url)
            yield self._data
            if write:
                self._data.sweep(self._now())

    def __len__(self) -> int:
        """How many rows are held, expired ones not yet swept included."""
        return len(self._data.rows)

    def close(self) -> None:
        """Drop every key; later operations raise ``StoreError``. Idempotent."""
        with self._lock:
            self._closed = True
            self._data = _Rows()


class AsyncMemoryStore(AsyncLocalStore):
    """The asyncio flavour of ``MemoryStore`` (same options); calls run inline, never block."""

    def __init__(self, *, prefix: str = DEFAULT_PREFIX, clock: Clock | None = None) -> None:
        super().__init__(MemoryStore(prefix=prefix, clock=clock), offload=False)
