"""Where artifacts are stored: the ``Destination`` protocol and a local directory.

A destination stores opaque objects under slash-separated keys (``site/<id>/data.tar.zst``).
Writes are atomic: an object appears under its key only once it was written completely
(a local directory writes a temporary file, fsyncs it, renames it and fsyncs the directory),
so a crash never leaves a half-written artifact that looks whole. Other stores (S3-compatible
object storage, say) implement the same six methods.
"""

from __future__ import annotations

import contextlib
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO, Protocol, runtime_checkable

from buttress.errors import BackupError, ConfigError

__all__ = ["Destination", "LocalDestination", "check_key"]


def check_key(key: str) -> str:
    """A valid object key: relative, slash-separated, no empty, ``.`` or ``..`` part."""
    parts = key.split("/")
    if not key or key.startswith("/") or any(p in ("", ".", "..") or "\0" in p for p in parts):
        raise BackupError(f"invalid object key {key!r}")
    return key


@runtime_checkable
class Destination(Protocol):
    """Storage for artifacts, addressed by slash-separated keys."""

    def describe(self) -> str:
        """Where the objects live, for humans (no secrets)."""

    def open_write(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A writable binary stream; the object exists under ``key`` only after a clean exit."""

    def open_read(self, key: str) -> contextlib.AbstractContextManager[BinaryIO]:
        """A readable binary stream of the object (``BackupError`` if it does not exist)."""

    def exists(self, key: str) -> bool:
        """Whether an object is stored under ``key``."""

    def delete(self, key: str) -> None:
        """Remove the object (nothing happens if it does not exist)."""

    def keys(self, prefix: str = "") -> Iterator[str]:
        """The stored keys that start with ``prefix``, in sorted order."""


class LocalDestination:
    """Artifacts as files under the directory ``root`` (created if missing, mode 0700)."""

    __slots__ = ("_root",)

    def __init__(self, root: str | os.PathLike[str]) -> None:
        path = Path(root)
        if not os.fspath(root):
            raise ConfigError("root", root, "must be a directory path")
        self._root = path.absolute()

    @property
    def root(self) -> Path:
        """The directory holding the artifacts."""
        return self._root

    def describe(self) -> str:
        """``file://`` and the directory."""
        return f"file://{self._root}"

    def _path(self, key: str) -> Path:
        return self._root.joinpath(*check_key(key).split("/"))

    @contextlib.contextmanager
    def open_write(self, key: str) -> Iterator[BinaryIO]:
        """Write to a temporary file beside the target; fsync and rename it on a clean exit."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
        tmp = path.with_name(f".{path.name}.{secrets.token_hex(4)}.partial")
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        done = False
        try:
            with os.fdopen(fd, "wb", buffering=0) as stream:
                yield stream
                os.fsync(stream.fileno())
            os.replace(tmp, path)
            done = True
            _fsync_dir(path.parent)
        finally:
            if not done:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)

    @contextlib.contextmanager
    def open_read(self, key: str) -> Iterator[BinaryIO]:
        """Open the file for reading, unbuffered (readers ask for large blocks)."""
        try:
            stream = open(self._path(key), "rb", buffering=0)  # noqa: SIM115
        except FileNotFoundError:
            raise BackupError(f"{key}: not found at {self.describe()}") from None
        with stream:
            yield stream

    def exists(self, key: str) -> bool:
        """Whether the file exists."""
        return self._path(key).is_file()

    def delete(self, key: str) -> None:
        """Remove the file, then its directories up to the root while they are empty."""
        path = self._path(key)
        with contextlib.suppress(FileNotFoundError):
            path.unlink()
        parent = path.parent
        while parent != self._root and self._root in parent.parents:
            try:
                parent.rmdir()
            except OSError:
                break
            parent = parent.parent

    def keys(self, prefix: str = "") -> Iterator[str]:
        """Every stored file's key under ``prefix`` (temporary files excluded), sorted."""
        if not self._root.is_dir():
            return
        found: list[str] = []
        for directory, _dirs, files in os.walk(self._root):
            rel = Path(directory).relative_to(self._root).as_posix()
            for name in files:
                if name.startswith(".") and name.endswith(".partial"):
                    continue
                key = name if rel == "." else f"{rel}/{name}"
                if key.startswith(prefix):
                    found.append(key)
        yield from sorted(found)

    def __repr__(self) -> str:
        return f"LocalDestination({str(self._root)!r})"


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY | os.O_DIRECTORY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
