"""File hashes a full backup need not compute: those the previous backup recorded for files
that have not changed since it began."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator

from buttress.backup._manifest import Entry, read_manifest
from buttress.backup._reader import ArtifactReader
from buttress.backup._source import BackupJob
from buttress.errors import BackupError

__all__ = ["KnownHashes", "NoHash"]


class NoHash:
    """Stands for a hash already known: updates cost nothing."""

    __slots__ = ("_hex",)

    def __init__(self, hex_digest: str) -> None:
        self._hex = hex_digest

    def update(self, data: object, /) -> None:
        pass

    def hexdigest(self) -> str:
        return self._hex


class KnownHashes:
    """The file hashes a full backup may take from the previous backup of the name instead
    of computing them: those of files whose size and mtime are unchanged and whose status
    change time (ctime, set by the kernel on every write and never by a user) is older than
    the start of that backup, minus a second. Git's index, borg and restic trust the same
    rule to skip unchanged files altogether; here every file is still read and stored, only
    its hash is taken. The previous manifest is used only if its stored bytes check out."""

    MARGIN_NS = 1_000_000_000

    def __init__(self, job: BackupJob, stack: contextlib.ExitStack, manifest: str) -> None:
        self._reader: ArtifactReader | None = None
        self._entries: Iterator[Entry] = iter(())
        self._next: Entry | None = None
        self._cutoff = 0
        previous = job.previous
        if job.reference is not None or previous is None:
            return
        if manifest not in {artifact.name for artifact in previous.artifacts}:
            return
        self._cutoff = int(previous.started_at * 1_000_000_000) - self.MARGIN_NS
        try:
            with job.open(previous, manifest) as check:
                check.finish()  # its stored bytes check out before any hash is taken
            self._reader = stack.enter_context(job.open(previous, manifest))
            self._entries = read_manifest(self._reader)
            self._next = next(self._entries, None)
        except (BackupError, ValueError, OSError):  # unusable: every hash is computed
            self._reader, self._entries, self._next = None, iter(()), None

    def get(self, entry: Entry) -> str | None:
        """The known SHA-256 of file ``entry``, or None."""
        key = entry.key
        while self._next is not None and self._next.key < key:
            self._next = next(self._entries, None)
        hint = self._next
        if (
            hint is None
            or hint.key != key
            or hint.type != "f"
            or not hint.sha256
            or hint.size != entry.size
            or hint.mtime_ns != entry.mtime_ns
            or not 0 < entry.ctime_ns < self._cutoff
        ):
            return None
        return hint.sha256

    def finish(self) -> None:
        """Check the previous manifest's checksum (a mismatch fails the backup)."""
        if self._reader is not None:
            self._reader.finish()
