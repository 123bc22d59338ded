"""Drills restore the latest backup into scratch, check it, and record RTO and RPO; a failing
drill raises an alert event; the WAL archive stores, refuses and fetches segments safely."""

from __future__ import annotations

import os
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from buttress.backup import BackupManager, DrillFailed, EncryptionKey, WalArchive
from buttress.backup._drill import to_epoch
from buttress.backup._manager import artifact_key
from buttress.errors import BackupError, ChecksumMismatchError, DecryptionError
from buttress.testing import ManualClock, RecordingListener

SEGMENT = "000000010000000000000003"


def test_drill_restores_latest_and_measures(
    files_manager: BackupManager, tree: Path, clock: ManualClock
) -> None:
    """A passing drill restores the newest backup (its chain), checks files, and records
    RPO = drill start - the backup's consistency point."""
    files_manager.create("site")
    clock.advance(3600)
    (tree / "later.txt").write_text("later")
    inc = files_manager.create("site", "incremental")
    clock.advance(600)
    with RecordingListener() as events:
        result = files_manager.drill("site", files=["later.txt", "docs/readme.txt"])
    assert result.ok, result.error
    assert result.backup_id == inc.id
    assert result.rpo_seconds == pytest.approx(600.0)
    assert result.rto_seconds == 0.0  # the manual clock did not move during the drill
    names = [c.name for c in result.checks]
    assert names == [
        "restore",
        "files match the manifest",
        "file later.txt",
        "file docs/readme.txt",
    ]
    assert events.kinds() == ["drill.completed"]


def test_failed_drill_is_recorded_and_alerts(
    files_manager: BackupManager, tmp_path: Path, flip: Callable[[Path], None]
) -> None:
    """A damaged latest backup fails the drill: recorded with the error, drill.failed emitted."""
    backup = files_manager.create("site")
    flip(tmp_path / "store" / artifact_key(backup, "data.tar"))
    with RecordingListener() as events:
        result = files_manager.drill("site")
    assert not result.ok
    assert "ChecksumMismatchError" in (result.error or "")
    (alert,) = events.of(DrillFailed)
    assert alert.source == "site"
    assert alert.backup_id == backup.id
    assert "ALERT" in alert.message()
    assert files_manager.drills("site")[0].error == result.error


def test_drill_without_backups_fails(manager: BackupManager) -> None:
    """A drill of a name with no completed backup fails and says why."""
    result = manager.drill("never")
    assert not result.ok
    assert "no completed backup" in (result.error or "")


def test_to_epoch_reads_query_results() -> None:
    """Freshness values may be numbers, Decimals, datetimes (naive = UTC), dates or ISO text."""
    moment = datetime(2024, 1, 2, 3, 4, 5, tzinfo=UTC)
    assert to_epoch(moment) == moment.timestamp()
    assert to_epoch(moment.replace(tzinfo=None)) == moment.timestamp()
    assert to_epoch("2024-01-02T03:04:05Z") == moment.timestamp()
    assert to_epoch(Decimal("12.5")) == 12.5
    assert to_epoch(date(2024, 1, 2)) == datetime(2024, 1, 2, tzinfo=UTC).timestamp()
    with pytest.raises(BackupError):
        to_epoch(object())


@pytest.mark.parametrize("key", [None, EncryptionKey(bytes(range(32)))])
def test_wal_push_fetch_round_trip(tmp_path: Path, key: EncryptionKey | None) -> None:
    """A pushed segment fetches back byte for byte; a missing one is reported as missing."""
    archive = WalArchive(tmp_path / "wal", key=key)
    segment = tmp_path / SEGMENT
    segment.write_bytes(os.urandom(1 << 16) + bytes(1 << 20))
    assert archive.push(segment, SEGMENT) is True
    assert archive.push(segment, SEGMENT) is False  # same content again: fine
    out = tmp_path / "pg_wal" / "RECOVERYXLOG"
    out.parent.mkdir()
    assert archive.fetch(SEGMENT, out) is True
    assert out.read_bytes() == segment.read_bytes()
    assert archive.fetch("000000010000000000000004", out) is False
    assert archive.names() == [SEGMENT]


def test_wal_push_refuses_different_content(tmp_path: Path) -> None:
    """Archiving a name again with other content fails (PostgreSQL's archive rule)."""
    archive = WalArchive(tmp_path / "wal")
    segment = tmp_path / SEGMENT
    segment.write_bytes(b"a" * 1000)
    archive.push(segment, SEGMENT)
    segment.write_bytes(b"b" * 1000)
    with pytest.raises(BackupError, match="different content"):
        archive.push(segment, SEGMENT)
    with pytest.raises(BackupError, match="not a WAL file name"):
        archive.push(segment, "../../etc/passwd")


def test_wal_fetch_checks_before_writing(tmp_path: Path, flip: Callable[[Path], None]) -> None:
    """A damaged archived segment is refused and nothing is written at the target path;
    an encrypted archive read without its key is refused too."""
    archive = WalArchive(tmp_path / "wal", key=EncryptionKey(bytes(32)))
    segment = tmp_path / SEGMENT
    segment.write_bytes(os.urandom(100_000))
    archive.push(segment, SEGMENT)
    with pytest.raises(DecryptionError):
        WalArchive(tmp_path / "wal").fetch(SEGMENT, tmp_path / "plain")
    flip(tmp_path / "wal" / f"{SEGMENT}.zst.enc")
    with pytest.raises(ChecksumMismatchError):
        archive.fetch(SEGMENT, tmp_path / "out")
    assert not (tmp_path / "out").exists()
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []


def test_wal_cleanup_keeps_history_and_newer(tmp_path: Path) -> None:
    """cleanup(before) deletes older segments (any timeline), keeps newer ones and history."""
    archive = WalArchive(tmp_path / "wal", compression="none")
    src = tmp_path / "f"
    src.write_bytes(b"x")
    names = [
        "000000010000000000000001",
        "000000010000000000000002",
        "000000020000000000000002",
        "000000010000000000000003",
        "00000002.history",
        "000000010000000000000002.00000028.backup",
    ]
    for name in names:
        archive.push(src, name)
    assert archive.cleanup("000000020000000000000003") == 4
    assert archive.names() == ["000000010000000000000003", "00000002.history"]
