"""Events of backups and drills; a failed drill is an alert (level ERROR)."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import ClassVar

from buttress import events

__all__ = ["BackupCompleted", "BackupFailed", "DrillCompleted", "DrillFailed", "announce"]


@dataclass(frozen=True, slots=True)
class BackupCompleted(events.Event):
    """Backup ``backup_id`` of ``source`` (the backup name) completed."""

    kind: ClassVar[str] = "backup.completed"
    level: ClassVar[int] = logging.INFO

    backup_id: str
    backup_kind: str
    size: int
    seconds: float

    def message(self) -> str:
        return (
            f"backup {self.source!r}: {self.backup_kind} {self.backup_id} completed, "
            f"{self.size} bytes in {self.seconds:.1f}s"
        )


@dataclass(frozen=True, slots=True)
class BackupFailed(events.Event):
    """Backup ``backup_id`` of ``source`` failed with ``error``."""

    kind: ClassVar[str] = "backup.failed"
    level: ClassVar[int] = logging.ERROR

    backup_id: str
    error: str

    def message(self) -> str:
        return f"backup {self.source!r}: {self.backup_id} failed: {self.error}"


@dataclass(frozen=True, slots=True)
class DrillCompleted(events.Event):
    """A restore drill of ``source`` passed: recovery took ``rto_seconds``; the newest
    restored data was ``rpo_seconds`` old."""

    kind: ClassVar[str] = "drill.completed"
    level: ClassVar[int] = logging.INFO

    backup_id: str
    rto_seconds: float
    rpo_seconds: float | None

    def message(self) -> str:
        rpo = "unknown" if self.rpo_seconds is None else f"{self.rpo_seconds:.0f}s"
        return (
            f"drill {self.source!r}: restored {self.backup_id} in {self.rto_seconds:.1f}s "
            f"(RTO); data age {rpo} (RPO)"
        )


@dataclass(frozen=True, slots=True)
class DrillFailed(events.Event):
    """An alert: a restore drill of ``source`` failed; ``error`` says which step."""

    kind: ClassVar[str] = "drill.failed"
    level: ClassVar[int] = logging.ERROR

    backup_id: str | None
    error: str

    def message(self) -> str:
        which = self.backup_id or "no backup"
        return f"ALERT drill {self.source!r}: restore of {which} failed: {self.error}"


def announce(event: events.Event) -> None:
    """Emit ``event`` if anyone listens."""
    if events.wants(type(event)):
        events.emit(event)
