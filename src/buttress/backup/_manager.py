"""``BackupManager``: configure sources, make backups, list, restore, verify, drill, prune."""

from __future__ import annotations

import builtins
import os
import secrets
import time
from collections.abc import Callable, Sequence
from contextlib import AbstractContextManager
from typing import Any

from buttress._clock import SYSTEM_CLOCK, Clock
from buttress._options import Duration, duration
from buttress._redact import redact
from buttress.backup import _restore
from buttress.backup._catalog import Catalog, SourceRecord
from buttress.backup._crypto import EncryptionKey
from buttress.backup._destination import Destination, LocalDestination
from buttress.backup._events import BackupCompleted, BackupFailed, announce
from buttress.backup._model import (
    KINDS,
    Artifact,
    Backup,
    DrillResult,
    PruneResult,
    RestoreResult,
    VerifyResult,
    check_name,
)
from buttress.backup._reader import ArtifactReader, read_artifact
from buttress.backup._retention import RetentionPolicy, plan_retention
from buttress.backup._source import BackupJob, Source, source_from_spec
from buttress.backup._stream import ArtifactWriter, check_compression, suffix, write_artifact
from buttress.errors import BackupError, ConfigError, DecryptionError

__all__ = ["BackupManager", "artifact_key"]

Progress = Callable[[int], None]


def artifact_key(backup: Backup, name: str) -> str:
    """Where ``backup``'s artifact ``name`` is stored at the destination."""
    return (
        f"{backup.name}/{backup.id}/{name}{suffix(backup.compression, backup.key_id is not None)}"
    )


class BackupManager:
    """Makes and restores backups, recording them in ``catalog`` and storing artifacts at
    ``destination``.

    ``catalog`` is a ``Catalog`` or the path of its SQLite file; ``destination`` a
    ``Destination`` or a local directory; ``clock`` (default ``SystemClock()``) gives the
    recorded times and the measured durations.
    """

    def __init__(
        self,
        catalog: Catalog | str | os.PathLike[str],
        destination: Destination | str | os.PathLike[str],
        *,
        clock: Clock | None = None,
    ) -> None:
        self.catalog = catalog if isinstance(catalog, Catalog) else Catalog(catalog)
        self.destination: Destination = (
            destination if isinstance(destination, Destination) else LocalDestination(destination)
        )
        self.clock = clock or SYSTEM_CLOCK
        self._sources: dict[str, Source] = {}
        self._keys: dict[str, EncryptionKey] = {}

    # -- configuration ----------------------------------------------------------------------

    def configure(
        self,
        name: str,
        source: Source,
        *,
        key: EncryptionKey | None = None,
        compression: str = "zstd",
    ) -> None:
        """Back up ``source`` under ``name``, compressed (``zstd``, ``gzip`` or ``none``) and,
        with ``key``, encrypted. The catalog remembers the source's spec and where the key
        comes from (never the key), so later commands need only the name."""
        check_name("name", name)
        if not isinstance(source, Source):
            raise ConfigError(
                "source", source, "must be a backup source (Files, SQLiteDatabase...)"
            )
        check_compression(compression)
        if key is not None:
            self._keys[key.id] = key
        record = SourceRecord(
            name,
            source.strategy,
            source.spec(),
            compression,
            None if key is None else key.reference,
            None if key is None else key.id,
        )
        self.catalog.put_source(record, self.clock.time())
        self._sources[name] = source

    def add_key(self, key: EncryptionKey) -> None:
        """Make ``key`` available for restores and verifications of backups encrypted with it."""
        self._keys[key.id] = key

    def source(self, name: str) -> Source:
        """The source configured for ``name``."""
        if name in self._sources:
            return self._sources[name]
        record = self.catalog.source(name)
        if record is None:
            raise BackupError(f"no source configured for {name!r}: configure it first")
        source = source_from_spec(record.strategy, record.spec)
        self._sources[name] = source
        return source

    def source_of(self, backup: Backup) -> Source:
        """The source that made ``backup`` (from the spec recorded with it)."""
        spec = backup.stats.get("source")
        if isinstance(spec, dict):
            return source_from_spec(backup.strategy, spec)
        return self.source(backup.name)

    def key_for(
        self, key_id: str | None, given: EncryptionKey | None = None
    ) -> EncryptionKey | None:
        """The key with id ``key_id``: ``given``, a known one, or the configured reference."""
        if key_id is None:
            return None
        if given is not None:
            if given.id != key_id:
                raise DecryptionError(
                    f"wrong key: the backup was encrypted with key id {key_id}, "
                    f"the key given has id {given.id}"
                )
            return given
        if key_id in self._keys:
            return self._keys[key_id]
        for name in self.catalog.source_names():
            record = self.catalog.source(name)
            if record is not None and record.key_id == key_id and record.key_ref:
                try:
                    key = EncryptionKey.from_reference(record.key_ref)
                except ConfigError:
                    continue
                if key.id == key_id:
                    self._keys[key_id] = key
                    return key
        raise DecryptionError(
            f"the backup is encrypted with key id {key_id} and that key is not available "
            "(give it with --key-file or --key-env)"
        )

    # -- backups ----------------------------------------------------------------------------

    def create(
        self,
        name: str,
        kind: str = "full",
        *,
        retention: Duration | None = None,
        tags: Sequence[str] = (),
        progress: Progress | None = None,
    ) -> Backup:
        """Make a backup of ``name``: ``full``, ``incremental`` (changes since the last backup
        of any kind) or ``differential`` (changes since the last full). An incremental or
        differential without a full to build on becomes a full (noted in ``stats``).
        ``retention`` (seconds or ``timedelta``) keeps it from pruning for at least that long."""
        if kind not in KINDS:
            raise ConfigError("kind", kind, "must be full, incremental or differential")
        keep_for = None if retention is None else duration("retention", retention)
        source = self.source(name)
        record = self.catalog.source(name)
        if record is None:
            raise BackupError(f"no source configured for {name!r}: configure it first")
        if kind != "full" and not source.incremental:
            raise ConfigError("kind", kind, f"must be full: {source.strategy} backups are full")
        stats: dict[str, Any] = {"source": source.spec()}
        reference = parent = None
        if kind != "full":
            parent = self.catalog.latest(name, kinds=("full",) if kind == "differential" else None)
            if parent is not None and parent.strategy != source.strategy:
                parent = None
            if parent is None:
                stats["promoted"] = f"{kind} became full: no full backup of {name!r} yet"
                kind = "full"
            reference = parent
        key = self.key_for(record.key_id) if record.key_id else None
        now = self.clock.time()
        backup = Backup(
            id=_new_id(name, now),
            name=name,
            kind=kind,  # type: ignore[arg-type]
            strategy=source.strategy,
            status="running",
            started_at=now,
            parent=None if parent is None else parent.id,
            key_id=None if key is None else key.id,
            compression=record.compression,
            keep_until=None if keep_for is None else now + keep_for,
            tags=tuple(tags),
            stats=stats,
        )
        self.catalog.add(backup)
        artifacts: list[Artifact] = []

        def artifact(artifact_name: str) -> AbstractContextManager[ArtifactWriter]:
            return write_artifact(
                self.destination,
                artifact_key(backup, artifact_name),
                artifact_name,
                compression=backup.compression,
                encryption=key,
                done=artifacts.append,
            )

        job = BackupJob(
            backup, reference, artifact, self.open_artifact, self.clock, progress or _ignore
        )
        previous = parent if parent is not None else self.catalog.latest(name)
        if previous is not None and previous.strategy == source.strategy:
            job.previous = previous
        started = self.clock.monotonic()
        try:
            source.backup(job)
        except BaseException as exc:
            error = redact(f"{type(exc).__name__}: {exc}")
            failed = _replace(backup, status="failed", finished_at=self.clock.time(), error=error)
            self.catalog.update(failed)
            self._delete_objects(backup)
            announce(BackupFailed(name, self.clock.time(), backup.id, error))
            raise
        done = _replace(
            backup,
            status="completed",
            finished_at=self.clock.time(),
            artifacts=tuple(sorted(artifacts, key=lambda a: a.name)),
            size=sum(a.size for a in artifacts),
            data_time=job.data_time,
            stats={**stats, **job.stats},
        )
        self.catalog.update(done)
        seconds = self.clock.monotonic() - started
        announce(BackupCompleted(name, self.clock.time(), done.id, done.kind, done.size, seconds))
        return done

    def open_artifact(
        self, backup: Backup, name: str, key: EncryptionKey | None = None
    ) -> AbstractContextManager[ArtifactReader]:
        """The decoded plaintext of ``backup``'s artifact ``name`` (checked at its end)."""
        try:
            artifact = backup.artifact(name)
        except KeyError:
            raise BackupError(f"backup {backup.id} has no artifact {name!r}") from None
        return read_artifact(
            self.destination,
            artifact_key(backup, name),
            artifact,
            compression=backup.compression,
            encryption=self.key_for(backup.key_id, key),
            encrypted=backup.key_id is not None,
        )

    def list(self, name: str | None = None) -> list[Backup]:
        """Every backup (of ``name`` when given), oldest first."""
        return self.catalog.list(name)

    def show(self, backup_id: str) -> Backup:
        """The catalog record of ``backup_id``."""
        return self.catalog.get(backup_id)

    def chain(self, backup_id: str) -> builtins.list[Backup]:
        """The backups a restore of ``backup_id`` applies: its full first, itself last."""
        return _restore.chain(self.catalog, backup_id)

    # -- recovery ---------------------------------------------------------------------------

    def restore(
        self,
        backup_id: str,
        destination: str | os.PathLike[str],
        *,
        force: bool = False,
        key: EncryptionKey | None = None,
        progress: Progress | None = None,
        **options: Any,
    ) -> RestoreResult:
        """Rebuild ``backup_id`` (its whole chain) at ``destination``: a directory, or for
        PostgreSQL dumps a database DSN. Every artifact's checksum is verified before anything
        is written; a non-empty destination is refused unless ``force``."""
        return _restore.restore(
            self,
            backup_id,
            os.fspath(destination),
            force=force,
            key=key,
            progress=progress,
            options=options,
        )

    def pitr(
        self,
        target_time: object,
        destination: str | os.PathLike[str],
        *,
        name: str | None = None,
        start: bool = False,
        force: bool = False,
        progress: Progress | None = None,
    ) -> RestoreResult:
        """Restore a PostgreSQL cluster as of ``target_time`` (ISO 8601, ``datetime``, epoch,
        or ``"latest"`` for all archived WAL) into ``destination``: the newest base backup of
        ``name`` (needed if several PITR names exist) completed before then, with WAL replayed
        up to it; ``start`` starts the server and waits for the end of recovery."""
        from buttress.backup._pitr import pitr_base

        base = pitr_base(self, target_time, name)
        return self.restore(
            base.id,
            destination,
            force=force,
            progress=progress,
            target_time=None if target_time == "latest" else target_time,
            start=start,
        )

    def verify(
        self, backup_id: str, *, deep: bool = False, key: EncryptionKey | None = None
    ) -> VerifyResult:
        """Re-read and re-hash every artifact of ``backup_id``; ``deep`` also restores it into
        a scratch location and checks the copy."""
        return _restore.verify(self, backup_id, deep=deep, key=key)

    def drill(
        self,
        name: str,
        *,
        queries: Sequence[str] = (),
        files: Sequence[str] = (),
        freshness_query: str | None = None,
        key: EncryptionKey | None = None,
    ) -> DrillResult:
        """Restore the latest backup of ``name`` into a scratch location, run the checks
        (``queries`` must return a true first column; ``files`` must exist), record the
        recovery time (RTO) and the age of the newest restored data (RPO); a failed drill
        emits a ``drill.failed`` alert event. ``freshness_query`` returns the time of the
        newest data (default: the backup's consistency point)."""
        from buttress.backup._drill import run_drill

        return run_drill(self, name, queries, files, freshness_query, key)

    def drills(self, name: str | None = None, *, limit: int = 100) -> builtins.list[DrillResult]:
        """The drill history, newest first."""
        return self.catalog.drills(name, limit=limit)

    def prune(
        self,
        policy: RetentionPolicy | None = None,
        *,
        name: str | None = None,
        dry_run: bool = False,
    ) -> PruneResult:
        """Delete what ``policy`` does not keep (see ``plan_retention``); with ``dry_run``,
        only say what would go."""
        backups = self.catalog.list(name)
        plan = plan_retention(backups, policy, self.clock.time())
        by_id = {b.id: b for b in backups}
        freed = sum(by_id[i].size for i in plan.delete)
        wal = 0
        if not dry_run:
            for backup_id in plan.delete:
                self._delete_objects(by_id[backup_id])
                self.catalog.delete(backup_id)
            wal = _restore.clean_wal(self, [by_id[i] for i in plan.keep])
        return PruneResult(dry_run, plan.delete, plan.keep, freed, wal)

    def _delete_objects(self, backup: Backup) -> None:
        for key in list(self.destination.keys(f"{backup.name}/{backup.id}/")):
            self.destination.delete(key)


def _ignore(_: int) -> None:
    pass


def _new_id(name: str, now: float) -> str:
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime(now))
    return f"{name}-{stamp}-{secrets.token_hex(3)}"


def _replace(backup: Backup, **changes: Any) -> Backup:
    from dataclasses import replace

    return replace(backup, **changes)
