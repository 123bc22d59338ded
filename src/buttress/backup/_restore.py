"""Recovery: the chain of a backup, restore (checksums first), and verification."""

from __future__ import annotations

from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Any

from buttress.backup._catalog import Catalog
from buttress.backup._crypto import EncryptionKey
from buttress.backup._model import Backup, CheckResult, RestoreResult, VerifyResult
from buttress.backup._reader import ArtifactReader, hash_artifact
from buttress.backup._source import RestoreJob, Source
from buttress.backup._tar import is_empty_dir
from buttress.errors import BackupError, ChecksumMismatchError

if TYPE_CHECKING:
    from buttress.backup._manager import BackupManager

__all__ = ["chain", "clean_wal", "restore", "verify"]


def chain(catalog: Catalog, backup_id: str) -> list[Backup]:
    """``backup_id`` and the backups it builds on, full first; every one must be completed."""
    out: list[Backup] = []
    current: str | None = backup_id
    while current is not None:
        backup = catalog.get(current)
        if backup.status != "completed":
            raise BackupError(f"backup {backup.id} is {backup.status}, not completed")
        if any(b.id == backup.id for b in out):
            raise BackupError(f"backup {backup.id}: its parents form a cycle")
        out.append(backup)
        current = backup.parent
    out.reverse()
    if out[0].kind != "full":
        raise BackupError(f"backup {backup_id}: its chain does not start with a full backup")
    return out


def verify_chain(manager: BackupManager, backups: list[Backup]) -> list[CheckResult]:
    """Re-hash every artifact of ``backups``."""
    from buttress.backup._manager import artifact_key

    checks = []
    for backup in backups:
        for artifact in backup.artifacts:
            result = hash_artifact(
                manager.destination, artifact_key(backup, artifact.name), artifact
            )
            checks.append(CheckResult(f"{backup.id}/{artifact.name}", result.ok, result.detail))
    return checks


def _opener(
    manager: BackupManager, key: EncryptionKey | None
) -> Callable[[Backup, str], AbstractContextManager[ArtifactReader]]:
    def open_artifact(backup: Backup, name: str) -> AbstractContextManager[ArtifactReader]:
        return manager.open_artifact(backup, name, key)

    return open_artifact


def prepare(
    manager: BackupManager,
    backup_id: str,
    target: str,
    *,
    force: bool,
    key: EncryptionKey | None,
    progress: Callable[[int], None] | None,
    options: dict[str, Any],
) -> tuple[Source, RestoreJob]:
    """Check the destination, resolve the keys and verify every checksum of the chain."""
    backups = chain(manager.catalog, backup_id)
    source = manager.source_of(backups[-1])
    if source.target_kind == "directory" and not force and not is_empty_dir(target):
        raise BackupError(f"{target} is not empty: restore into an empty directory, or force")
    opener = _opener(manager, key)
    for backup in backups:  # a wrong or missing key fails before any byte is read
        manager.key_for(backup.key_id, key)
    bad = [c for c in verify_chain(manager, backups) if not c.ok]
    if bad:
        raise ChecksumMismatchError(
            "refusing to restore: " + "; ".join(f"{c.name}: {c.detail}" for c in bad)
        )
    job = RestoreJob(
        tuple(backups), target, force, opener, manager.clock, progress or _ignore, dict(options)
    )
    return source, job


def restore(
    manager: BackupManager,
    backup_id: str,
    target: str,
    *,
    force: bool,
    key: EncryptionKey | None,
    progress: Callable[[int], None] | None,
    options: dict[str, Any],
) -> RestoreResult:
    """See ``BackupManager.restore``."""
    started = manager.clock.monotonic()
    source, job = prepare(
        manager, backup_id, target, force=force, key=key, progress=progress, options=options
    )
    source.restore(job)
    return RestoreResult(
        backup_id,
        tuple(b.id for b in job.chain),
        target,
        manager.clock.monotonic() - started,
        dict(job.stats),
    )


def verify(
    manager: BackupManager, backup_id: str, *, deep: bool, key: EncryptionKey | None
) -> VerifyResult:
    """See ``BackupManager.verify``."""
    backup = manager.catalog.get(backup_id)
    if backup.status != "completed":
        check = CheckResult("status", False, f"the backup is {backup.status}")
        return VerifyResult(backup_id, False, deep, (check,))
    checks = verify_chain(manager, [backup])
    if deep and all(c.ok for c in checks):
        source = manager.source_of(backup)
        try:
            with source.scratch() as target:
                _, job = prepare(
                    manager, backup_id, target, force=True, key=key, progress=None, options={}
                )
                source.restore(job)
                checks.append(CheckResult("restore", True, f"restored into scratch {target}"))
                checks.extend(source.check(job))
        except BackupError as exc:
            checks.append(CheckResult("restore", False, f"{type(exc).__name__}: {exc}"))
    return VerifyResult(backup_id, all(c.ok for c in checks), deep, tuple(checks))


def clean_wal(manager: BackupManager, kept: list[Backup]) -> int:
    """Delete archived WAL older than the oldest kept base backup of each PITR name."""
    from buttress.backup._pitr import PostgresPITR

    removed = 0
    names = {b.name for b in kept if b.strategy == PostgresPITR.strategy}
    for name in sorted(names):
        bases = [b for b in kept if b.name == name and b.status == "completed"]
        if not bases:
            continue
        source = manager.source_of(min(bases, key=lambda b: b.started_at))
        if isinstance(source, PostgresPITR):
            removed += source.clean_archive([b.id for b in bases])
    return removed


def _ignore(_: int) -> None:
    pass
