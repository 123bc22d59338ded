"""What the catalog records and what operations return: plain frozen dataclasses.

Every result has ``to_dict()`` giving JSON-ready data, which the CLI's ``--json``, the admin
API and the dashboard use as they are.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Literal

from buttress.errors import ConfigError

__all__ = [
    "KINDS",
    "Artifact",
    "Backup",
    "BackupKind",
    "CheckResult",
    "DrillResult",
    "PruneResult",
    "RestoreResult",
    "VerifyResult",
    "check_name",
]

BackupKind = Literal["full", "incremental", "differential"]
BackupStatus = Literal["running", "completed", "failed"]
KINDS: tuple[BackupKind, ...] = ("full", "incremental", "differential")

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,62}\Z")


def check_name(field_name: str, value: object) -> str:
    """A backup name: 1 to 63 letters, digits, ``_ . -``, starting with a letter or digit
    (names become directory names at the destination)."""
    if not isinstance(value, str) or not _NAME.match(value):
        raise ConfigError(
            field_name, value, "must be 1-63 of A-Z a-z 0-9 _ . - starting with a letter or digit"
        )
    return value


@dataclass(frozen=True, slots=True)
class Artifact:
    """One stored object of a backup: its name, stored size in bytes and SHA-256 (hex)."""

    name: str
    size: int
    sha256: str

    def to_dict(self) -> dict[str, Any]:
        """The artifact as plain data."""
        return {"name": self.name, "size": self.size, "sha256": self.sha256}


@dataclass(frozen=True, slots=True)
class Backup:
    """A catalog record: one backup of ``name`` made by ``strategy``.

    ``parent`` is the backup an incremental or differential builds on (None for a full);
    ``data_time`` is the wall-clock time of the newest data it holds (its consistency point);
    ``size`` is the stored bytes of all artifacts; ``key_id`` identifies the encryption key
    (a hash, never the key); ``keep_until`` protects it from pruning until then.
    """

    id: str
    name: str
    kind: BackupKind
    strategy: str
    status: BackupStatus
    started_at: float
    finished_at: float | None = None
    parent: str | None = None
    size: int = 0
    artifacts: tuple[Artifact, ...] = ()
    key_id: str | None = None
    compression: str = "zstd"
    data_time: float | None = None
    keep_until: float | None = None
    tags: tuple[str, ...] = ()
    stats: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)
    error: str | None = None

    @property
    def duration(self) -> float | None:
        """Seconds from start to end, or None while running."""
        return None if self.finished_at is None else self.finished_at - self.started_at

    def artifact(self, name: str) -> Artifact:
        """The artifact called ``name`` (KeyError if the backup has none)."""
        for artifact in self.artifacts:
            if artifact.name == name:
                return artifact
        raise KeyError(name)

    def to_dict(self) -> dict[str, Any]:
        """The record as plain data (times as epoch seconds)."""
        return {
            "id": self.id,
            "name": self.name,
            "kind": self.kind,
            "strategy": self.strategy,
            "status": self.status,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "duration_seconds": self.duration,
            "parent": self.parent,
            "size": self.size,
            "artifacts": [a.to_dict() for a in self.artifacts],
            "key_id": self.key_id,
            "compression": self.compression,
            "data_time": self.data_time,
            "keep_until": self.keep_until,
            "tags": list(self.tags),
            "stats": dict(self.stats),
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class CheckResult:
    """One check of a verification or drill: what was checked, whether it held, and details."""

    name: str
    ok: bool
    detail: str = ""

    def to_dict(self) -> dict[str, Any]:
        """The check as plain data."""
        return {"name": self.name, "ok": self.ok, "detail": self.detail}


@dataclass(frozen=True, slots=True)
class VerifyResult:
    """What ``verify`` found: every artifact of the backup (and, deep, the restored copy)."""

    backup_id: str
    ok: bool
    deep: bool
    checks: tuple[CheckResult, ...]

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data."""
        return {
            "backup_id": self.backup_id,
            "ok": self.ok,
            "deep": self.deep,
            "checks": [c.to_dict() for c in self.checks],
        }


@dataclass(frozen=True, slots=True)
class RestoreResult:
    """A finished restore: the chain of backups applied (full first), where, and how long."""

    backup_id: str
    chain: tuple[str, ...]
    target: str
    seconds: float
    stats: dict[str, Any] = field(default_factory=dict, hash=False, compare=False)

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data."""
        return {
            "backup_id": self.backup_id,
            "chain": list(self.chain),
            "target": self.target,
            "seconds": self.seconds,
            "stats": dict(self.stats),
        }


@dataclass(frozen=True, slots=True)
class DrillResult:
    """One restore drill: ``rto_seconds`` is the measured recovery time (restore and checks);
    ``rpo_seconds`` the age of the newest restored data when the drill began."""

    name: str
    backup_id: str | None
    started_at: float
    finished_at: float
    ok: bool
    rto_seconds: float | None
    rpo_seconds: float | None
    checks: tuple[CheckResult, ...] = ()
    error: str | None = None
    id: int | None = None

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data."""
        return {
            "id": self.id,
            "name": self.name,
            "backup_id": self.backup_id,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "ok": self.ok,
            "rto_seconds": self.rto_seconds,
            "rpo_seconds": self.rpo_seconds,
            "checks": [c.to_dict() for c in self.checks],
            "error": self.error,
        }


@dataclass(frozen=True, slots=True)
class PruneResult:
    """What ``prune`` deleted (or, with ``dry_run``, would delete) and why the rest stays."""

    dry_run: bool
    deleted: tuple[str, ...]
    kept: dict[str, tuple[str, ...]] = field(default_factory=dict, hash=False, compare=False)
    freed_bytes: int = 0
    wal_deleted: int = 0

    def to_dict(self) -> dict[str, Any]:
        """The result as plain data: ``kept`` maps each kept id to its reasons."""
        return {
            "dry_run": self.dry_run,
            "deleted": list(self.deleted),
            "kept": {k: list(v) for k, v in self.kept.items()},
            "freed_bytes": self.freed_bytes,
            "wal_deleted": self.wal_deleted,
        }
