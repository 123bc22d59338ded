"""SQLite databases, copied with SQLite's online backup API.

The copy is made in one step under one read transaction, so it is a consistent snapshot even
while other connections write (in WAL mode they are not even blocked). The snapshot goes to
a temporary file, then is streamed into the artifact: memory stays small whatever the size.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import sqlite3
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any, ClassVar
from urllib.parse import quote

from buttress.backup._model import CheckResult
from buttress.backup._source import BackupJob, RestoreJob, register
from buttress.backup._stream import BLOCK
from buttress.errors import BackupError, ConfigError

__all__ = ["SQLiteDatabase"]

ARTIFACT = "database.sqlite"


class SQLiteDatabase:
    """The SQLite database file at ``path``. A restore writes the file into the destination
    directory under its original name. ``work_dir`` holds the temporary snapshot (default:
    the system's temporary directory)."""

    strategy: ClassVar[str] = "sqlite"
    incremental: ClassVar[bool] = False
    target_kind: ClassVar[str] = "directory"

    def __init__(
        self, path: str | os.PathLike[str], *, work_dir: str | os.PathLike[str] | None = None
    ) -> None:
        if not os.fspath(path):
            raise ConfigError("path", path, "must be a SQLite database file")
        self.path = Path(path).absolute()
        self.work_dir = None if work_dir is None else Path(work_dir)

    def spec(self) -> dict[str, Any]:
        """The database path."""
        return {
            "path": str(self.path),
            "work_dir": None if self.work_dir is None else str(self.work_dir),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> SQLiteDatabase:
        """Rebuild from ``spec()``."""
        return cls(spec["path"], work_dir=spec.get("work_dir"))

    def __repr__(self) -> str:
        return f"SQLiteDatabase({str(self.path)!r})"

    def backup(self, job: BackupJob) -> None:
        """Snapshot the database with the backup API, then stream the snapshot."""
        if not self.path.is_file():
            raise BackupError(f"{self.path}: no such database file")
        with tempfile.TemporaryDirectory(prefix="buttress-sqlite-", dir=self.work_dir) as tmp:
            snapshot = Path(tmp) / self.path.name
            src = sqlite3.connect(f"file:{quote(str(self.path))}?mode=ro", uri=True, timeout=30)
            dst = sqlite3.connect(snapshot)
            try:
                job.data_time = job.clock.time()
                src.backup(dst, pages=-1)  # one step: one consistent read transaction
                tables = dst.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
            except sqlite3.Error as exc:
                raise BackupError(f"{self.path}: backup failed: {exc}") from exc
            finally:
                dst.close()
                src.close()
            size = 0
            with job.artifact(ARTIFACT) as out, open(snapshot, "rb", buffering=0) as f:
                while block := f.read(BLOCK):
                    out.write(block)
                    size += len(block)
                    job.progress(len(block))
        job.stats.update(database=str(self.path), bytes=size, tables=tables)

    def _file(self, target: str) -> Path:
        return Path(target) / self.path.name

    def restore(self, job: RestoreJob) -> None:
        """Write the database into the target directory (atomically: a temporary file is
        renamed into place)."""
        final = self._file(job.target)
        final.parent.mkdir(parents=True, exist_ok=True)
        tmp = final.with_name(f".{final.name}.restoring")
        size = 0
        try:
            with job.open(job.backup, ARTIFACT) as data, open(tmp, "wb", buffering=0) as out:
                while block := data.read(BLOCK):
                    view = memoryview(block)
                    while view:
                        view = view[out.write(view) or 0 :]
                    size += len(block)
                    job.progress(len(block))
                data.finish()
                os.fsync(out.fileno())
            for stale in (f"{final}-wal", f"{final}-shm", f"{final}-journal"):
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(stale)
            os.replace(tmp, final)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        job.stats.update(database=str(final), bytes=size)

    def check(self, job: RestoreJob) -> list[CheckResult]:
        """``PRAGMA integrity_check`` on the restored copy."""
        path = self._file(job.target)
        try:
            conn = sqlite3.connect(f"file:{quote(str(path))}?mode=ro", uri=True)
            try:
                result = conn.execute("PRAGMA integrity_check").fetchone()[0]
                tables = conn.execute(
                    "SELECT count(*) FROM sqlite_master WHERE type = 'table'"
                ).fetchone()[0]
            finally:
                conn.close()
        except sqlite3.Error as exc:
            return [CheckResult("sqlite integrity_check", False, str(exc))]
        return [CheckResult("sqlite integrity_check", result == "ok", f"{result}; {tables} tables")]

    @contextlib.contextmanager
    def scratch(self) -> Iterator[str]:
        """An empty temporary directory."""
        path = tempfile.mkdtemp(prefix="buttress-scratch-", dir=self.work_dir)
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def freshness(self, target: str) -> float | None:
        """None: the backup's consistency point is the newest data."""
        return None

    def query(self, target: str, sql: str) -> object:
        """Run ``sql`` on the restored copy (read-only); the first column of the first row."""
        conn = sqlite3.connect(f"file:{quote(str(self._file(target)))}?mode=ro", uri=True)
        try:
            row = conn.execute(sql).fetchone()
        except sqlite3.Error as exc:
            raise BackupError(f"query failed: {exc}") from exc
        finally:
            conn.close()
        return None if row is None else row[0]


register("sqlite", SQLiteDatabase.from_spec)
