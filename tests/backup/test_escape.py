"""Restores never write outside the destination: ``..``, absolute names, symlink tricks."""

from __future__ import annotations

import dataclasses
import io
import os
import tarfile
from pathlib import Path

import pytest

from buttress.backup import Artifact, BackupManager, Files
from buttress.backup._manager import artifact_key
from buttress.backup._manifest import HEADER, Entry
from buttress.backup._stream import write_artifact
from buttress.backup._tar import SafeRoot, split_name
from buttress.errors import BackupError


class _Forward(io.BytesIO):
    """A BytesIO that, like an artifact stream, refuses to seek backwards."""

    def seek(self, offset: int, whence: int = 0) -> int:
        target = offset if whence == 0 else self.tell() + offset
        assert target >= self.tell(), "seeked backwards"
        return super().seek(target)


def _tar(*members: tuple[tarfile.TarInfo, bytes]) -> _Forward:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for info, data in members:
            info.size = len(data) if info.isreg() else 0
            tar.addfile(info, io.BytesIO(data) if info.isreg() else None)
    return _Forward(buf.getvalue())


def _info(name: str, kind: bytes = tarfile.REGTYPE, link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(name)
    info.type = kind
    info.linkname = link
    info.mode = 0o755 if kind == tarfile.DIRTYPE else 0o644
    return info


@pytest.mark.parametrize(
    "name", ["../evil", "a/../../evil", "/abs/evil", "", "a//b", "./..", "a/./b"]
)
def test_escaping_names_are_refused(name: str) -> None:
    """Names with .., absolute paths, empty or dot parts are refused before any write."""
    with pytest.raises(BackupError, match="escape"):
        split_name(name)


def test_leading_dot_slash_is_accepted() -> None:
    """``./pg_wal/`` (as pg_basebackup writes it) is the relative path pg_wal."""
    assert split_name("./pg_wal/archive_status/") == ("pg_wal", "archive_status")


@pytest.mark.parametrize("name", ["../outside.txt", "/tmp/buttress-abs-evil.txt"])
def test_tar_member_escaping_is_refused(tmp_path: Path, name: str) -> None:
    """A tar member named outside the destination stops the extraction; nothing lands outside."""
    target = tmp_path / "dest"
    with SafeRoot(target) as root, pytest.raises(BackupError, match="escape"):
        root.extract(_tar((_info("ok.txt"), b"fine"), (_info(name), b"evil")))
    assert not (tmp_path / "outside.txt").exists()
    assert not Path("/tmp/buttress-abs-evil.txt").exists()


def test_symlink_then_file_through_it_is_refused(tmp_path: Path) -> None:
    """A symlink member pointing outside, then a file below it: the write is refused."""
    outside = tmp_path / "outside"
    outside.mkdir()
    stream = _tar(
        (_info("link", tarfile.SYMTYPE, str(outside)), b""),
        (_info("link/evil.txt"), b"evil"),
    )
    with SafeRoot(tmp_path / "dest") as root, pytest.raises(BackupError, match="not a directory"):
        root.extract(stream)
    assert list(outside.iterdir()) == []
    assert os.readlink(tmp_path / "dest" / "link") == str(outside)  # the link itself is fine


def test_relative_parent_symlink_is_not_followed(tmp_path: Path) -> None:
    """A symlink to ``..`` cannot be used as a path to write through."""
    stream = _tar((_info("up", tarfile.SYMTYPE, ".."), b""), (_info("up/evil.txt"), b"evil"))
    with SafeRoot(tmp_path / "dest") as root, pytest.raises(BackupError):
        root.extract(stream)
    assert not (tmp_path / "evil.txt").exists()


def test_existing_symlink_in_destination_is_replaced_not_followed(tmp_path: Path) -> None:
    """A planted symlink where a file is restored is replaced; its target is untouched."""
    victim = tmp_path / "victim.txt"
    victim.write_text("keep me")
    target = tmp_path / "dest"
    target.mkdir()
    os.symlink(victim, target / "file.txt")
    os.symlink(tmp_path, target / "dir")
    with SafeRoot(target) as root:
        root.extract(_tar((_info("file.txt"), b"restored")))
    assert victim.read_text() == "keep me"
    assert not (target / "file.txt").is_symlink()
    assert (target / "file.txt").read_text() == "restored"
    with SafeRoot(target) as root, pytest.raises(BackupError, match="not a directory"):
        root.extract(_tar((_info("dir/planted.txt"), b"evil")))
    assert not (tmp_path / "planted.txt").exists()


@pytest.mark.parametrize("kind", [tarfile.LNKTYPE, tarfile.CHRTYPE, tarfile.FIFOTYPE])
def test_hard_links_devices_and_fifos_are_refused(tmp_path: Path, kind: bytes) -> None:
    """Only files, directories and symlinks are restored."""
    with SafeRoot(tmp_path / "dest") as root, pytest.raises(BackupError, match="only files"):
        root.extract(_tar((_info("x", kind, "/etc/passwd"), b"")))


def test_tampered_manifest_with_matching_checksum_still_cannot_escape(
    files_manager: BackupManager, tmp_path: Path
) -> None:
    """Even a backup altered along with its catalog checksum cannot write outside the target."""
    backup = files_manager.create("site")
    evil = Entry("../escaped", "d", 0o755, 0, 0)
    records: list[Artifact] = []
    with write_artifact(
        files_manager.destination,
        artifact_key(backup, "manifest.jsonl"),
        "manifest.jsonl",
        compression=backup.compression,
        encryption=None,
        done=records.append,
    ) as out:
        out.write(HEADER + b"\n" + evil.to_line())
    others = tuple(a for a in backup.artifacts if a.name != "manifest.jsonl")
    files_manager.catalog.update(dataclasses.replace(backup, artifacts=(*others, *records)))
    with pytest.raises(BackupError, match="escape"):
        files_manager.restore(backup.id, tmp_path / "out")
    assert not (tmp_path / "escaped").exists()


def test_files_backup_of_tree_restores_into_target_only(
    manager: BackupManager, tmp_path: Path
) -> None:
    """A tree holding a symlink to a directory outside is restored as a link, not as its target."""
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    (outside / "big.txt").write_text("not part of the backup")
    root = tmp_path / "src"
    root.mkdir()
    os.symlink(outside, root / "shortcut")
    manager.configure("links", Files(root))
    manager.restore(manager.create("links").id, tmp_path / "out")
    assert os.readlink(tmp_path / "out" / "shortcut") == str(outside)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["shortcut"]
