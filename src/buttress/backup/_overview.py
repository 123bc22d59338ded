"""What the ops server shows of the catalog: per backup name, the newest success and failure,
sizes over time and the newest drills; read in a few queries, whatever the history's length."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from buttress.backup._catalog import Catalog
from buttress.backup._model import Backup, DrillResult

__all__ = ["NameSummary", "sizes", "summarize"]

SIZE_POINTS = 200
"""The most (time, size) points ``sizes`` returns by default."""


@dataclass(frozen=True, slots=True)
class NameSummary:
    """One backup name: counts and stored bytes of its completed backups, its newest success
    and failure, its newest drill and its newest passed drill."""

    name: str
    completed: int = 0
    failed: int = 0
    stored_bytes: int = 0
    last_success: Backup | None = None
    last_failure: Backup | None = None
    last_drill: DrillResult | None = None
    last_passed_drill: DrillResult | None = None

    def to_dict(self) -> dict[str, Any]:
        """The summary as plain data (backups and drills in brief)."""
        success, failure, drill = self.last_success, self.last_failure, self.last_drill
        return {
            "name": self.name,
            "completed": self.completed,
            "failed": self.failed,
            "stored_bytes": self.stored_bytes,
            "last_success": None if success is None else _brief(success),
            "last_failure": None if failure is None else _brief(failure),
            "last_drill": None if drill is None else _drill(drill),
            "last_passed_drill": (
                None if self.last_passed_drill is None else _drill(self.last_passed_drill)
            ),
        }


def _brief(backup: Backup) -> dict[str, Any]:
    return {
        "id": backup.id,
        "kind": backup.kind,
        "strategy": backup.strategy,
        "status": backup.status,
        "started_at": backup.started_at,
        "finished_at": backup.finished_at,
        "duration_seconds": backup.duration,
        "size": backup.size,
        "data_time": backup.data_time,
        "error": backup.error,
    }


def _drill(drill: DrillResult) -> dict[str, Any]:
    data = drill.to_dict()
    data.pop("checks")
    return data


def _newest(catalog: Catalog, status: str, time_column: str) -> dict[str, Backup]:
    # SQLite takes the bare column (id) from the row holding the max().
    rows = catalog._query(
        f"SELECT id, max({time_column}) FROM backups WHERE status = ? GROUP BY name", [status]
    )
    ids = [row[0] for row in rows]
    found: dict[str, Backup] = {}
    for start in range(0, len(ids), 500):
        chunk = ids[start : start + 500]
        marks = ", ".join("?" * len(chunk))
        for backup in catalog._select(f"WHERE id IN ({marks})", chunk):
            found[backup.name] = backup
    return found


def summarize(catalog: Catalog, names: Iterable[str] = ()) -> dict[str, NameSummary]:
    """A summary of every name with backups or drills in the catalog, and of ``names``
    (configured ones without any yet), sorted by name."""
    counts: dict[str, dict[str, tuple[int, int]]] = {}
    for name, status, count, size in catalog._query(
        "SELECT name, status, count(*), coalesce(sum(size), 0) FROM backups GROUP BY name, status"
    ):
        counts.setdefault(name, {})[status] = (count, size)
    successes = _newest(catalog, "completed", "finished_at")
    failures = _newest(catalog, "failed", "started_at")
    drilled = [row[0] for row in catalog._query("SELECT DISTINCT name FROM drills")]
    out: dict[str, NameSummary] = {}
    for name in sorted({*counts, *drilled, *names}):
        latest = catalog.drills(name, limit=1) if name in drilled else []
        passed = catalog.drills(name, limit=1, ok=True) if name in drilled else []
        completed, size = counts.get(name, {}).get("completed", (0, 0))
        out[name] = NameSummary(
            name=name,
            completed=completed,
            failed=counts.get(name, {}).get("failed", (0, 0))[0],
            stored_bytes=size,
            last_success=successes.get(name),
            last_failure=failures.get(name),
            last_drill=latest[0] if latest else None,
            last_passed_drill=passed[0] if passed else None,
        )
    return out


def sizes(catalog: Catalog, name: str, limit: int = SIZE_POINTS) -> list[tuple[float, int]]:
    """The (finish time, stored bytes) of the newest ``limit`` completed backups of ``name``,
    oldest first."""
    rows = catalog._query(
        "SELECT finished_at, size FROM backups WHERE name = ? AND status = 'completed' "
        "ORDER BY finished_at DESC, rowid DESC LIMIT ?",
        [name, limit],
    )
    return [(float(t), int(s)) for t, s in reversed(rows)]
