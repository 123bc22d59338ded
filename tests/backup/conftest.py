"""Trees of files to back up, a way to compare trees exactly, and a manager on a manual clock."""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Callable
from pathlib import Path

import pytest

from buttress.backup import BackupManager, Files
from buttress.testing import ManualClock

Snapshot = dict[str, tuple[object, ...]]


def snapshot(root: Path) -> Snapshot:
    """Every path under ``root``: type, mode, mtime (ns), and content hash or link target."""
    out: Snapshot = {}
    for directory, dirs, files in os.walk(root):
        for name in dirs + files:
            path = Path(directory) / name
            rel = path.relative_to(root).as_posix()
            st = path.lstat()
            mode = stat.S_IMODE(st.st_mode)
            if stat.S_ISLNK(st.st_mode):
                out[rel] = ("link", os.readlink(path), st.st_mtime_ns)
            elif stat.S_ISDIR(st.st_mode):
                out[rel] = ("dir", mode, st.st_mtime_ns)
            else:
                digest = hashlib.sha256(path.read_bytes()).hexdigest()
                out[rel] = ("file", mode, st.st_mtime_ns, st.st_size, digest)
    return out


def set_mtime(path: Path, ns: int) -> None:
    """Set ``path``'s mtime (and atime) to ``ns``, without following a symbolic link."""
    os.utime(path, ns=(ns, ns), follow_symlinks=False)


def make_tree(root: Path) -> Path:
    """A small tree with the awkward cases: modes, nanosecond mtimes, links, empty things."""
    root.mkdir(parents=True, exist_ok=True)
    (root / "docs" / "deep" / "er").mkdir(parents=True)
    (root / "empty-dir").mkdir()
    (root / "docs" / "readme.txt").write_text("hello world\n" * 100)
    (root / "docs" / "deep" / "er" / "data.bin").write_bytes(os.urandom(3 * (1 << 20) + 17))
    (root / "empty.txt").write_bytes(b"")
    (root / "caf\u00e9 \u2603.txt").write_text("unicode name")
    script = root / "run.sh"
    script.write_text("#!/bin/sh\necho hi\n")
    script.chmod(0o750)
    secret = root / "docs" / "secret.txt"
    secret.write_text("private")
    secret.chmod(0o600)
    os.symlink("docs/readme.txt", root / "link-relative")
    os.symlink("/etc/hostname", root / "link-absolute")
    os.symlink("missing-target", root / "link-dangling")
    for i, path in enumerate(sorted(root.rglob("*"), reverse=True)):
        set_mtime(path, 1_600_000_000_123_456_789 + i * 1_000_000_007)
    (root / "docs").chmod(0o750)
    return root


@pytest.fixture
def clock() -> ManualClock:
    """A manual clock at a fixed wall time."""
    return ManualClock(wall=1_700_000_000.0)


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """A fresh sample tree."""
    return make_tree(tmp_path / "source")


@pytest.fixture
def manager(tmp_path: Path, clock: ManualClock) -> BackupManager:
    """A manager with its catalog and artifacts under the test's directory."""
    return BackupManager(tmp_path / "catalog.db", tmp_path / "store", clock=clock)


@pytest.fixture
def files_manager(manager: BackupManager, tree: Path) -> BackupManager:
    """The manager with the sample tree configured as ``site``."""
    manager.configure("site", Files(tree))
    return manager


@pytest.fixture
def flip() -> Callable[[Path], None]:
    """Flip one byte in the middle of a stored file."""

    def flip_byte(path: Path) -> None:
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0xFF
        path.write_bytes(bytes(data))

    return flip_byte
