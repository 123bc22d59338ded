"""``sqlite:///path``: a store in one SQLite file, safe for several processes on one host.

The file is opened in WAL mode with a ``busy_timeout``; every write is one ``BEGIN IMMEDIATE``
transaction (the write lock is taken before the row is read), so compare-and-set and counters
are atomic across threads and processes. Expiry is kept as wall-clock deadlines (the clock's
``time()``), which every process on the host shares; expired rows read as absent and are
deleted every ``_PURGE_EVERY`` writes or by ``purge_expired()``. The connection opens on first
use, never in the constructor.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._options import Duration, duration
from buttress._wal import use_wal
from buttress.stores._common import DEFAULT_PREFIX, KeyLayout, closed_error, store_error
from buttress.stores._local import AsyncLocalStore, LocalStore, Row

__all__ = ["AsyncSQLiteStore", "SQLiteStore"]

_PURGE_EVERY = 1000
_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS buttress_kv ("
    " key TEXT PRIMARY KEY NOT NULL, value BLOB NOT NULL, expires_at REAL) WITHOUT ROWID",
    "CREATE INDEX IF NOT EXISTS buttress_kv_expires ON buttress_kv (expires_at)"
    " WHERE expires_at IS NOT NULL",
)


class _Rows:
    """Row access on one connection, inside the caller's transaction."""

    __slots__ = ("conn",)

    def __init__(self, conn: sqlite3.Connection) -> None:
        self.conn = conn

    def read(self, key: str) -> Row | None:
        found = self.conn.execute(
            "SELECT value, expires_at FROM buttress_kv WHERE key = ?", (key,)
        ).fetchone()
        return None if found is None else Row(bytes(found[0]), found[1])

    def write(self, key: str, row: Row) -> None:
        self.conn.execute(
            "INSERT OR REPLACE INTO buttress_kv (key, value, expires_at) VALUES (?, ?, ?)",
            (key, row.value, row.deadline),
        )

    def remove(self, key: str) -> None:
        self.conn.execute("DELETE FROM buttress_kv WHERE key = ?", (key,))

    def purge(self, now: float) -> int:
        return self.conn.execute("DELETE FROM buttress_kv WHERE expires_at <= ?", (now,)).rowcount


class SQLiteStore(LocalStore):
    """A ``Store`` in the SQLite file at ``path`` (``":memory:"`` for a private database).

    ``SQLiteStore(path, *, prefix="buttress:", clock=None, busy_timeout=5.0)``: ``clock``
    (default ``SystemClock()``) gives the wall-clock ``time()`` deadlines are stored in;
    ``busy_timeout`` is how long a write waits for another process's lock before failing with
    ``StoreError``. One connection per store, shared by its threads under a lock.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock | None = None,
        busy_timeout: Duration = 5.0,
    ) -> None:
        self._path = os.fspath(path)
        super().__init__(f"sqlite:///{self._path}", KeyLayout(prefix), clock or SYSTEM_CLOCK)
        self._busy_ms = round(duration("busy_timeout", busy_timeout, allow_zero=True) * 1000)
        self._lock = threading.Lock()
        self._conn: sqlite3.Connection | None = None
        self._closed = False
        self._writes = 0

    def _now(self) -> float:
        return self._clock.time()

    def _connection(self, operation: str) -> sqlite3.Connection:
        if self._closed:
            raise closed_error(operation, self._url)
        if self._conn is None:
            # isolation_level=None: no implicit transactions; writes say BEGIN IMMEDIATE.
            conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
            try:
                conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
                use_wal(conn, self._busy_ms / 1000)
                conn.execute("PRAGMA synchronous = NORMAL")
                for statement in _SCHEMA:
                    conn.execute(statement)
            except BaseException:
                conn.close()
                raise
            self._conn = conn
        return self._conn

    @contextmanager
    def _transaction(self, operation: str, *, write: bool) -> Iterator[_Rows]:
        with self._lock:
            try:
                conn = self._connection(operation)
                rows = _Rows(conn)
                if not write:
                    yield rows
                    return
                conn.execute("BEGIN IMMEDIATE")
                try:
                    yield rows
                    self._writes += 1
                    if self._writes % _PURGE_EVERY == 0:
                        rows.purge(self._now())
                    conn.execute("COMMIT")
                except BaseException:
                    with suppress(sqlite3.Error):
                        conn.rollback()
                    raise
            except sqlite3.Error as exc:
                raise store_error(operation, self._url, exc) from exc

    def purge_expired(self) -> int:
        """Delete the rows whose deadline has passed (every prefix); how many went."""
        with self._transaction("purge_expired", write=True) as rows:
            return rows.purge(self._now())

    def close(self) -> None:
        """Close the connection; later operations raise ``StoreError``. Idempotent."""
        with self._lock:
            self._closed = True
            if self._conn is not None:
                conn, self._conn = self._conn, None
                conn.close()


class AsyncSQLiteStore(AsyncLocalStore):
    """The asyncio flavour of ``SQLiteStore`` (same options); calls run in a worker thread.

    A busy database never blocks the event loop; a call whose task is cancelled still
    finishes (or fails) in its thread, so a cancelled write may have happened.
    """

    def __init__(
        self,
        path: str | os.PathLike[str],
        *,
        prefix: str = DEFAULT_PREFIX,
        clock: Clock | None = None,
        busy_timeout: Duration = 5.0,
    ) -> None:
        self._sqlite = SQLiteStore(path, prefix=prefix, clock=clock, busy_timeout=busy_timeout)
        super().__init__(self._sqlite, offload=True)

    async def purge_expired(self) -> int:
        """Delete the rows whose deadline has passed; how many went."""
        return await self._call(self._sqlite.purge_expired)
