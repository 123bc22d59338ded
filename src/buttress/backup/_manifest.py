"""The manifest of a files backup: one JSON array per line for each entry, in walk order.

A manifest lists the whole tree as it was when the backup ran: every directory, file and
symbolic link with its mode, owner, size, mtime in nanoseconds and (files) the SHA-256 of its
content and the id of the backup whose tar holds that content (``src``). An incremental or
differential lists unchanged files with the ``src`` of an earlier backup, and the entries
deleted since its reference as type ``x``. Entries are sorted by their path's parts, which is
the order of a depth-first walk with sorted names, so two manifests (or a manifest and a tar)
are compared by merging, never by loading one into memory.
"""

from __future__ import annotations

import fnmatch
import json
import os
import stat
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from buttress.backup._reader import ArtifactReader
from buttress.backup._source import lines
from buttress.errors import BackupError

__all__ = ["Entry", "Skipped", "read_manifest", "walk"]

HEADER = b'{"buttress_manifest":2}'


@dataclass(slots=True)
class Entry:
    """One path of the tree: type ``f`` (file), ``d`` (directory), ``l`` (symbolic link) or
    ``x`` (deleted since the reference backup)."""

    path: str
    type: str
    mode: int = 0
    size: int = 0
    mtime_ns: int = 0
    uid: int = -1
    gid: int = -1
    sha256: str | None = None
    target: str | None = None
    src: str | None = None
    line: bytes | None = field(default=None, compare=False, repr=False)
    """The entry's line as read from a manifest (reused when nothing changed)."""
    ctime_ns: int = field(default=0, compare=False, repr=False)
    """The status change time seen by the walk (not in the manifest)."""

    @property
    def key(self) -> str:
        """The sort key: the path with ``/`` as NUL, which sorts like the path's parts (NUL
        sorts before every character a name can hold)."""
        return self.path.replace("/", "\0")

    def same_as(self, other: Entry) -> bool:
        """Whether ``other`` records the same metadata (type, mode, owner, size, mtime, link)."""
        return (
            self.type == other.type
            and self.mode == other.mode
            and self.mtime_ns == other.mtime_ns
            and self.size == other.size
            and self.uid == other.uid
            and self.gid == other.gid
            and self.target == other.target
        )

    def to_line(self) -> bytes:
        """The entry as one JSON line: an array in the order of the fields."""
        return (
            _encode(
                [
                    self.path,
                    self.type,
                    self.mode,
                    self.size,
                    self.mtime_ns,
                    self.uid,
                    self.gid,
                    self.sha256,
                    self.target,
                    self.src,
                ]
            ).encode()
            + b"\n"
        )


_encode = json.JSONEncoder(separators=(",", ":")).encode
_BATCH = 2000


def read_manifest(reader: ArtifactReader, *, state_only: bool = True) -> Iterator[Entry]:
    """The entries of a manifest artifact (without ``x`` entries when ``state_only``)."""
    it = lines(reader)
    if next(it, None) != HEADER:
        raise BackupError("not a buttress manifest")
    batch: list[bytes] = []
    for line in it:
        if line:
            batch.append(line)
        if len(batch) >= _BATCH:
            yield from _decode(batch, state_only)
            batch = []
    yield from _decode(batch, state_only)


def _decode(batch: list[bytes], state_only: bool) -> Iterator[Entry]:
    if not batch:
        return
    try:
        rows = json.loads(b"[" + b",".join(batch) + b"]")
    except ValueError as exc:
        raise BackupError(f"damaged manifest: {exc}") from None
    for row, line in zip(rows, batch, strict=True):
        if not (state_only and row[1] == "x"):
            entry = Entry(*row)
            entry.line = line
            yield entry


class Skipped:
    """What a walk left out: sockets, devices and FIFOs."""

    __slots__ = ("count", "examples")

    def __init__(self) -> None:
        self.count = 0
        self.examples: list[str] = []

    def add(self, path: str) -> None:
        self.count += 1
        if len(self.examples) < 10:
            self.examples.append(path)


def _matches(patterns: Sequence[str], rel: str, name: str) -> bool:
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def walk(
    root: Path,
    include: Sequence[str] = (),
    exclude: Sequence[str] = (),
    skipped: Skipped | None = None,
) -> Iterator[Entry]:
    """The tree under ``root`` in sorted depth-first order (no hashes yet).

    ``exclude`` drops matching paths (a directory with everything under it); ``include``,
    when given, keeps only the files and links that match (directories are always walked).
    A pattern matches the path relative to ``root`` or the entry's name (``fnmatch``).
    """
    skipped = skipped if skipped is not None else Skipped()

    def visit(directory: str, prefix: str) -> Iterator[Entry]:
        try:
            with os.scandir(directory) as it:
                children = sorted(it, key=lambda e: e.name)
        except OSError as exc:
            raise BackupError(f"cannot list {directory}: {exc.strerror}") from None
        for child in children:
            rel = prefix + child.name
            if exclude and _matches(exclude, rel, child.name):
                continue
            try:
                st = child.stat(follow_symlinks=False)
            except FileNotFoundError:
                continue  # deleted while walking
            mode = st.st_mode
            common = (stat.S_IMODE(mode), 0, st.st_mtime_ns, st.st_uid, st.st_gid)
            if stat.S_ISDIR(mode):
                yield Entry(rel, "d", *common)
                yield from visit(child.path, rel + "/")
                continue
            if include and not _matches(include, rel, child.name):
                continue
            if stat.S_ISREG(mode):
                yield Entry(
                    rel, "f", stat.S_IMODE(mode), st.st_size, *common[2:], ctime_ns=st.st_ctime_ns
                )
            elif stat.S_ISLNK(mode):
                try:
                    target = os.readlink(child.path)
                except FileNotFoundError:
                    continue
                yield Entry(rel, "l", *common, target=target)
            else:
                skipped.add(rel)

    if not root.is_dir():
        raise BackupError(f"{root}: not a directory")
    yield from visit(os.fspath(root), "")
