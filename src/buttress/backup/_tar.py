"""Restoring under a directory without ever leaving it.

``SafeRoot`` opens every directory component relative to its parent with ``O_NOFOLLOW``, so a
symbolic link (restored earlier, planted beforehand, or crafted in the archive) can never
redirect a write outside the destination; names are checked before anything is written
(no absolute paths, no ``..``, no empty parts). Only regular files, directories and symbolic
links are restored; hard links, devices and FIFOs are refused.
"""

from __future__ import annotations

import errno
import os
import stat
from pathlib import Path

from buttress.backup._tarformat import Readable, read_members
from buttress.errors import BackupError

__all__ = ["SafeRoot", "is_empty_dir", "split_name"]

COPY = 1 << 20
_O_DIR = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC


def split_name(name: str) -> tuple[str, ...]:
    """The parts of an archive member's name; ``BackupError`` if it would escape the
    destination (absolute, ``..``, empty or NUL)."""
    text = name[2:] if name.startswith("./") else name
    text = text.rstrip("/")
    parts = tuple(text.split("/"))
    if not text or name.startswith("/") or any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise BackupError(f"refusing archive member {name!r}: it would escape the destination")
    return parts


class SafeRoot:
    """Creates directories, files and symlinks under ``root`` and nowhere else.

    ``owners``: also restore owners (default: when running as root). Directory modes and
    times are applied by ``finish_dirs`` at the end, deepest first, so that read-only
    directories can be filled first.
    """

    def __init__(self, root: str | os.PathLike[str], *, owners: bool | None = None) -> None:
        self.root = Path(root)
        self.root.mkdir(parents=True, exist_ok=True, mode=0o700)
        self._root_fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
        self._chain: list[tuple[str, int]] = []
        self._owners = os.geteuid() == 0 if owners is None else owners
        self._dirs: list[tuple[tuple[str, ...], int, int, int, int]] = []

    def close(self) -> None:
        """Close the cached directory descriptors."""
        self._cut(0)
        os.close(self._root_fd)

    def __enter__(self) -> SafeRoot:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def _cut(self, depth: int) -> None:
        while len(self._chain) > depth:
            os.close(self._chain.pop()[1])

    def _dir(self, parts: tuple[str, ...]) -> int:
        """A descriptor of the directory ``parts`` (created when missing, never followed)."""
        common = 0
        for (name, _), part in zip(self._chain, parts, strict=False):
            if name != part:
                break
            common += 1
        self._cut(common)
        for part in parts[common:]:
            parent = self._chain[-1][1] if self._chain else self._root_fd
            try:
                fd = os.open(part, _O_DIR, dir_fd=parent)
            except FileNotFoundError:
                os.mkdir(part, 0o700, dir_fd=parent)
                fd = os.open(part, _O_DIR, dir_fd=parent)
            except OSError as exc:
                if exc.errno in (errno.ELOOP, errno.ENOTDIR):
                    raise BackupError(
                        f"refusing to write through {'/'.join(parts)!r}: {part!r} is not a "
                        "directory (a symbolic link or a file is in the way)"
                    ) from None
                raise
            self._chain.append((part, fd))
        return self._chain[-1][1] if self._chain else self._root_fd

    def mkdir(
        self, parts: tuple[str, ...], mode: int, mtime_ns: int, uid: int = -1, gid: int = -1
    ) -> None:
        """Create the directory now; its mode, times and owner are set by ``finish_dirs``."""
        self._dir(parts)
        self._dirs.append((parts, mode, mtime_ns, uid, gid))

    def write_file(
        self,
        parts: tuple[str, ...],
        data: Readable,
        size: int,
        mode: int,
        mtime_ns: int,
        uid: int = -1,
        gid: int = -1,
    ) -> int:
        """Copy ``size`` bytes of ``data`` into a new regular file; returns the bytes copied."""
        dfd = self._dir(parts[:-1])
        name = parts[-1]
        flags = os.O_WRONLY | os.O_CREAT | os.O_TRUNC | os.O_NOFOLLOW | os.O_CLOEXEC
        try:
            fd = os.open(name, flags, 0o600, dir_fd=dfd)
        except OSError as exc:
            if exc.errno != errno.ELOOP:
                raise
            os.unlink(name, dir_fd=dfd)  # a symbolic link is in the way: replace it
            fd = os.open(name, flags, 0o600, dir_fd=dfd)
        try:
            remaining = size
            while remaining:
                block = data.read(min(COPY, remaining))
                if not block:
                    raise BackupError(f"{'/'.join(parts)}: archive data ends early")
                remaining -= len(block)
                view = memoryview(block)
                while view:
                    view = view[os.write(fd, view) :]
            if self._owners and uid >= 0:
                os.fchown(fd, uid, gid)
            os.fchmod(fd, stat.S_IMODE(mode))
            os.utime(fd, ns=(mtime_ns, mtime_ns))
        finally:
            os.close(fd)
        return size

    def symlink(
        self, parts: tuple[str, ...], target: str, mtime_ns: int, uid: int = -1, gid: int = -1
    ) -> None:
        """Create a symbolic link (its target is stored as is and never followed here)."""
        dfd = self._dir(parts[:-1])
        name = parts[-1]
        try:
            os.symlink(target, name, dir_fd=dfd)
        except FileExistsError:
            if stat.S_ISDIR(os.stat(name, dir_fd=dfd, follow_symlinks=False).st_mode):
                raise BackupError(f"{'/'.join(parts)}: a directory is in the way") from None
            os.unlink(name, dir_fd=dfd)
            os.symlink(target, name, dir_fd=dfd)
        if self._owners and uid >= 0:
            os.chown(name, uid, gid, dir_fd=dfd, follow_symlinks=False)
        os.utime(name, ns=(mtime_ns, mtime_ns), dir_fd=dfd, follow_symlinks=False)

    def finish_dirs(self) -> None:
        """Apply the directories' modes, owners and times, deepest first."""
        self._cut(0)
        for parts, mode, mtime_ns, uid, gid in sorted(self._dirs, key=lambda d: -len(d[0])):
            fd = os.open("/".join(parts), _O_DIR, dir_fd=self._root_fd)
            try:
                if self._owners and uid >= 0:
                    os.fchown(fd, uid, gid)
                os.fchmod(fd, stat.S_IMODE(mode))
                os.utime(fd, ns=(mtime_ns, mtime_ns))
            finally:
                os.close(fd)
        self._dirs.clear()

    def extract(self, stream: Readable) -> tuple[int, int]:
        """Restore every member of the tar in ``stream`` with its own metadata (used for
        PostgreSQL base backups); returns (members, bytes)."""
        count = size = 0
        for member in read_members(stream):
            parts = split_name(member.name)
            mtime_ns = int(member.mtime * 1_000_000_000)
            if member.isdir():
                self.mkdir(parts, member.mode, mtime_ns, member.uid, member.gid)
            elif member.isreg():
                size += self.write_file(
                    parts, stream, member.size, member.mode, mtime_ns, member.uid, member.gid
                )
            elif member.issym():
                self.symlink(parts, member.linkname, mtime_ns, member.uid, member.gid)
            else:
                raise BackupError(
                    f"refusing archive member {member.name!r}: only files, directories and "
                    "symbolic links are restored"
                )
            count += 1
        self.finish_dirs()
        return count, size


def is_empty_dir(path: str | os.PathLike[str]) -> bool:
    """Whether ``path`` is missing or an empty directory."""
    try:
        with os.scandir(path) as entries:
            return next(entries, None) is None
    except FileNotFoundError:
        return True
    except NotADirectoryError:
        return False
