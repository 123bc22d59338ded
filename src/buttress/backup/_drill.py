"""Restore drills: prove that the latest backup restores, and measure RTO and RPO.

A drill restores the latest completed backup of a name into a scratch location (a temporary
directory, a scratch database, or a scratch cluster for PITR), runs the source's own checks
and the given validation queries and file checks, and records:

- RTO: the seconds from the start of the drill to the end of the checks (scratch setup,
  checksum verification, restore, recovery and validation; not the cleanup);
- RPO: the age of the newest restored data when the drill began: the drill's start minus the
  ``freshness_query`` result (a time), else the time of the last replayed transaction (PITR),
  else the backup's consistency point (``data_time``).

Every drill is kept in the catalog; a failed one emits ``drill.failed`` (an alert).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, date, datetime
from pathlib import Path
from typing import TYPE_CHECKING

from buttress._redact import redact
from buttress.backup._crypto import EncryptionKey
from buttress.backup._events import DrillCompleted, DrillFailed, announce
from buttress.backup._model import Backup, CheckResult, DrillResult
from buttress.backup._restore import prepare
from buttress.backup._source import Source
from buttress.errors import BackupError

if TYPE_CHECKING:
    from buttress.backup._manager import BackupManager

__all__ = ["run_drill", "to_epoch"]


def to_epoch(value: object) -> float | None:
    """A time from a query result as epoch seconds: a number, a ``datetime`` (naive is UTC),
    a ``date``, or an ISO 8601 string."""
    if value is None:
        return None
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, datetime):
        moment = value if value.tzinfo else value.replace(tzinfo=UTC)
        return moment.timestamp()
    if isinstance(value, date):
        return datetime(value.year, value.month, value.day, tzinfo=UTC).timestamp()
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            pass
        return to_epoch(datetime.fromisoformat(value.replace("Z", "+00:00")))
    try:
        return float(value)  # type: ignore[arg-type]  # Decimal from PostgreSQL
    except (TypeError, ValueError):
        raise BackupError(f"not a time: {value!r}") from None


def _file_checks(target: str, files: Sequence[str]) -> list[CheckResult]:
    out = []
    root = Path(target).resolve()
    for rel in files:
        path = (root / rel).resolve()
        inside = path == root or root in path.parents
        ok = inside and (path.exists() or path.is_symlink())
        out.append(CheckResult(f"file {rel}", ok, "exists" if ok else "missing"))
    return out


def _query_checks(source: Source, target: str, queries: Sequence[str]) -> list[CheckResult]:
    out = []
    for sql in queries:
        try:
            value = source.query(target, sql)
        except BackupError as exc:
            out.append(CheckResult(f"query {sql}", False, str(exc)))
            continue
        out.append(CheckResult(f"query {sql}", bool(value), f"returned {value!r}"))
    return out


def run_drill(
    manager: BackupManager,
    name: str,
    queries: Sequence[str],
    files: Sequence[str],
    freshness_query: str | None,
    key: EncryptionKey | None,
) -> DrillResult:
    """See ``BackupManager.drill``."""
    clock = manager.clock
    started_at = clock.time()
    started = clock.monotonic()
    backup: Backup | None = manager.catalog.latest(name)
    checks: list[CheckResult] = []
    error: str | None = None
    rto = rpo = None
    try:
        if backup is None:
            raise BackupError(f"no completed backup of {name!r} to drill")
        source = manager.source_of(backup)
        with source.scratch() as target:
            _, job = prepare(
                manager,
                backup.id,
                target,
                force=True,
                key=key,
                progress=None,
                options={"start": True},
            )
            source.restore(job)
            checks.append(CheckResult("restore", True, f"{len(job.chain)} backups applied"))
            checks.extend(source.check(job))
            checks.extend(_query_checks(source, target, queries))
            if files:
                if source.target_kind != "directory":
                    raise BackupError("file checks need a directory restore")
                checks.extend(_file_checks(target, files))
            newest = None
            if freshness_query:
                newest = to_epoch(source.query(target, freshness_query))
            if newest is None:
                newest = source.freshness(target)
            if newest is None:
                newest = backup.data_time
            rto = clock.monotonic() - started
            rpo = None if newest is None else max(0.0, started_at - newest)
        failed = [c for c in checks if not c.ok]
        if failed:
            error = "checks failed: " + "; ".join(f"{c.name}: {c.detail}" for c in failed)
    except Exception as exc:
        error = redact(f"{type(exc).__name__}: {exc}")
    result = DrillResult(
        name=name,
        backup_id=None if backup is None else backup.id,
        started_at=started_at,
        finished_at=clock.time(),
        ok=error is None,
        rto_seconds=rto,
        rpo_seconds=rpo,
        checks=tuple(checks),
        error=error,
    )
    result = manager.catalog.add_drill(result)
    if result.ok:
        announce(DrillCompleted(name, clock.time(), result.backup_id or "", rto or 0.0, rpo))
    else:
        announce(DrillFailed(name, clock.time(), result.backup_id, result.error or "failed"))
    return result
