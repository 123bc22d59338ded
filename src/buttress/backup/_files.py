"""Files and directories: a streamed tar of the contents, and a manifest of the whole tree.

A backup walks the tree once in sorted order and merges it with the reference manifest (the
parent for an incremental, the last full for a differential): a file whose type, size and
mtime (nanoseconds) are unchanged keeps the reference's content; any other file is read once,
hashed and appended to this backup's ``data.tar``. The manifest lists the whole tree, so a
restore needs only the manifest of the backup asked for and the tars its entries point to;
each file is written once, from the newest backup holding it. A full backup still reads and
stores every file, but takes the SHA-256 of a file unchanged since the previous backup from
that backup's manifest (see ``_known``: size, mtime and ctime decide, as in git, borg
and restic), which saves hashing most of the tree twice. ``data.tar`` is a plain tar:
without encryption, ``zstd -d < data.tar.zst | tar -x`` gets the contents back in an emergency.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, ClassVar

from buttress.backup._known import KnownHashes, NoHash
from buttress.backup._manifest import HEADER, Entry, Skipped, read_manifest, walk
from buttress.backup._model import CheckResult
from buttress.backup._source import BackupJob, RestoreJob, register
from buttress.backup._stream import BLOCK, ArtifactWriter
from buttress.backup._tar import SafeRoot
from buttress.backup._tar import split_name as _split
from buttress.backup._tarformat import end_of_archive, file_header, padding, read_members
from buttress.errors import BackupError, ConfigError

__all__ = ["Files"]

DATA = "data.tar"
MANIFEST = "manifest.jsonl"


def _patterns(field: str, value: object) -> tuple[str, ...]:
    if isinstance(value, str) or not all(isinstance(p, str) and p for p in value):  # type: ignore[attr-defined]
        raise ConfigError(field, value, "must be a list of non-empty glob patterns")
    return tuple(value)  # type: ignore[arg-type]


class Files:
    """The files and directories under ``root``; ``include`` / ``exclude`` are glob
    patterns matched against each path relative to ``root`` and against its name.

    Supports full, incremental and differential backups. Regular files, directories and
    symbolic links are kept with their modes, owners and mtimes; sockets, devices and FIFOs
    are skipped (counted in the backup's stats); hard links are stored as separate files.
    """

    strategy: ClassVar[str] = "files"
    incremental: ClassVar[bool] = True
    target_kind: ClassVar[str] = "directory"

    def __init__(
        self,
        root: str | os.PathLike[str],
        *,
        include: Sequence[str] = (),
        exclude: Sequence[str] = (),
    ) -> None:
        if not os.fspath(root):
            raise ConfigError("root", root, "must be a directory path")
        self.root = Path(root).absolute()
        self.include = _patterns("include", include)
        self.exclude = _patterns("exclude", exclude)

    def spec(self) -> dict[str, Any]:
        """The root and the patterns."""
        return {
            "root": str(self.root),
            "include": list(self.include),
            "exclude": list(self.exclude),
        }

    @classmethod
    def from_spec(cls, spec: dict[str, Any]) -> Files:
        """Rebuild from ``spec()``."""
        return cls(spec["root"], include=spec.get("include", ()), exclude=spec.get("exclude", ()))

    def __repr__(self) -> str:
        return f"Files({str(self.root)!r})"

    # -- backup -----------------------------------------------------------------------------

    def backup(self, job: BackupJob) -> None:
        """Walk, merge with the reference manifest, store changed files and the manifest."""
        job.data_time = job.clock.time()
        backup_id = job.backup.id
        counts = dict.fromkeys(
            ("files", "stored", "unchanged", "hashes_reused", "deleted", "dirs", "links"), 0
        )
        stored_bytes = 0
        changed_while_read: list[str] = []
        skipped = Skipped()
        with contextlib.ExitStack() as stack:
            reader = None
            if job.reference is not None:
                reader = stack.enter_context(job.open(job.reference, MANIFEST))
                refs: Iterator[Entry] = read_manifest(reader)
            else:
                refs = iter(())
            known = KnownHashes(job, stack, MANIFEST)
            data = stack.enter_context(job.artifact(DATA))
            manifest = stack.enter_context(job.artifact(MANIFEST))
            manifest.write(HEADER + b"\n")
            ref = next(refs, None)
            ref_key = None if ref is None else ref.key
            for entry in walk(self.root, self.include, self.exclude, skipped):
                key = entry.key
                while ref_key is not None and ref_key < key:
                    manifest.write(Entry(ref.path, "x").to_line())  # type: ignore[union-attr]
                    counts["deleted"] += 1
                    ref = next(refs, None)
                    ref_key = None if ref is None else ref.key
                old = None
                if ref_key == key:
                    old, ref = ref, next(refs, None)
                    ref_key = None if ref is None else ref.key
                if entry.type == "f":
                    counts["files"] += 1
                    if (
                        old is not None
                        and old.type == "f"
                        and old.size == entry.size
                        and old.mtime_ns == entry.mtime_ns
                        and old.sha256
                    ):
                        entry.sha256, entry.src = old.sha256, old.src
                        counts["unchanged"] += 1
                    else:
                        digest = known.get(entry) if old is None else None
                        counts["hashes_reused"] += digest is not None
                        stored_bytes += self._store(entry, data, job, changed_while_read, digest)
                        entry.src = backup_id
                        counts["stored"] += 1
                elif entry.type == "d":
                    counts["dirs"] += 1
                else:
                    counts["links"] += 1
                if (
                    old is not None
                    and old.line is not None
                    and entry.src == old.src
                    and old.same_as(entry)
                ):
                    manifest.write(old.line + b"\n")  # unchanged: the reference's line as is
                else:
                    manifest.write(entry.to_line())
            while ref is not None:
                manifest.write(Entry(ref.path, "x").to_line())
                counts["deleted"] += 1
                ref = next(refs, None)
            data.write(end_of_archive(data.tell()))
            if reader is not None:
                reader.finish()  # the reference manifest's checksum is checked too
            known.finish()
        job.stats.update(counts, stored_bytes=stored_bytes, root=str(self.root))
        if skipped.count:
            job.stats.update(skipped=skipped.count, skipped_examples=skipped.examples)
        if changed_while_read:
            job.stats["changed_while_read"] = changed_while_read[:20]

    def _store(
        self,
        entry: Entry,
        data: ArtifactWriter,
        job: BackupJob,
        changed: list[str],
        known: str | None = None,
    ) -> int:
        """Append the file to the tar; its SHA-256 is computed unless ``known``."""
        path = self.root / entry.path
        try:
            fd = os.open(path, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError as exc:
            raise BackupError(f"cannot read {path}: {exc.strerror}") from None
        digest = NoHash(known) if known is not None else hashlib.sha256()
        data.write(
            file_header(
                entry.path,
                entry.size,
                entry.mode,
                entry.mtime_ns // 1_000_000_000,
                entry.uid,
                entry.gid,
            )
        )
        try:
            remaining = entry.size
            while remaining:  # read straight into the writer's block: no copy, no allocation
                space = data.space()
                view = space[: min(len(space), remaining)]
                got = os.readv(fd, [view])
                if not got:  # shrank while read: keep the header's size, note it
                    got = len(view)
                    view[:] = bytes(got)
                    if entry.path not in changed:
                        changed.append(entry.path)
                digest.update(view[:got])
                view.release()
                space.release()
                data.advance(got)
                remaining -= got
                job.progress(got)
            data.write(padding(entry.size))
            after = os.fstat(fd)
            if (
                after.st_mtime_ns != entry.mtime_ns or after.st_ctime_ns != entry.ctime_ns
            ) and entry.path not in changed:
                changed.append(entry.path)
        finally:
            os.close(fd)
        entry.sha256 = digest.hexdigest()
        return entry.size

    # -- restore ----------------------------------------------------------------------------

    def restore(self, job: RestoreJob) -> None:
        """Create the tree of the last backup's manifest; each file from the tar holding it."""
        final = job.chain[-1]
        by_id = {b.id: b for b in job.chain}
        used: set[str] = set()
        counts = {"files": 0, "dirs": 0, "links": 0, "bytes": 0}
        with SafeRoot(job.target) as root:
            with job.open(final, MANIFEST) as reader:
                for e in read_manifest(reader):
                    parts = _split(e.path)
                    if e.type == "d":
                        root.mkdir(parts, e.mode, e.mtime_ns, e.uid, e.gid)
                        counts["dirs"] += 1
                    elif e.type == "l":
                        root.symlink(parts, e.target or "", e.mtime_ns, e.uid, e.gid)
                        counts["links"] += 1
                    elif e.type == "f":
                        if e.src not in by_id:
                            raise BackupError(
                                f"{e.path}: its content is in {e.src}, not in the chain"
                            )
                        used.add(e.src)
                reader.finish()
            for layer in job.chain:
                if layer.id in used:
                    files, size = self._restore_layer(job, layer.id, root)
                    counts["files"] += files
                    counts["bytes"] += size
            root.finish_dirs()
        job.stats.update(counts)

    def _restore_layer(self, job: RestoreJob, layer_id: str, root: SafeRoot) -> tuple[int, int]:
        final = job.chain[-1]
        layer = next(b for b in job.chain if b.id == layer_id)
        files = size = 0
        with job.open(final, MANIFEST) as mreader, job.open(layer, DATA) as data:
            wanted = (e for e in read_manifest(mreader) if e.type == "f" and e.src == layer_id)
            entry = next(wanted, None)
            for member in read_members(data):
                if entry is None:
                    break
                parts = _split(member.name)
                member_key = "\0".join(parts)
                if entry.key < member_key:
                    raise BackupError(f"{entry.path}: missing from the tar of {layer_id}")
                if entry.key != member_key:
                    continue  # superseded by a later backup, or deleted since
                if not member.isreg() or member.size != entry.size:
                    raise BackupError(f"{entry.path}: the tar of {layer_id} does not match")
                root.write_file(
                    parts, data, entry.size, entry.mode, entry.mtime_ns, entry.uid, entry.gid
                )
                job.progress(entry.size)
                files += 1
                size += entry.size
                entry = next(wanted, None)
            if entry is not None:
                raise BackupError(f"{entry.path}: missing from the tar of {layer_id}")
            data.finish()
            mreader.finish()
        return files, size

    # -- checks -----------------------------------------------------------------------------

    def check(self, job: RestoreJob) -> list[CheckResult]:
        """Compare the restored tree with the manifest: paths, types, sizes, modes, mtimes,
        link targets and every file's SHA-256."""
        target = Path(job.target)
        problems: list[str] = []
        checked = 0
        with job.open(job.chain[-1], MANIFEST) as reader:
            expected = read_manifest(reader)
            want = next(expected, None)
            for got in walk(target):
                while want is not None and want.key < got.key:
                    problems.append(f"missing: {want.path}")
                    want = next(expected, None)
                if want is None or want.key != got.key:
                    problems.append(f"unexpected: {got.path}")
                    continue
                checked += 1
                problems.extend(_compare(target, want, got))
                want = next(expected, None)
            while want is not None:
                problems.append(f"missing: {want.path}")
                want = next(expected, None)
            reader.finish()
        detail = (
            f"{checked} entries match the manifest" if not problems else "; ".join(problems[:5])
        )
        if len(problems) > 5:
            detail += f" (and {len(problems) - 5} more)"
        return [CheckResult("files match the manifest", not problems, detail)]

    @contextlib.contextmanager
    def scratch(self) -> Iterator[str]:
        """An empty temporary directory."""
        path = tempfile.mkdtemp(prefix="buttress-scratch-")
        try:
            yield path
        finally:
            shutil.rmtree(path, ignore_errors=True)

    def freshness(self, target: str) -> float | None:
        """None: the backup's consistency point is the newest data."""
        return None

    def query(self, target: str, sql: str) -> object:
        """Files have no queries: ``BackupError``."""
        raise BackupError("files backups take file checks, not queries")


def _compare(root: Path, want: Entry, got: Entry) -> list[str]:
    out = []
    if want.type != got.type:
        return [f"{want.path}: type {got.type}, expected {want.type}"]
    if want.mode != got.mode:
        out.append(f"{want.path}: mode {got.mode:o}, expected {want.mode:o}")
    if want.mtime_ns != got.mtime_ns:
        out.append(f"{want.path}: mtime differs")
    if want.type == "l" and want.target != got.target:
        out.append(f"{want.path}: link target differs")
    if want.type == "f":
        if want.size != got.size:
            out.append(f"{want.path}: size {got.size}, expected {want.size}")
        elif _sha256(root / got.path) != want.sha256:
            out.append(f"{want.path}: content differs (SHA-256)")
    return out


def _sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb", buffering=0) as f:
        while block := f.read(BLOCK):
            digest.update(block)
    return digest.hexdigest()


register("files", Files.from_spec)
