"""``StateStore``: the embedded SQLite file for what must outlive the process.

One file, ``<state_dir>/buttress.db`` (WAL journal), opened on first use, with the directory
created ``0700`` and the file ``0600``. The store is deliberately small and generic:

- ``register(component, steps)`` (or ``migrate`` to apply at once): each component (the audit
  log, later overrides and scheduler history) owns a list of SQL steps; step *n* runs once, when
  the component's recorded version is below *n*, inside one transaction with the version bump.
  Adding a step never edits an old one.
- ``put``/``get``/``delete``/``items``: JSON values by ``(namespace, key)`` for small state.
- ``execute``/``query``/``transaction`` for components with their own tables.

The connection is shared by threads behind a lock; calls are short. ``close()`` releases the
file; the next use reopens it. ``StateStore(":memory:")`` (or ``StateStore()``) keeps everything
in memory until closed, for tests.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from buttress._wal import use_wal
from buttress.errors import StoreError

__all__ = ["DB_NAME", "MEMORY", "StateStore"]

DB_NAME = "buttress.db"
MEMORY = ":memory:"

Step = str | Callable[[sqlite3.Connection], object]
"""A migration step: SQL (one or more statements) or a function given the connection."""

_CORE = "buttress.state"
_CORE_STEPS: tuple[Step, ...] = (
    """
    CREATE TABLE kv (
        namespace TEXT NOT NULL,
        key TEXT NOT NULL,
        value TEXT NOT NULL,
        updated REAL NOT NULL DEFAULT ((julianday('now') - 2440587.5) * 86400.0),
        PRIMARY KEY (namespace, key)
    ) WITHOUT ROWID;
    """,
)


class StateStore:
    """A small SQLite store: ``StateStore(path=":memory:")`` or ``StateStore.in_directory(dir)``."""

    def __init__(self, path: str | os.PathLike[str] = MEMORY) -> None:
        self.path = MEMORY if str(path) == MEMORY else str(Path(path))
        self._lock = threading.RLock()
        self._conn: sqlite3.Connection | None = None
        self._components: dict[str, tuple[Step, ...]] = {_CORE: _CORE_STEPS}

    @classmethod
    def in_directory(cls, state_dir: str | os.PathLike[str]) -> StateStore:
        """The store ``<state_dir>/buttress.db`` (``":memory:"`` as the directory: in memory)."""
        if str(state_dir) == MEMORY:
            return cls(MEMORY)
        return cls(Path(state_dir) / DB_NAME)

    @property
    def in_memory(self) -> bool:
        """Whether nothing is written to disk."""
        return self.path == MEMORY

    # -- connection --------------------------------------------------------------------------

    def _connect(self) -> sqlite3.Connection:
        conn = self._conn
        if conn is not None:
            return conn
        try:
            if not self.in_memory:
                _prepare_file(Path(self.path))
            conn = sqlite3.connect(self.path, check_same_thread=False, isolation_level=None)
            conn.execute("PRAGMA busy_timeout = 5000")
            if not self.in_memory:
                use_wal(conn, 5.0)
                conn.execute("PRAGMA synchronous = NORMAL")
            conn.execute(
                "CREATE TABLE IF NOT EXISTS schema_versions ("
                "component TEXT PRIMARY KEY, version INTEGER NOT NULL)"
            )
        except (OSError, sqlite3.Error) as exc:
            raise StoreError(f"state store {self.path}: cannot open: {exc}") from exc
        try:
            for component, steps in self._components.items():
                self._migrate(conn, component, steps)
        except BaseException:
            conn.close()
            raise
        self._conn = conn
        return conn

    def close(self) -> None:
        """Close the connection; the next use opens it again (an in-memory store starts empty)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    # -- migrations --------------------------------------------------------------------------

    def register(self, component: str, steps: Sequence[Step]) -> None:
        """Declare ``component``'s migration steps; they are applied when the store is first used
        (at once if it is open), and again on every reopening (which finds them applied)."""
        with self._lock:
            self._components[component] = tuple(steps)
            if self._conn is not None:
                self._migrate(self._conn, component, self._components[component])

    def migrate(self, component: str, steps: Sequence[Step]) -> int:
        """Register ``component``'s steps and apply them now; returns its version."""
        with self._lock:
            previous = self._components.get(component)
            self._components[component] = tuple(steps)
            try:
                return self._migrate(self._connect(), component, self._components[component])
            except BaseException:
                if previous is None:
                    del self._components[component]
                else:
                    self._components[component] = previous
                raise

    def version(self, component: str) -> int:
        """The number of ``component``'s steps applied so far (0 if none)."""
        rows = self.query("SELECT version FROM schema_versions WHERE component = ?", (component,))
        return int(rows[0][0]) if rows else 0

    def _migrate(self, conn: sqlite3.Connection, component: str, steps: Sequence[Step]) -> int:
        with self._lock:
            row = conn.execute(
                "SELECT version FROM schema_versions WHERE component = ?", (component,)
            ).fetchone()
            current = int(row[0]) if row else 0
            if current > len(steps):
                raise StoreError(
                    f"state store {self.path}: {component} is at version {current}, "
                    f"newer than this code knows ({len(steps)})"
                )
            for number in range(current + 1, len(steps) + 1):
                step = steps[number - 1]
                try:
                    with self._transaction(conn):
                        # Under the write lock, again: another process opening the same file
                        # may have applied this step since the version was read above.
                        done = conn.execute(
                            "SELECT version FROM schema_versions WHERE component = ?",
                            (component,),
                        ).fetchone()
                        if done is not None and int(done[0]) >= number:
                            continue
                        if callable(step):
                            step(conn)
                        else:
                            for statement in split_statements(step):
                                conn.execute(statement)
                        conn.execute(
                            "INSERT INTO schema_versions (component, version) VALUES (?, ?) "
                            "ON CONFLICT (component) DO UPDATE SET version = excluded.version",
                            (component, number),
                        )
                except sqlite3.Error as exc:
                    where = f"state store {self.path}: {component} migration step {number}"
                    raise StoreError(f"{where} failed: {exc}") from exc
            return len(steps)

    # -- SQL ---------------------------------------------------------------------------------

    @contextmanager
    def transaction(self) -> Iterator[sqlite3.Connection]:
        """A write transaction (``BEGIN IMMEDIATE``), committed on success, rolled back on error."""
        with self._lock:
            conn = self._connect()
            with self._transaction(conn):
                yield conn

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[None]:
        conn.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            conn.execute("ROLLBACK")
            raise
        conn.execute("COMMIT")

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        """Run one statement; returns the last inserted row id. Errors raise ``StoreError``."""
        with self._lock, self._errors():
            cursor = self._connect().execute(sql, params)
            return int(cursor.lastrowid or 0)

    def query(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        """Run one query; returns every row. Errors raise ``StoreError``."""
        with self._lock, self._errors():
            return list(self._connect().execute(sql, params).fetchall())

    @contextmanager
    def _errors(self) -> Iterator[None]:
        try:
            yield
        except sqlite3.Error as exc:
            raise StoreError(f"state store {self.path}: {exc}") from exc

    # -- key/value ---------------------------------------------------------------------------

    def put(self, namespace: str, key: str, value: Any) -> None:
        """Store ``value`` (JSON-serialisable) under ``(namespace, key)``."""
        self.execute(
            "INSERT INTO kv (namespace, key, value) VALUES (?, ?, ?) ON CONFLICT (namespace, key) "
            "DO UPDATE SET value = excluded.value, updated = excluded.updated",
            (namespace, key, json.dumps(value)),
        )

    def get(self, namespace: str, key: str, default: Any = None) -> Any:
        """The value under ``(namespace, key)``, or ``default``."""
        rows = self.query("SELECT value FROM kv WHERE namespace = ? AND key = ?", (namespace, key))
        return json.loads(rows[0][0]) if rows else default

    def delete(self, namespace: str, key: str) -> bool:
        """Remove ``(namespace, key)``; returns whether it existed."""
        with self._lock, self._errors():
            cursor = self._connect().execute(
                "DELETE FROM kv WHERE namespace = ? AND key = ?", (namespace, key)
            )
            return cursor.rowcount > 0

    def items(self, namespace: str) -> dict[str, Any]:
        """Every key of ``namespace`` with its value."""
        rows = self.query(
            "SELECT key, value FROM kv WHERE namespace = ? ORDER BY key", (namespace,)
        )
        return {key: json.loads(value) for key, value in rows}

    def __repr__(self) -> str:
        return f"StateStore({self.path!r})"


def split_statements(script: str) -> list[str]:
    """The complete SQL statements of ``script`` (``executescript`` would commit mid-migration)."""
    statements: list[str] = []
    buffer = ""
    for piece in script.split(";"):
        buffer += piece + ";"
        if sqlite3.complete_statement(buffer):
            statement = buffer.strip()
            if statement.rstrip(";").strip():
                statements.append(statement)
            buffer = ""
    rest = buffer[:-1].strip()  # the ";" added after the last piece
    if rest:
        statements.append(rest)
    return statements


def _prepare_file(path: Path) -> None:
    """Create the directory (0700) and the database file (0600) if they do not exist yet."""
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    try:
        fd = os.open(path, os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o600)
    except FileExistsError:
        return
    os.close(fd)
