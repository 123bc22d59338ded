"""Managed temporary paths: removed on exit, on error, at interpreter exit, and by the cleanup."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from buttress.errors import ConfigError
from buttress.resources import (
    TempPath,
    cleanup_temp,
    default_root,
    temp_directory,
    temp_file,
)
from buttress.resources._temp import _prefix, _remove_all, owner_of
from buttress.testing import ManualClock

CHILD = """
import os, signal, sys
from buttress.resources import temp_directory, temp_file
directory = temp_directory("work", root=sys.argv[1])
(directory.path / "partial.csv").write_text("1,2")
file = temp_file("out", suffix=".json", root=sys.argv[1])
print(directory.path, flush=True)
print(file.path, flush=True)
if sys.argv[2] == "kill":
    os.kill(os.getpid(), signal.SIGKILL)
"""


def child(root: Path, how: str) -> list[Path]:
    """Run a child that makes a directory and a file, then exits (`exit`) or is killed."""
    proc = subprocess.run(
        [sys.executable, "-c", CHILD, str(root), how], capture_output=True, text=True, check=False
    )
    assert proc.returncode == (-9 if how == "kill" else 0), proc.stderr
    return [Path(line) for line in proc.stdout.split()]


def test_directory_is_removed_when_the_block_ends(root: Path) -> None:
    """A managed directory exists (0700, named with our pid) inside `with`, gone after."""
    with temp_directory("job", root=root) as path:
        assert path.is_dir()
        assert path.stat().st_mode & 0o777 == 0o700
        assert path.parent == root
        assert path.name.startswith(f"bt-{os.getpid()}-")
        assert "-job-" in path.name
        (path / "nested").mkdir()
        (path / "nested" / "data").write_text("x")
    assert not path.exists()


def test_file_is_removed_even_on_error(root: Path) -> None:
    """A managed file (0600, with its suffix) is removed when the block ends by an error."""
    seen: list[Path] = []

    def work() -> None:
        with temp_file("dump", suffix=".sql", root=root) as path:
            seen.append(path)
            assert path.is_file()
            assert path.name.endswith(".sql")
            assert path.stat().st_mode & 0o777 == 0o600
            raise RuntimeError("boom")

    with pytest.raises(RuntimeError, match="boom"):
        work()
    assert len(seen) == 1
    assert not seen[0].exists()


def test_remove_is_idempotent_and_the_path_is_path_like(root: Path) -> None:
    """A TempPath works with os functions; remove() twice is harmless."""
    managed = temp_file(root=root)
    assert isinstance(managed, TempPath)
    assert os.path.exists(managed)
    managed.remove()
    managed.remove()
    assert managed.removed
    assert not managed.path.exists()


def test_paths_are_removed_at_interpreter_exit(root: Path) -> None:
    """A process that exits normally without removing its paths leaves nothing behind."""
    made = child(root, "exit")
    assert len(made) == 2
    assert not any(path.exists() for path in made)


def test_cleanup_removes_what_a_killed_process_left(root: Path) -> None:
    """After SIGKILL the paths remain; cleanup_temp removes them (owner dead), young as they are."""
    made = child(root, "kill")
    assert all(path.exists() for path in made)
    with temp_directory("mine", root=root) as mine:
        removed = cleanup_temp(root=root, max_age=None)
        assert sorted(removed) == sorted(made)
        assert mine.exists()  # ours: owner alive, still managed
    assert not any(path.exists() for path in made)
    assert cleanup_temp(root=root) == []


def test_cleanup_removes_old_paths_of_live_owners(root: Path) -> None:
    """A leftover whose owner pid is alive is removed only once older than max_age."""
    root.mkdir()
    created = 1_700_000_000.0
    leftover = root / f"bt-{os.getpid()}-{int(created * 1000)}-old-abc"
    leftover.mkdir()
    young = ManualClock(wall=created + 60)
    assert cleanup_temp(root=root, max_age=120, clock=young) == []
    old = ManualClock(wall=created + 121)
    assert cleanup_temp(root=root, max_age=120, clock=old) == [leftover]
    assert not leftover.exists()


def test_cleanup_keeps_paths_this_process_manages(root: Path) -> None:
    """However old, a path this process still manages is not removed by the cleanup."""
    managed = temp_file(root=root, clock=ManualClock(wall=1_000.0))
    try:
        assert cleanup_temp(root=root, max_age=1) == []
        assert managed.path.exists()
    finally:
        managed.remove()


def test_cleanup_leaves_foreign_names_alone(root: Path) -> None:
    """Files under the root that are not named by us are never touched."""
    root.mkdir()
    (root / "notes.txt").write_text("keep")
    (root / "bt-notanumber-1-x").write_text("keep")
    assert cleanup_temp(root=root, max_age=None) == []
    assert cleanup_temp(root=root / "missing") == []
    assert (root / "notes.txt").exists()


def test_forked_child_leaves_the_parents_paths(root: Path) -> None:
    """The exit hook in a forked child removes nothing of its parent's."""
    with temp_directory(root=root) as path:
        pid = os.fork()
        if pid == 0:  # pragma: no cover - the child
            _remove_all()
            os._exit(0)
        os.waitpid(pid, 0)
        assert path.exists()


def test_symlinked_root_is_refused(tmp_path: Path) -> None:
    """A root that is a symlink (a classic /tmp attack) raises ConfigError naming `root`."""
    target = tmp_path / "elsewhere"
    target.mkdir()
    link = tmp_path / "link"
    link.symlink_to(target)
    with pytest.raises(ConfigError, match="root"):
        temp_directory(root=link)


def test_bad_arguments_are_refused(root: Path) -> None:
    """A suffix with a slash and a negative max_age raise ConfigError naming the field."""
    with pytest.raises(ConfigError, match="suffix"):
        temp_file(suffix="/../x", root=root)
    with pytest.raises(ConfigError, match="max_age"):
        cleanup_temp(root=root, max_age=-1)


def test_default_root_is_per_user() -> None:
    """The default root is under the system temp directory and names the user id."""
    assert default_root().name == f"buttress-{os.getuid()}"


@given(label=st.text(max_size=60), wall=st.floats(min_value=0, max_value=4e9))
def test_names_carry_owner_and_creation_time(label: str, wall: float) -> None:
    """Whatever the label, a managed name parses back to this pid and its creation time (ms)."""
    name = _prefix(label, ManualClock(wall=wall)) + "rand0m"
    assert "/" not in name
    assert owner_of(name) == (os.getpid(), int(wall * 1000) / 1000)
