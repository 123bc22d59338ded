"""``sqlite:///path.db``: the embedded dead letter store, durable and shared by processes.

WAL journal, ``synchronous=FULL`` (a commit is on disk when it returns) and a ``busy_timeout``
so that several processes can share the file. Every write goes through one writer thread that
commits in groups (``_writer.GroupCommitter``); reads use a connection of their own, which WAL
lets run beside the writer. ``sqlite:///:memory:`` keeps everything in the writer's connection
(reads go through the writer too) and lasts as long as the backend.
"""

from __future__ import annotations

import builtins
import os
import sqlite3
import threading
from collections.abc import Callable, Sequence
from contextlib import suppress
from typing import Any, TypeVar

from buttress._options import Duration, duration
from buttress._wal import use_wal
from buttress.dlq._backend import Delivery, NewBatch, Outcome
from buttress.dlq._records import (
    DeadLetter,
    Filter,
    Page,
    Stats,
    Status,
    empty_statuses,
    encode_history,
)
from buttress.dlq._sqlite_sql import (
    COLUMNS,
    DUE,
    SCHEMA,
    due_bucket,
    insert_rows,
    letter_of,
    where,
)
from buttress.dlq._writer import GroupCommitter
from buttress.stores._common import store_error

__all__ = ["SQLiteBackend"]

T = TypeVar("T")

_OPEN_SQL = "('pending', 'retrying', 'parked')"
_RESOLVE = (
    "UPDATE buttress_dlq SET status = 'resolved', due_at = NULL, lease = NULL, updated_at = ?"
    " WHERE lease = ? AND status = 'retrying' AND seq IN ({marks}) RETURNING seq"
)
_RESOLVE_NOTED = (
    "UPDATE buttress_dlq SET status = 'resolved', due_at = NULL, lease = NULL, attempts = ?,"
    " updated_at = ?, history = ? WHERE seq = ? AND lease = ? AND status = 'retrying'"
)
_FAIL = (
    "UPDATE buttress_dlq SET status = ?, due_at = ?, lease = NULL, attempts = ?, updated_at = ?,"
    " error_type = ?, error_message = ?, traceback = ?, classification = ?, history = ?,"
    " last_failed_at = ? WHERE seq = ? AND lease = ? AND status = 'retrying'"
)


class SQLiteBackend:
    """Dead letters in the SQLite file at ``path`` (``":memory:"`` for a private database).

    ``SQLiteBackend(path, *, busy_timeout=5.0)``. Nothing opens until the first operation.
    """

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: Duration = 5.0) -> None:
        self._path = os.fspath(path)
        self._busy_ms = round(duration("busy_timeout", busy_timeout, allow_zero=True) * 1000)
        self._memory = self._path == ":memory:" or self._path.startswith("file::memory:")
        self._url = f"sqlite:///{self._path}"
        self._writer = GroupCommitter(self._connect, insert_rows, self._wrap)
        self._read_lock = threading.Lock()
        self._reader: sqlite3.Connection | None = None
        self._reader_pid = os.getpid()
        self._closed = False

    @property
    def url(self) -> str:
        """``sqlite:///<path>``."""
        return self._url

    @property
    def commits(self) -> int:
        """Write transactions committed so far by this backend."""
        return self._writer.rounds

    def _wrap(self, operation: str, exc: BaseException) -> Exception:
        return store_error(f"dlq {operation}", self._url, exc)

    def _connect(self) -> sqlite3.Connection:
        conn = sqlite3.connect(self._path, isolation_level=None, check_same_thread=False)
        try:
            conn.execute(f"PRAGMA busy_timeout = {self._busy_ms}")
            use_wal(conn, self._busy_ms / 1000)
            conn.execute("PRAGMA synchronous = FULL")
            conn.executescript(SCHEMA)
        except BaseException:
            conn.close()
            raise
        return conn

    def _read(self, operation: str, fn: Callable[[sqlite3.Connection], T]) -> T:
        """Run ``fn`` in a read transaction (through the writer for ``:memory:``)."""
        if self._memory:
            return self._writer.run(fn)
        with self._read_lock:
            if self._closed:
                raise self._wrap(operation, sqlite3.ProgrammingError("closed"))
            try:
                if self._reader is None or self._reader_pid != os.getpid():
                    # After a fork the parent's connection is left alone (never closed here).
                    self._reader, self._reader_pid = self._connect(), os.getpid()
                conn = self._reader
                conn.execute("BEGIN")
                try:
                    return fn(conn)
                finally:
                    conn.execute("COMMIT")
            except sqlite3.Error as exc:
                raise self._wrap(operation, exc) from exc

    # -- adding --------------------------------------------------------------------------------

    def insert(self, batch: NewBatch) -> builtins.list[str]:
        """Store the batch (shared with concurrent inserts in one commit); its ids."""
        result: builtins.list[str] = self._writer.insert(batch)
        return result

    async def ainsert(self, batch: NewBatch) -> builtins.list[str]:
        """``insert`` for asyncio callers: the loop is never blocked."""
        result: builtins.list[str] = await self._writer.ainsert(batch)
        return result

    # -- reading -------------------------------------------------------------------------------

    def get(self, id: str) -> DeadLetter | None:
        """The record ``id``, or None."""
        if not (id.isascii() and id.isdigit()):
            return None

        def read(conn: sqlite3.Connection) -> DeadLetter | None:
            row = conn.execute(
                f"SELECT {COLUMNS} FROM buttress_dlq WHERE seq = ?", (int(id),)
            ).fetchone()
            return None if row is None else letter_of(row).letter

        return self._read("get", read)

    def list(self, filter: Filter, limit: int, cursor: str | None) -> Page:
        """Matching records, newest first."""
        condition, params = where(filter)
        if cursor is not None:
            condition += " AND seq < ?"
            params.append(int(cursor))
        sql = f"SELECT {COLUMNS} FROM buttress_dlq WHERE {condition} ORDER BY seq DESC LIMIT ?"

        def read(conn: sqlite3.Connection) -> Page:
            rows = conn.execute(sql, (*params, limit + 1)).fetchall()
            items = tuple(letter_of(row).letter for row in rows[:limit])
            more = len(rows) > limit
            return Page(items, items[-1].id if more and items else None)

        return self._read("list", read)

    def stats(self, now: float, window: float) -> Stats:
        """Counts, the oldest pending record and the arrival rate."""

        def read(conn: sqlite3.Connection) -> Stats:
            by_status = empty_statuses()
            by_queue: dict[str, dict[str, int]] = {}
            for queue, status, count in conn.execute(
                "SELECT queue, status, COUNT(*) FROM buttress_dlq GROUP BY queue, status"
            ):
                by_status[status] = by_status.get(status, 0) + count
                by_queue.setdefault(queue, empty_statuses())[status] = count
            kinds = dict(
                conn.execute(
                    "SELECT classification, COUNT(*) FROM buttress_dlq"
                    f" WHERE status IN {_OPEN_SQL} GROUP BY classification"
                ).fetchall()
            )
            types = dict(
                conn.execute(
                    "SELECT error_type, COUNT(*) FROM buttress_dlq"
                    f" WHERE status IN {_OPEN_SQL} GROUP BY error_type"
                ).fetchall()
            )
            (oldest,) = conn.execute(
                "SELECT MIN(first_failed_at) FROM buttress_dlq"
                " WHERE status IN ('pending', 'retrying')"
            ).fetchone()
            (arrived,) = conn.execute(
                "SELECT COUNT(*) FROM buttress_dlq WHERE first_failed_at > ?", (now - window,)
            ).fetchone()
            return Stats(
                time=now,
                total=sum(by_status.values()),
                by_status=by_status,
                by_queue=by_queue,
                by_classification=kinds,
                by_error_type=types,
                oldest_pending_at=oldest,
                arrival_rate=arrived / window,
                rate_window=window,
            )

        return self._read("stats", read)

    # -- the worker's side ---------------------------------------------------------------------

    def lease(
        self, queues: Sequence[str], now: float, limit: int, lease_until: float, token: str
    ) -> builtins.list[Delivery]:
        """Take up to ``limit`` due records of ``queues`` under ``token``."""
        if not queues:
            return []
        return self._writer.run(lambda conn: _take(conn, queues, now, limit, lease_until, token))

    def complete(self, outcomes: Sequence[Outcome], token: str, now: float) -> builtins.list[bool]:
        """Apply the outcomes still leased under ``token``."""
        return self._writer.run(lambda conn: _apply(conn, outcomes, token, now))

    def complete_and_lease(
        self,
        outcomes: Sequence[Outcome],
        token: str,
        now: float,
        queues: Sequence[str],
        limit: int,
        lease_until: float,
        next_token: str,
    ) -> tuple[builtins.list[bool], builtins.list[Delivery]]:
        """``complete`` then ``lease`` in one transaction (one fsync per batch, not two)."""

        def both(conn: sqlite3.Connection) -> tuple[builtins.list[bool], builtins.list[Delivery]]:
            applied = _apply(conn, outcomes, token, now)
            taken = _take(conn, queues, now, limit, lease_until, next_token) if queues else []
            return applied, taken

        return self._writer.run(both)

    # -- manual intervention -------------------------------------------------------------------

    def _update(self, sql: str, params: Sequence[Any]) -> int:
        def run(conn: sqlite3.Connection) -> int:
            return int(conn.execute(sql, params).rowcount)

        return self._writer.run(run)

    def requeue(self, filter: Filter, now: float) -> int:
        """Pending and parked matches become due at ``now``."""
        condition, params = where(filter)
        return self._update(
            "UPDATE buttress_dlq SET status = 'pending', due_at = ?, lease = NULL, updated_at = ?"
            f" WHERE {condition} AND status IN ('pending', 'parked')",
            (now, now, *params),
        )

    def edit(self, id: str, payload: str, now: float) -> bool:
        """Replace the payload of a pending or parked record."""
        if not (id.isascii() and id.isdigit()):
            return False
        return (
            self._update(
                "UPDATE buttress_dlq SET payload = ?, updated_at = ?"
                " WHERE seq = ? AND status IN ('pending', 'parked')",
                (payload, now, int(id)),
            )
            == 1
        )

    def discard(self, filter: Filter, reason: str, now: float) -> int:
        """Open matches become discarded."""
        condition, params = where(filter)
        return self._update(
            "UPDATE buttress_dlq SET status = 'discarded', due_at = NULL, lease = NULL,"
            f" note = ?, updated_at = ? WHERE {condition} AND status IN {_OPEN_SQL}",
            (reason, now, *params),
        )

    def delete(self, filter: Filter) -> int:
        """Delete the matches."""
        condition, params = where(filter)
        return self._update(f"DELETE FROM buttress_dlq WHERE {condition}", params)

    def cleanup(self, before: float) -> int:
        """Delete resolved and discarded records last updated before ``before``."""
        return self._update(
            "DELETE FROM buttress_dlq WHERE status IN ('resolved', 'discarded') AND updated_at < ?",
            (before,),
        )

    def close(self) -> None:
        """Finish queued writes, stop the writer and close both connections; idempotent."""
        self._writer.close()
        with self._read_lock:
            self._closed = True
            if self._reader is not None:
                with suppress(sqlite3.Error):
                    self._reader.close()
                self._reader = None

    def __repr__(self) -> str:
        return f"SQLiteBackend({self._path!r})"


def _take(
    conn: sqlite3.Connection,
    queues: Sequence[str],
    now: float,
    limit: int,
    lease_until: float,
    token: str,
) -> list[Delivery]:
    marks = ", ".join("?" * len(queues))
    rows = conn.execute(
        f"SELECT {COLUMNS} FROM buttress_dlq WHERE {DUE} <= ? AND due_at <= ?"
        f" AND queue IN ({marks}) ORDER BY {DUE}, due_at LIMIT ?",
        (due_bucket(now), now, *queues, limit),
    ).fetchall()
    if not rows:
        return []
    seqs = [row[0] for row in rows]
    conn.execute(
        "UPDATE buttress_dlq SET status = 'retrying', attempts = attempts + 1, due_at = ?,"
        f" lease = ?, updated_at = ? WHERE seq IN ({', '.join('?' * len(seqs))})",
        (lease_until, token, now, *seqs),
    )
    return [
        letter_of(
            (*row[:12], lease_until, row[13], row[14] + 1, "retrying", now, token, row[18]),
            lost=row[15] == "retrying",
        )
        for row in rows
    ]


def _apply(
    conn: sqlite3.Connection, outcomes: Sequence[Outcome], token: str, now: float
) -> list[bool]:
    # Plain resolutions (the bulk) go in one statement; RETURNING says which applied.
    plain = [int(o.id) for o in outcomes if o.status is Status.RESOLVED and o.history is None]
    resolved: set[int] = set()
    for start in range(0, len(plain), 500):
        chunk = plain[start : start + 500]
        rows = conn.execute(
            _RESOLVE.format(marks=", ".join("?" * len(chunk))), (now, token, *chunk)
        ).fetchall()
        resolved.update(seq for (seq,) in rows)
    applied = []
    for outcome in outcomes:
        seq = int(outcome.id)
        if outcome.status is not Status.RESOLVED:
            cursor = conn.execute(_FAIL, _fail_params(outcome, now, seq, token))
        elif outcome.history is None:
            applied.append(seq in resolved)
            continue
        else:
            history = encode_history(outcome.history)
            cursor = conn.execute(_RESOLVE_NOTED, (outcome.attempts, now, history, seq, token))
        applied.append(cursor.rowcount == 1)
    return applied


def _fail_params(outcome: Outcome, now: float, seq: int, token: str) -> tuple[Any, ...]:
    """The parameters of ``_FAIL``: a failed attempt carries its error, class and history."""
    error, kind, history = outcome.error, outcome.classification, outcome.history
    if error is None or kind is None or history is None:
        raise ValueError(f"outcome {outcome.id}: a failed attempt needs error, class, history")
    return (
        outcome.status.value,
        outcome.next_attempt_at,
        outcome.attempts,
        now,
        error.type,
        error.message,
        error.traceback,
        kind.value,
        encode_history(history),
        now if outcome.last_failed_at is None else outcome.last_failed_at,
        seq,
        token,
    )
