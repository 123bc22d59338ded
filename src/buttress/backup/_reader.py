"""Reading artifacts back: verify, decrypt and decompress in a worker thread.

``read_artifact`` runs the write chain backwards and checks the SHA-256 and size of the stored
bytes when the stream ends; ``hash_artifact`` only re-hashes the stored bytes.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any

from buttress.backup._crypto import EncryptionKey, Source
from buttress.backup._destination import Destination
from buttress.backup._model import Artifact, CheckResult
from buttress.backup._stream import BLOCK, DEPTH, END, HashingSource, zstd_module
from buttress.errors import BackupError, ChecksumMismatchError, DecryptionError

__all__ = ["ArtifactReader", "hash_artifact", "read_artifact"]


class _Decoder:
    """Decrypts and decompresses a source into plaintext blocks of at most ``BLOCK``."""

    def __init__(self, source: Source, compression: str) -> None:
        self._source = source
        self._compression = compression
        self._zstd: Any = None
        self._zlib: Any = None
        self._pending = b""
        if compression == "zstd":
            reader = zstd_module().ZstdDecompressor()
            self._zstd = reader.stream_reader(source, read_size=BLOCK, read_across_frames=True)
        elif compression == "gzip":
            self._zlib = zlib.decompressobj(31)

    def read_block(self) -> bytes:
        if self._zstd is not None:
            return bytes(self._zstd.read(BLOCK))
        if self._zlib is None:
            return self._source.read(BLOCK)
        while True:
            if not self._pending:
                self._pending = self._source.read(BLOCK)
                if not self._pending:
                    if not self._zlib.eof:
                        raise BackupError("truncated gzip stream")
                    return bytes(self._zlib.flush())
            out = self._zlib.decompress(self._pending, BLOCK)
            self._pending = self._zlib.unconsumed_tail
            if self._zlib.eof:
                self._pending = b""
            if out:
                return bytes(out)


class ArtifactReader:
    """A decoded artifact: ``read(n)`` returns exactly ``n`` bytes until the end; ``tell()``
    and forward-only ``seek()`` let ``tarfile`` read it as a file."""

    __slots__ = ("_block", "_eof", "_error", "_offset", "_pos", "_queue", "_stop", "_thread")

    def __init__(self, produce: Callable[[Callable[[bytes], bool]], None]) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=DEPTH)
        self._stop = threading.Event()
        self._block = b""
        self._offset = 0
        self._pos = 0
        self._eof = False
        self._error: BaseException | None = None

        def emit(block: bytes) -> bool:
            while not self._stop.is_set():
                try:
                    self._queue.put(block, timeout=0.05)
                    return True
                except queue.Full:
                    continue
            return False

        def run() -> None:
            try:
                produce(emit)
                emit(END)  # type: ignore[arg-type]
            except BaseException as exc:
                self._error = exc
                emit(END)  # type: ignore[arg-type]

        self._thread = threading.Thread(target=run, name="buttress-backup-reader", daemon=True)
        self._thread.start()

    def _next_block(self) -> bool:
        if self._eof:
            return False
        item = self._queue.get()
        if item is END:
            self._eof = True
            if self._error is not None:
                raise self._error
            return False
        self._block = item  # type: ignore[assignment]
        self._offset = 0
        return True

    def read(self, size: int = -1) -> bytes:
        """``size`` bytes (fewer only at the end; all the rest when negative)."""
        parts: list[bytes] = []
        want = size if size >= 0 else 1 << 62
        while want > 0:
            if self._offset >= len(self._block) and not self._next_block():
                break
            take = self._block[self._offset : self._offset + want]
            self._offset += len(take)
            want -= len(take)
            parts.append(take)
        data = parts[0] if len(parts) == 1 else b"".join(parts)
        self._pos += len(data)
        return data

    def tell(self) -> int:
        """Plaintext bytes read (or skipped) so far."""
        return self._pos

    def seek(self, offset: int, whence: int = 0) -> int:
        """Skip forward to ``offset``; going back raises ``BackupError``."""
        target = offset if whence == 0 else self._pos + offset
        if whence not in (0, 1) or target < self._pos:
            raise BackupError("artifact streams can only move forward")
        while self._pos < target:
            if not self.read(min(target - self._pos, BLOCK)):
                break
        return self._pos

    def readable(self) -> bool:
        """Always True."""
        return True

    def seekable(self) -> bool:
        """False: only forward skips are possible."""
        return False

    def finish(self) -> None:
        """Read to the end, so that the stored bytes' checksum is checked."""
        while self._next_block():
            pass

    def close(self) -> None:
        """Stop the worker thread."""
        self._stop.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()
        self._thread.join()


@contextlib.contextmanager
def read_artifact(
    destination: Destination,
    key: str,
    artifact: Artifact,
    *,
    compression: str,
    encryption: EncryptionKey | None,
    encrypted: bool,
) -> Iterator[ArtifactReader]:
    """The plaintext of a stored artifact. The stored bytes' SHA-256 and size are checked when
    the stream ends (call ``finish()`` to read to the end): ``ChecksumMismatchError`` if they
    differ; ``DecryptionError`` for a wrong or missing key."""
    if encrypted and encryption is None:
        raise DecryptionError(f"{key}: the artifact is encrypted and no key was given")

    def produce(emit: Callable[[bytes], bool]) -> None:
        with destination.open_read(key) as raw:
            source = HashingSource(raw)
            try:
                plain: Source = encryption.decryptor(source) if encryption and encrypted else source
                decoder = _Decoder(plain, compression)
                while block := decoder.read_block():
                    if not emit(block):
                        return
            except DecryptionError as exc:
                if "wrong key" in str(exc):
                    raise
                _check(key, artifact, source, exc)
                raise
            except Exception as exc:
                _check(key, artifact, source, exc)
                raise BackupError(f"{key}: damaged artifact: {exc}") from exc
            _check(key, artifact, source, None)

    reader = ArtifactReader(produce)
    try:
        yield reader
    finally:
        reader.close()


def _check(
    key: str, artifact: Artifact, source: HashingSource, cause: BaseException | None
) -> None:
    source.drain()
    digest = source.hash.hexdigest()
    if digest != artifact.sha256 or source.size != artifact.size:
        raise ChecksumMismatchError(
            f"{key}: SHA-256 {digest} ({source.size} bytes) does not match the catalog's "
            f"{artifact.sha256} ({artifact.size} bytes)"
        ) from cause


def hash_artifact(destination: Destination, key: str, artifact: Artifact) -> CheckResult:
    """Re-read the stored bytes of ``artifact`` and compare their SHA-256 and size."""
    try:
        with destination.open_read(key) as raw:
            source = HashingSource(raw)
            source.drain()
    except (BackupError, OSError) as exc:
        return CheckResult(artifact.name, False, f"unreadable: {exc}")
    digest = source.hash.hexdigest()
    if digest == artifact.sha256 and source.size == artifact.size:
        return CheckResult(artifact.name, True, f"sha256 {digest[:16]}..., {source.size} bytes")
    return CheckResult(
        artifact.name,
        False,
        f"sha256 {digest} ({source.size} bytes) != catalog {artifact.sha256} "
        f"({artifact.size} bytes)",
    )
