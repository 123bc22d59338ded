"""The backup catalog: one SQLite file recording sources, backups, artifacts and drills.

The file is opened in WAL mode with a busy timeout, so the CLI, the ops server and a scheduled
job can share it. Each write is one transaction. The connection opens on first use.
"""

from __future__ import annotations

import builtins
import json
import os
import sqlite3
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from buttress._wal import use_wal
from buttress.backup._model import Artifact, Backup, CheckResult, DrillResult
from buttress.errors import BackupError

__all__ = ["Catalog", "SourceRecord"]

_SCHEMA = """
CREATE TABLE IF NOT EXISTS sources (
    name TEXT PRIMARY KEY, strategy TEXT NOT NULL, spec TEXT NOT NULL,
    compression TEXT NOT NULL, key_ref TEXT, key_id TEXT, updated_at REAL NOT NULL);
CREATE TABLE IF NOT EXISTS backups (
    id TEXT PRIMARY KEY, name TEXT NOT NULL, kind TEXT NOT NULL, strategy TEXT NOT NULL,
    status TEXT NOT NULL, started_at REAL NOT NULL, finished_at REAL, parent TEXT,
    size INTEGER NOT NULL DEFAULT 0, key_id TEXT, compression TEXT NOT NULL,
    data_time REAL, keep_until REAL, tags TEXT NOT NULL DEFAULT '[]',
    stats TEXT NOT NULL DEFAULT '{}', error TEXT);
CREATE INDEX IF NOT EXISTS backups_name ON backups (name, started_at);
CREATE TABLE IF NOT EXISTS artifacts (
    backup_id TEXT NOT NULL REFERENCES backups (id) ON DELETE CASCADE, name TEXT NOT NULL,
    size INTEGER NOT NULL, sha256 TEXT NOT NULL, PRIMARY KEY (backup_id, name));
CREATE TABLE IF NOT EXISTS drills (
    id INTEGER PRIMARY KEY AUTOINCREMENT, name TEXT NOT NULL, backup_id TEXT,
    started_at REAL NOT NULL, finished_at REAL NOT NULL, ok INTEGER NOT NULL,
    rto_seconds REAL, rpo_seconds REAL, checks TEXT NOT NULL, error TEXT);
CREATE INDEX IF NOT EXISTS drills_name ON drills (name, started_at);
"""
_COLUMNS = (
    "id, name, kind, strategy, status, started_at, finished_at, parent, size, key_id, "
    "compression, data_time, keep_until, tags, stats, error"
)


class SourceRecord:
    """What the catalog remembers about a backup name: its strategy, the source's spec (no
    secrets), the compression and where the key comes from (a reference, never the key)."""

    __slots__ = ("compression", "key_id", "key_ref", "name", "spec", "strategy")

    def __init__(
        self,
        name: str,
        strategy: str,
        spec: dict[str, Any],
        compression: str,
        key_ref: dict[str, str] | None,
        key_id: str | None,
    ) -> None:
        self.name = name
        self.strategy = strategy
        self.spec = spec
        self.compression = compression
        self.key_ref = key_ref
        self.key_id = key_id

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data."""
        return {
            "name": self.name,
            "strategy": self.strategy,
            "spec": self.spec,
            "compression": self.compression,
            "key_ref": self.key_ref,
            "key_id": self.key_id,
        }


class Catalog:
    """The catalog in the SQLite file at ``path`` (``":memory:"`` for a private one)."""

    def __init__(self, path: str | os.PathLike[str], *, busy_timeout: float = 10.0) -> None:
        self._path = os.fspath(path)
        self._busy = busy_timeout
        self._conn: sqlite3.Connection | None = None
        self._lock = threading.RLock()

    @property
    def path(self) -> str:
        """The SQLite file."""
        return self._path

    def _connect(self) -> sqlite3.Connection:
        if self._conn is None:
            if self._path != ":memory:":
                Path(self._path).parent.mkdir(parents=True, exist_ok=True)
            conn = sqlite3.connect(
                self._path, timeout=self._busy, isolation_level=None, check_same_thread=False
            )
            use_wal(conn, self._busy)
            conn.execute("PRAGMA foreign_keys=ON")
            conn.executescript(_SCHEMA)
            self._conn = conn
        return self._conn

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            conn = self._connect()
            conn.execute("BEGIN IMMEDIATE")
            try:
                yield conn
            except BaseException:
                conn.execute("ROLLBACK")
                raise
            conn.execute("COMMIT")

    def _query(self, sql: str, args: Sequence[Any] = ()) -> list[Any]:
        with self._lock:
            return self._connect().execute(sql, args).fetchall()

    def close(self) -> None:
        """Close the connection (it reopens on the next use)."""
        with self._lock:
            if self._conn is not None:
                self._conn.close()
                self._conn = None

    def __enter__(self) -> Catalog:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- sources ----------------------------------------------------------------------------

    def put_source(self, record: SourceRecord, now: float) -> None:
        """Remember (or replace) how the backups of ``record.name`` are made."""
        with self._tx() as conn:
            conn.execute(
                "INSERT OR REPLACE INTO sources VALUES (?, ?, ?, ?, ?, ?, ?)",
                (
                    record.name,
                    record.strategy,
                    json.dumps(record.spec, sort_keys=True),
                    record.compression,
                    None if record.key_ref is None else json.dumps(record.key_ref),
                    record.key_id,
                    now,
                ),
            )

    def source(self, name: str) -> SourceRecord | None:
        """The source configured for ``name``, or None."""
        rows = self._query(
            "SELECT name, strategy, spec, compression, key_ref, key_id FROM sources WHERE name = ?",
            (name,),
        )
        if not rows:
            return None
        n, strategy, spec, compression, key_ref, key_id = rows[0]
        ref = None if key_ref is None else json.loads(key_ref)
        return SourceRecord(n, strategy, json.loads(spec), compression, ref, key_id)

    def source_names(self) -> list[str]:
        """Every configured name, sorted."""
        return [r[0] for r in self._query("SELECT name FROM sources ORDER BY name")]

    # -- backups ----------------------------------------------------------------------------

    def add(self, backup: Backup) -> None:
        """Record a new backup (normally with status ``running``)."""
        with self._tx() as conn:
            conn.execute(
                f"INSERT INTO backups ({_COLUMNS}) VALUES "
                "(?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                _row(backup),
            )

    def update(self, backup: Backup) -> None:
        """Store the backup's new state and its artifacts."""
        with self._tx() as conn:
            cur = conn.execute(
                "UPDATE backups SET name=?, kind=?, strategy=?, status=?, started_at=?,"
                " finished_at=?, parent=?, size=?, key_id=?, compression=?, data_time=?,"
                " keep_until=?, tags=?, stats=?, error=? WHERE id=?",
                (*_row(backup)[1:], backup.id),
            )
            if cur.rowcount != 1:
                raise BackupError(f"backup {backup.id!r} is not in the catalog")
            conn.execute("DELETE FROM artifacts WHERE backup_id = ?", (backup.id,))
            conn.executemany(
                "INSERT INTO artifacts VALUES (?, ?, ?, ?)",
                [(backup.id, a.name, a.size, a.sha256) for a in backup.artifacts],
            )

    def get(self, backup_id: str) -> Backup:
        """The backup ``backup_id`` (``BackupError`` if the catalog has none)."""
        found = self._select("WHERE id = ?", (backup_id,))
        if not found:
            raise BackupError(f"no backup {backup_id!r} in the catalog")
        return found[0]

    def list(self, name: str | None = None, *, status: str | None = None) -> list[Backup]:
        """Backups, oldest first; only ``name``'s and only of ``status`` when given."""
        where, args = [], []
        if name is not None:
            where.append("name = ?")
            args.append(name)
        if status is not None:
            where.append("status = ?")
            args.append(status)
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        return self._select(clause + " ORDER BY started_at, rowid", args)

    def latest(self, name: str, *, kinds: Sequence[str] | None = None) -> Backup | None:
        """The newest completed backup of ``name`` (of one of ``kinds`` when given)."""
        for backup in reversed(self.list(name, status="completed")):
            if kinds is None or backup.kind in kinds:
                return backup
        return None

    def last(self, name: str) -> Backup | None:
        """The newest backup of ``name`` (by start) whatever its status, or None."""
        found = self._select("WHERE name = ? ORDER BY started_at DESC, rowid DESC LIMIT 1", [name])
        return found[0] if found else None

    def names(self) -> builtins.list[str]:
        """Every name with at least one backup, sorted."""
        return [r[0] for r in self._query("SELECT DISTINCT name FROM backups ORDER BY name")]

    def delete(self, backup_id: str) -> None:
        """Forget the backup and its artifacts (the stored objects are the caller's job)."""
        with self._tx() as conn:
            conn.execute("DELETE FROM artifacts WHERE backup_id = ?", (backup_id,))
            conn.execute("DELETE FROM backups WHERE id = ?", (backup_id,))

    def _select(self, clause: str, args: Sequence[Any]) -> builtins.list[Backup]:
        rows = self._query(f"SELECT {_COLUMNS} FROM backups {clause}", args)
        if not rows:
            return []
        ids = [r[0] for r in rows]
        artifacts: dict[str, builtins.list[Artifact]] = {i: [] for i in ids}
        for start in range(0, len(ids), 500):
            chunk = ids[start : start + 500]
            marks = ", ".join("?" * len(chunk))
            for backup_id, name, size, sha in self._query(
                "SELECT backup_id, name, size, sha256 FROM artifacts"
                f" WHERE backup_id IN ({marks}) ORDER BY name",
                chunk,
            ):
                artifacts[backup_id].append(Artifact(name, size, sha))
        return [_backup(r, tuple(artifacts[r[0]])) for r in rows]

    # -- drills -----------------------------------------------------------------------------

    def add_drill(self, result: DrillResult) -> DrillResult:
        """Record a drill; returns it with its id."""
        with self._tx() as conn:
            cur = conn.execute(
                "INSERT INTO drills (name, backup_id, started_at, finished_at, ok, rto_seconds,"
                " rpo_seconds, checks, error) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (
                    result.name,
                    result.backup_id,
                    result.started_at,
                    result.finished_at,
                    int(result.ok),
                    result.rto_seconds,
                    result.rpo_seconds,
                    json.dumps([c.to_dict() for c in result.checks]),
                    result.error,
                ),
            )
            drill_id = cur.lastrowid
        return DrillResult(
            result.name,
            result.backup_id,
            result.started_at,
            result.finished_at,
            result.ok,
            result.rto_seconds,
            result.rpo_seconds,
            result.checks,
            result.error,
            drill_id,
        )

    def drills(
        self, name: str | None = None, *, limit: int = 100, ok: bool | None = None
    ) -> builtins.list[DrillResult]:
        """The drill history, newest first (only ``name``'s, only passed or failed ones, when
        given)."""
        where: builtins.list[str] = []
        args: builtins.list[Any] = []
        if name is not None:
            where.append("name = ?")
            args.append(name)
        if ok is not None:
            where.append("ok = ?")
            args.append(int(ok))
        clause = ("WHERE " + " AND ".join(where)) if where else ""
        rows = self._query(
            "SELECT id, name, backup_id, started_at, finished_at, ok, rto_seconds, rpo_seconds,"
            f" checks, error FROM drills {clause} ORDER BY started_at DESC, id DESC LIMIT ?",
            [*args, limit],
        )
        return [
            DrillResult(
                name=r[1],
                backup_id=r[2],
                started_at=r[3],
                finished_at=r[4],
                ok=bool(r[5]),
                rto_seconds=r[6],
                rpo_seconds=r[7],
                checks=tuple(CheckResult(**c) for c in json.loads(r[8])),
                error=r[9],
                id=r[0],
            )
            for r in rows
        ]


def _row(b: Backup) -> tuple[Any, ...]:
    return (
        b.id,
        b.name,
        b.kind,
        b.strategy,
        b.status,
        b.started_at,
        b.finished_at,
        b.parent,
        b.size,
        b.key_id,
        b.compression,
        b.data_time,
        b.keep_until,
        json.dumps(list(b.tags)),
        json.dumps(b.stats, sort_keys=True, default=str),
        b.error,
    )


def _backup(r: Sequence[Any], artifacts: tuple[Artifact, ...]) -> Backup:
    return Backup(
        id=r[0],
        name=r[1],
        kind=r[2],
        strategy=r[3],
        status=r[4],
        started_at=r[5],
        finished_at=r[6],
        parent=r[7],
        size=r[8],
        artifacts=artifacts,
        key_id=r[9],
        compression=r[10],
        data_time=r[11],
        keep_until=r[12],
        tags=tuple(json.loads(r[13])),
        stats=json.loads(r[14]),
        error=r[15],
    )
