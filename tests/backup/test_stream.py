"""The artifact writer's reused blocks, and the file hashes a full backup takes from the
previous backup instead of computing them."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from buttress.backup import Artifact, BackupManager, Files, LocalDestination
from buttress.backup._manager import artifact_key
from buttress.backup._reader import read_artifact
from buttress.backup._stream import BLOCK, DEPTH, write_artifact
from buttress.testing import ManualClock

from .conftest import set_mtime, snapshot

_CHUNKS = st.lists(
    st.tuples(st.booleans(), st.integers(min_value=0, max_value=3 * BLOCK // 2)), max_size=12
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(chunks=_CHUNKS, compression=st.sampled_from(["zstd", "gzip", "none"]))
def test_writes_and_filled_blocks_round_trip(
    tmp_path: Path, chunks: list[tuple[bool, int]], compression: str
) -> None:
    """Any mix of ``write(data)`` and filling ``space()`` then ``advance(n)``, of any sizes,
    stores exactly the bytes written, in order, with at most DEPTH + 2 blocks allocated."""
    dest = LocalDestination(tmp_path / "store")
    expected = bytearray()
    got: list[Artifact] = []
    with write_artifact(
        dest, "k", "k", compression=compression, encryption=None, done=got.append
    ) as writer:
        for index, (direct, size) in enumerate(chunks):
            data = bytes([index % 251]) * (size // 2) + os.urandom(size - size // 2)
            expected += data
            if not direct:
                writer.write(data)
                continue
            view = memoryview(data)
            while view:
                space = writer.space()
                n = min(len(space), len(view))
                space[:n] = view[:n]
                space.release()
                writer.advance(n)
                view = view[n:]
        assert writer.tell() == len(expected)
        assert writer._pool._made <= DEPTH + 2
    (artifact,) = got
    with read_artifact(
        dest, "k", artifact, compression=compression, encryption=None, encrypted=False
    ) as reader:
        assert reader.read() == bytes(expected)


def _file_hashes(manager: BackupManager, backup_id: str) -> dict[str, str]:
    from buttress.backup._manifest import read_manifest

    backup = manager.show(backup_id)
    with manager.open_artifact(backup, "manifest.jsonl") as reader:
        return {e.path: e.sha256 or "" for e in read_manifest(reader) if e.type == "f"}


def _tree(root: Path) -> Path:
    (root / "sub").mkdir(parents=True)
    for index in range(5):
        (root / "sub" / f"f{index}.bin").write_bytes(os.urandom(20_000 + index))
    (root / "big.bin").write_bytes(os.urandom(BLOCK + 123))
    return root


def _wait_past(moment: float) -> None:
    """Poll in short steps until the wall clock (and so new ctimes) is past ``moment``."""
    while time.time() <= moment:
        time.sleep(0.005)


def test_full_backup_takes_hashes_of_files_unchanged_since_the_previous_one(
    tmp_path: Path,
) -> None:
    """A full after a backup reuses the hashes of files whose size and mtime are the same and
    whose ctime is older than that backup's start; a file rewritten with its size and mtime
    put back has a new ctime and is hashed again. Every hash matches the content: a deep
    verify and a restore agree with the source."""
    tree = _tree(tmp_path / "src")
    created = time.time()
    # The first backup "starts" just over a second after the files were written, so that
    # they are older than its start minus the one-second margin.
    clock = ManualClock(wall=created + 1.02)
    manager = BackupManager(tmp_path / "catalog.db", tmp_path / "store", clock=clock)
    manager.configure("site", Files(tree))
    first = manager.create("site")
    assert first.stats["hashes_reused"] == 0
    _wait_past(created + 0.03)  # a write now gets a ctime after the first backup's cutoff
    victim = tree / "sub" / "f2.bin"
    before = victim.stat()
    victim.write_bytes(os.urandom(before.st_size))
    set_mtime(victim, before.st_mtime_ns)  # size and mtime as before: only ctime tells
    clock.advance(60)
    second = manager.create("site")
    assert second.kind == "full"
    assert second.stats["hashes_reused"] == second.stats["files"] - 1 == 5
    hashes = _file_hashes(manager, second.id)
    for path, digest in hashes.items():
        assert digest == hashlib.sha256((tree / path).read_bytes()).hexdigest(), path
    assert manager.verify(second.id, deep=True).ok
    manager.restore(second.id, tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(tree)


def test_a_damaged_previous_manifest_means_every_hash_is_computed(
    tmp_path: Path, flip: Callable[[Path], None]
) -> None:
    """When the previous backup's manifest does not check out, the full backup computes
    every hash itself and succeeds."""
    tree = _tree(tmp_path / "src")
    clock = ManualClock(wall=time.time() + 3600)
    manager = BackupManager(tmp_path / "catalog.db", tmp_path / "store", clock=clock)
    manager.configure("site", Files(tree))
    first = manager.create("site")
    flip(tmp_path / "store" / artifact_key(first, "manifest.jsonl"))
    clock.advance(60)
    second = manager.create("site")
    assert second.status == "completed"
    assert second.stats["hashes_reused"] == 0
    assert manager.verify(second.id, deep=True).ok


@pytest.mark.parametrize("kind", ["incremental", "differential"])
def test_chained_backups_take_nothing_from_the_hint(tmp_path: Path, kind: str) -> None:
    """Incrementals and differentials keep their own rule (unchanged files are not stored
    again); hashes are taken only by full backups."""
    tree = _tree(tmp_path / "src")
    clock = ManualClock(wall=time.time() + 3600)
    manager = BackupManager(tmp_path / "catalog.db", tmp_path / "store", clock=clock)
    manager.configure("site", Files(tree))
    manager.create("site")
    (tree / "new.txt").write_text("new")
    clock.advance(60)
    chained = manager.create("site", kind)
    assert chained.stats["hashes_reused"] == 0
    assert chained.stats["stored"] == 1
    assert chained.stats["unchanged"] == 6
