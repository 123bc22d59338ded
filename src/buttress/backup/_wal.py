"""The WAL archive behind ``buttress wal push`` (archive_command) and ``wal fetch``
(restore_command).

Each segment (or history or ``.backup`` file) is stored compressed and, with a key, encrypted
as ``<name><suffix>``, then a small JSON record ``<name>.json`` holding the stored bytes'
SHA-256 and the original's; the record is written last, so a segment exists only once both
are durable. Pushing a name again succeeds when the content is the same and fails otherwise
(PostgreSQL's rule for an archive_command). Fetching checks the checksum before writing, and
writes the file atomically.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import re
import tempfile
from pathlib import Path

from buttress.backup._crypto import EncryptionKey
from buttress.backup._destination import Destination, LocalDestination
from buttress.backup._model import Artifact
from buttress.backup._reader import read_artifact
from buttress.backup._stream import BLOCK, check_compression, suffix, write_artifact
from buttress.errors import BackupError, ChecksumMismatchError

__all__ = ["WalArchive"]

_NAME = re.compile(r"[0-9A-F]{8,24}(\.[0-9A-F]{8}\.backup|\.history|\.partial)?\Z")
_SEGMENT = re.compile(r"[0-9A-F]{24}\Z")


def _check_wal_name(name: str) -> str:
    if not _NAME.match(name):
        raise BackupError(f"{name!r} is not a WAL file name")
    return name


def _file_sha256(path: Path) -> tuple[str, int]:
    digest = hashlib.sha256()
    size = 0
    with open(path, "rb", buffering=0) as f:
        while block := f.read(BLOCK):
            digest.update(block)
            size += len(block)
    return digest.hexdigest(), size


class WalArchive:
    """A WAL archive at ``destination`` (a ``Destination`` or a directory), compressed with
    ``compression`` and encrypted with ``key`` when given."""

    def __init__(
        self,
        destination: Destination | str | os.PathLike[str],
        *,
        key: EncryptionKey | None = None,
        compression: str = "zstd",
    ) -> None:
        self.destination: Destination = (
            destination if isinstance(destination, Destination) else LocalDestination(destination)
        )
        self.key = key
        self.compression = check_compression(compression)

    def _record(self, name: str) -> dict[str, object] | None:
        key = f"{name}.json"
        if not self.destination.exists(key):
            return None
        with self.destination.open_read(key) as f:
            data: dict[str, object] = json.loads(f.read())
        return data

    def push(self, path: str | os.PathLike[str], name: str) -> bool:
        """Archive the file at ``path`` as ``name``; True if stored now, False if the same
        content was already there. ``BackupError`` if different content is."""
        _check_wal_name(name)
        source = Path(path)
        plain_sha, plain_size = _file_sha256(source)
        existing = self._record(name)
        if existing is not None:
            if existing.get("plain_sha256") == plain_sha:
                return False
            raise BackupError(f"{name} is already archived with different content")
        stored: list[Artifact] = []
        data_key = name + suffix(self.compression, self.key is not None)
        with (
            write_artifact(
                self.destination,
                data_key,
                name,
                compression=self.compression,
                encryption=self.key,
                done=stored.append,
            ) as out,
            open(source, "rb", buffering=0) as f,
        ):
            while block := f.read(BLOCK):
                out.write(block)
        record = {
            "name": name,
            "object": data_key,
            "size": stored[0].size,
            "sha256": stored[0].sha256,
            "plain_size": plain_size,
            "plain_sha256": plain_sha,
            "compression": self.compression,
            "key_id": None if self.key is None else self.key.id,
        }
        with self.destination.open_write(f"{name}.json") as f:
            f.write(json.dumps(record, sort_keys=True).encode())
        return True

    def fetch(self, name: str, path: str | os.PathLike[str]) -> bool:
        """Write archived ``name`` to ``path``; False if the archive has no such file."""
        _check_wal_name(name)
        record = self._record(name)
        if record is None:
            return False
        artifact = Artifact(name, int(str(record["size"])), str(record["sha256"]))
        target = Path(path)
        tmp = target.with_name(f".{target.name}.fetching")
        digest = hashlib.sha256()
        encrypted = record.get("key_id") is not None
        key = self.key if encrypted else None
        if encrypted and key is not None and key.id != record["key_id"]:
            raise BackupError(f"{name}: archived with key id {record['key_id']}, not {key.id}")
        try:
            with (
                read_artifact(
                    self.destination,
                    str(record["object"]),
                    artifact,
                    compression=str(record["compression"]),
                    encryption=key,
                    encrypted=encrypted,
                ) as data,
                open(tmp, "wb", buffering=0) as out,
            ):
                while block := data.read(BLOCK):
                    digest.update(block)
                    view = memoryview(block)
                    while view:
                        view = view[out.write(view) or 0 :]
                data.finish()
                os.fsync(out.fileno())
            if digest.hexdigest() != record["plain_sha256"]:
                raise ChecksumMismatchError(f"{name}: restored content does not match its record")
            os.replace(tmp, target)
        finally:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(tmp)
        return True

    def names(self) -> list[str]:
        """Every archived file name, sorted."""
        return sorted(k[: -len(".json")] for k in self.destination.keys("") if k.endswith(".json"))

    def backup_starts(self) -> dict[str, str]:
        """For each base backup label found in ``.backup`` files, its first WAL segment."""
        starts: dict[str, str] = {}
        with tempfile.TemporaryDirectory(prefix="buttress-wal-") as tmp:
            for name in self.names():
                if not name.endswith(".backup"):
                    continue
                path = Path(tmp) / name
                try:
                    self.fetch(name, path)
                except BackupError:
                    continue
                label = re.search(r"^LABEL: (.+)$", path.read_text(errors="replace"), re.M)
                if label:
                    starts[label.group(1).strip()] = name[:24]
        return starts

    def cleanup(self, before: str) -> int:
        """Delete the segments older than segment ``before`` (timeline ignored, like
        ``pg_archivecleanup``), and ``.backup`` files before it; history files stay."""
        if not _SEGMENT.match(before):
            raise BackupError(f"{before!r} is not a WAL segment name")
        removed = 0
        for name in self.names():
            if name.endswith(".history") or len(name) < 24:
                continue
            if name[8:24] < before[8:24]:
                record = self._record(name)
                if record is not None:
                    self.destination.delete(str(record["object"]))
                self.destination.delete(f"{name}.json")
                removed += 1
        return removed
