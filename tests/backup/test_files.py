"""Files backups: byte-identical restores, incremental and differential chains, deletions,
patterns, checksums that block restores, and destinations that are refused."""

from __future__ import annotations

import os
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from buttress.backup import BackupManager, Files
from buttress.backup._manager import artifact_key
from buttress.errors import BackupError, ChecksumMismatchError, ConfigError
from buttress.testing import ManualClock

from .conftest import make_tree, set_mtime, snapshot


def _restore(manager: BackupManager, backup_id: str, target: Path) -> dict[str, tuple[object, ...]]:
    manager.restore(backup_id, target)
    return snapshot(target)


def test_full_restore_is_byte_identical(
    files_manager: BackupManager, tree: Path, tmp_path: Path
) -> None:
    """A full backup restores every file, mode, nanosecond mtime, directory and symlink."""
    backup = files_manager.create("site", "full")
    assert backup.stats["stored"] == backup.stats["files"] == 6
    assert backup.stats["links"] == 3
    assert _restore(files_manager, backup.id, tmp_path / "out") == snapshot(tree)


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_every_compression_round_trips(
    manager: BackupManager, tree: Path, tmp_path: Path, compression: str
) -> None:
    """zstd, gzip and uncompressed artifacts restore the same tree."""
    manager.configure("site", Files(tree), compression=compression)
    backup = manager.create("site")
    assert backup.compression == compression
    assert _restore(manager, backup.id, tmp_path / "out") == snapshot(tree)


def _change(tree: Path, step: int) -> None:
    (tree / f"new-{step}.txt").write_text(f"added in step {step}")
    (tree / "docs" / "readme.txt").write_text(f"rewritten in step {step}\n")
    set_mtime(tree / "docs" / "readme.txt", 1_650_000_000_000_000_000 + step)


def test_incremental_chain_restores_each_point(
    files_manager: BackupManager, tree: Path, tmp_path: Path, clock: ManualClock
) -> None:
    """full -> inc -> inc: restoring any of them gives the tree exactly as it was then."""
    states = []
    backups = [files_manager.create("site", "full")]
    states.append(snapshot(tree))
    for step in (1, 2):
        clock.advance(60)
        _change(tree, step)
        if step == 2:
            (tree / "empty.txt").unlink()
            shutil.rmtree(tree / "docs" / "deep")
            (tree / "run.sh").chmod(0o700)
        backups.append(files_manager.create("site", "incremental"))
        states.append(snapshot(tree))
    inc1, inc2 = backups[1], backups[2]
    assert inc1.parent == backups[0].id
    assert inc2.parent == inc1.id
    assert inc1.stats["stored"] == 2
    assert inc1.stats["unchanged"] == 5
    assert inc2.stats["deleted"] == 4  # empty.txt, docs/deep, docs/deep/er, its data.bin
    assert inc2.stats["stored"] == 2  # readme rewritten again, new-2 (run.sh: mode only)
    assert inc2.size < backups[0].size
    for i, backup in enumerate(backups):
        assert _restore(files_manager, backup.id, tmp_path / f"out{i}") == states[i]


def test_differential_builds_on_the_last_full(
    files_manager: BackupManager, tree: Path, tmp_path: Path, clock: ManualClock
) -> None:
    """A differential holds everything changed since the full, whatever came in between."""
    full = files_manager.create("site", "full")
    clock.advance(60)
    _change(tree, 1)
    files_manager.create("site", "incremental")
    clock.advance(60)
    _change(tree, 2)
    diff = files_manager.create("site", "differential")
    assert diff.parent == full.id
    assert diff.stats["stored"] == 3  # new-1, new-2, readme
    assert files_manager.chain(diff.id) == [full, diff]
    assert _restore(files_manager, diff.id, tmp_path / "out") == snapshot(tree)


def test_incremental_without_a_full_becomes_full(files_manager: BackupManager) -> None:
    """An incremental asked for before any full is made as a full, and says so."""
    backup = files_manager.create("site", "incremental")
    assert backup.kind == "full"
    assert backup.parent is None
    assert "promoted" in backup.stats


def test_include_and_exclude_patterns(manager: BackupManager, tree: Path, tmp_path: Path) -> None:
    """Excluded paths (and all under an excluded directory) and non-included files are left out."""
    manager.configure(
        "site", Files(tree, include=["*.txt", "docs/*"], exclude=["docs/deep", "secret*"])
    )
    restored = _restore(manager, manager.create("site").id, tmp_path / "out")
    files = {k for k, v in restored.items() if v[0] == "file"}
    assert files == {"docs/readme.txt", "empty.txt", "caf\u00e9 \u2603.txt"}
    assert "docs/deep" not in restored


def test_non_empty_destination_is_refused_unless_forced(
    files_manager: BackupManager, tree: Path, tmp_path: Path
) -> None:
    """A restore into a directory with something in it fails, and force overwrites."""
    backup = files_manager.create("site")
    target = tmp_path / "busy"
    target.mkdir()
    (target / "docs").mkdir()
    (target / "docs" / "readme.txt").write_text("old")
    with pytest.raises(BackupError, match="not empty"):
        files_manager.restore(backup.id, target)
    assert (target / "docs" / "readme.txt").read_text() == "old"
    files_manager.restore(backup.id, target, force=True)
    assert snapshot(target) == snapshot(tree)


def test_flipped_byte_is_caught_by_verify_and_blocks_restore(
    files_manager: BackupManager, tmp_path: Path, flip: Callable[[Path], None]
) -> None:
    """One flipped byte in the data artifact fails verify, and restore writes nothing."""
    backup = files_manager.create("site")
    assert files_manager.verify(backup.id).ok
    flip(tmp_path / "store" / artifact_key(backup, "data.tar"))
    result = files_manager.verify(backup.id)
    assert not result.ok
    assert [c.name for c in result.checks if not c.ok] == [f"{backup.id}/data.tar"]
    target = tmp_path / "out"
    with pytest.raises(ChecksumMismatchError, match=r"data\.tar"):
        files_manager.restore(backup.id, target)
    assert not target.exists() or not any(target.iterdir())


def test_damage_to_a_parent_blocks_an_incremental_restore(
    files_manager: BackupManager, tree: Path, tmp_path: Path, flip: Callable[[Path], None]
) -> None:
    """Every artifact of the chain is verified before a restore starts, not only the last."""
    full = files_manager.create("site")
    _change(tree, 1)
    inc = files_manager.create("site", "incremental")
    flip(tmp_path / "store" / artifact_key(full, "manifest.jsonl"))
    assert files_manager.verify(inc.id).ok  # verify looks at the backup itself
    with pytest.raises(ChecksumMismatchError):
        files_manager.restore(inc.id, tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_deep_verify_restores_and_compares(files_manager: BackupManager) -> None:
    """verify(deep=True) restores into scratch and checks every file against the manifest."""
    backup = files_manager.create("site")
    result = files_manager.verify(backup.id, deep=True)
    assert result.ok
    assert result.deep
    names = [c.name for c in result.checks]
    assert names == [
        f"{backup.id}/data.tar",
        f"{backup.id}/manifest.jsonl",
        "restore",
        "files match the manifest",
    ]
    assert "entries match" in result.checks[-1].detail


def test_special_files_are_skipped_and_counted(manager: BackupManager, tmp_path: Path) -> None:
    """A FIFO is left out of the backup and counted in its stats."""
    root = tmp_path / "fifo-tree"
    root.mkdir()
    (root / "file").write_text("x")
    os.mkfifo(root / "pipe")
    manager.configure("fifo", Files(root))
    backup = manager.create("fifo")
    assert backup.stats["skipped"] == 1
    assert backup.stats["skipped_examples"] == ["pipe"]


def test_bad_options_raise_config_errors(manager: BackupManager, tree: Path) -> None:
    """Bad kinds, patterns, names and compressions name the field."""
    with pytest.raises(ConfigError, match="include"):
        Files(tree, include="*.txt")
    with pytest.raises(ConfigError, match="name"):
        manager.configure("../evil", Files(tree))
    with pytest.raises(ConfigError, match="compression"):
        manager.configure("site", Files(tree), compression="lz4")
    manager.configure("site", Files(tree))
    with pytest.raises(ConfigError, match="kind"):
        manager.create("site", "weekly")
    with pytest.raises(BackupError, match="no source"):
        manager.create("unknown")


def test_a_second_manager_uses_the_stored_source(
    files_manager: BackupManager, tmp_path: Path
) -> None:
    """The catalog remembers the source, so a new manager (another process) backs up by name."""
    files_manager.create("site")
    other = BackupManager(tmp_path / "catalog.db", tmp_path / "store")
    backup = other.create("site", "incremental")
    assert backup.kind == "incremental"
    assert backup.stats["stored"] == 0


def test_many_files_restore(manager: BackupManager, tmp_path: Path) -> None:
    """A wider tree (hundreds of files across directories) restores exactly."""
    root = tmp_path / "wide"
    for d in range(12):
        folder = root / f"d{d:02d}" / "sub"
        folder.mkdir(parents=True)
        for f in range(25):
            (folder / f"f{f:03d}.dat").write_bytes(os.urandom(d * 100 + f))
    make_tree(root / "mixed")
    manager.configure("wide", Files(root))
    full = manager.create("wide")
    assert full.stats["files"] == 306
    assert _restore(manager, full.id, tmp_path / "out") == snapshot(root)


def test_damaged_reference_fails_the_incremental(
    files_manager: BackupManager, tmp_path: Path, flip: Callable[[Path], None]
) -> None:
    """An incremental never builds on a damaged parent: the backup fails and is recorded so."""
    full = files_manager.create("site")
    flip(tmp_path / "store" / artifact_key(full, "manifest.jsonl"))
    with pytest.raises(BackupError):
        files_manager.create("site", "incremental")
    assert [b.status for b in files_manager.list("site")] == ["completed", "failed"]
