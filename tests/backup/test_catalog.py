"""The catalog records what the issue lists, the stream layer checks what it reads, and the
local destination writes atomically."""

from __future__ import annotations

import contextlib
import hashlib
import io
import os
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest

from buttress.backup import Artifact, BackupManager, Catalog, EncryptionKey, Files, LocalDestination
from buttress.backup._manager import artifact_key
from buttress.backup._reader import read_artifact
from buttress.backup._stream import write_artifact
from buttress.errors import BackupError, ChecksumMismatchError
from buttress.testing import ManualClock, RecordingListener


def test_backup_record_has_every_field(
    manager: BackupManager, tree: Path, tmp_path: Path, clock: ManualClock
) -> None:
    """id, name, kind, strategy, parent, start and end, size, SHA-256 of every artifact,
    key id, status and retention tags are in the catalog, and survive a reopen."""
    key = EncryptionKey(os.urandom(32))
    manager.configure("site", Files(tree), key=key)
    full = manager.create("site", tags=["pinned"])
    clock.advance(5)
    inc = manager.create("site", "incremental", retention=86_400)
    record = Catalog(tmp_path / "catalog.db").get(inc.id)
    assert record == inc
    assert (record.name, record.kind, record.strategy, record.status) == (
        "site",
        "incremental",
        "files",
        "completed",
    )
    assert record.parent == full.id
    assert record.key_id == key.id
    assert record.started_at == 1_700_000_005.0
    assert record.finished_at is not None
    assert record.keep_until == record.started_at + 86_400
    assert Catalog(tmp_path / "catalog.db").get(full.id).tags == ("pinned",)
    for artifact in record.artifacts:
        stored = (tmp_path / "store" / artifact_key(record, artifact.name)).read_bytes()
        assert hashlib.sha256(stored).hexdigest() == artifact.sha256
        assert len(stored) == artifact.size
    assert record.size == sum(a.size for a in record.artifacts)
    data = record.to_dict()
    assert data["artifacts"][0]["sha256"]
    assert data["stats"]["source"]["root"] == str(tree)


def test_list_latest_and_names(manager: BackupManager, tree: Path, clock: ManualClock) -> None:
    """list is oldest first, per name; latest picks the newest completed of the kinds asked."""
    manager.configure("a", Files(tree))
    manager.configure("b", Files(tree))
    first = manager.create("a")
    clock.advance(1)
    manager.create("b")
    clock.advance(1)
    inc = manager.create("a", "incremental")
    assert [b.id for b in manager.list("a")] == [first.id, inc.id]
    assert manager.catalog.latest("a") == inc
    assert manager.catalog.latest("a", kinds=("full",)) == first
    assert manager.catalog.names() == ["a", "b"]
    with pytest.raises(BackupError, match="no backup"):
        manager.show("missing")


def test_events_for_completed_and_failed_backups(
    manager: BackupManager, tree: Path, tmp_path: Path
) -> None:
    """A completed backup emits backup.completed; a failed one backup.failed, and its partial
    artifacts are removed."""
    manager.configure("site", Files(tree))
    manager.configure("gone", Files(tmp_path / "nothing-here"))
    with RecordingListener() as events:
        manager.create("site")
        with pytest.raises(BackupError):
            manager.create("gone")
    assert events.kinds() == ["backup.completed", "backup.failed"]
    assert not list(manager.destination.keys("gone/"))


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
@pytest.mark.parametrize("encrypted", [False, True])
@pytest.mark.parametrize("size", [0, 1, (1 << 20) - 1, (3 << 20) + 5])
def test_artifact_round_trip(tmp_path: Path, compression: str, encrypted: bool, size: int) -> None:
    """Any size, through every compression, with and without encryption, reads back whole."""
    dest = LocalDestination(tmp_path)
    key = EncryptionKey(bytes(32)) if encrypted else None
    data = (os.urandom(1000) + b"compressible " * 500) * (size // 7500 + 1)
    data = data[:size]
    got: list[Artifact] = []
    with write_artifact(
        dest, "x/a", "a", compression=compression, encryption=key, done=got.append
    ) as w:
        for i in range(0, len(data), 300_001):
            w.write(data[i : i + 300_001])
    (artifact,) = got
    with read_artifact(
        dest, "x/a", artifact, compression=compression, encryption=key, encrypted=encrypted
    ) as r:
        assert r.read() == data


def test_truncated_artifact_is_a_checksum_mismatch(tmp_path: Path) -> None:
    """A stored object cut short is reported as a checksum mismatch, not as a codec error."""
    dest = LocalDestination(tmp_path)
    got: list[Artifact] = []
    with write_artifact(dest, "t", "t", compression="zstd", encryption=None, done=got.append) as w:
        w.write(os.urandom(200_000))
    path = tmp_path / "t"
    path.write_bytes(path.read_bytes()[:-100])
    with (
        pytest.raises(ChecksumMismatchError),
        read_artifact(dest, "t", got[0], compression="zstd", encryption=None, encrypted=False) as r,
    ):
        r.read()


def test_failed_write_leaves_no_object(tmp_path: Path) -> None:
    """An exception while writing leaves neither the object nor a temporary file."""
    dest = LocalDestination(tmp_path)

    def write_then_fail() -> None:
        with write_artifact(
            dest, "dir/obj", "obj", compression="zstd", encryption=None, done=lambda a: None
        ) as w:
            w.write(b"partial" * 1000)
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError):
        write_then_fail()
    assert list(dest.keys()) == []
    assert [p.name for p in tmp_path.rglob("*") if p.is_file()] == []


def test_destination_keys_are_checked(tmp_path: Path) -> None:
    """Keys that would leave the destination's root are refused."""
    dest = LocalDestination(tmp_path / "root")
    for key in ("../x", "/abs", "a//b", "a/./b", ""):
        with pytest.raises(BackupError, match="invalid object key"):
            dest.exists(key)


def test_drill_history_round_trip(manager: BackupManager, tree: Path, clock: ManualClock) -> None:
    """Drill results are stored with their checks and come back newest first."""
    manager.configure("site", Files(tree))
    manager.create("site")
    first = manager.drill("site")
    clock.advance(10)
    second = manager.drill("site", files=["missing.txt"])
    history = manager.drills("site")
    assert [d.id for d in history] == [second.id, first.id]
    assert history[0] == second
    assert not second.ok
    assert first.ok
    assert history[1].checks == first.checks


class _FailingDestination(LocalDestination):
    """A local destination whose writes fail once ``limit`` bytes are written (a full disk)."""

    def __init__(self, root: Path, limit: int) -> None:
        super().__init__(root)
        self.limit = limit

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        limit = self.limit

        class Full(io.RawIOBase):
            written = 0

            def writable(self) -> bool:
                return True

            def write(self, data: Any) -> int:
                self.written += len(data)
                if self.written > limit:
                    raise OSError(28, "No space left on device")
                return len(data)

        yield Full()  # type: ignore[misc]


def test_storage_failure_surfaces_and_nothing_hangs(tmp_path: Path) -> None:
    """A write error in the storage stage reaches the producer as the original error."""
    dest = _FailingDestination(tmp_path, limit=100_000)

    def write_lots() -> None:
        with write_artifact(
            dest, "x", "x", compression="none", encryption=None, done=lambda a: None
        ) as w:
            for _ in range(64):
                w.write(os.urandom(1 << 20))

    with pytest.raises(OSError, match="No space left"):
        write_lots()
