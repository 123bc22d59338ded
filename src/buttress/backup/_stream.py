"""Writing artifacts as streams: compress, encrypt, hash and store in one pass.

Writing: the strategy writes plaintext; blocks of 1 MiB go through a bounded queue to a worker
thread that compresses (zstd or gzip), encrypts (optional) and writes to the destination while
hashing the stored bytes. Reading runs the chain backwards in a worker thread and checks the
SHA-256 and size of the stored bytes at the end. The queues hold a few blocks, so memory stays
bounded whatever the size of the data, and the two threads overlap compression with reading
files (zstd, zlib, hashlib and AES release the GIL on large buffers).
"""

from __future__ import annotations

import contextlib
import hashlib
import queue
import threading
import zlib
from collections.abc import Callable, Iterator
from typing import Any, BinaryIO

from buttress.backup._crypto import EncryptionKey
from buttress.backup._destination import Destination
from buttress.backup._model import Artifact
from buttress.errors import BackupError, ConfigError

__all__ = [
    "BLOCK",
    "COMPRESSIONS",
    "ArtifactWriter",
    "check_compression",
    "suffix",
    "write_artifact",
]

BLOCK = 1 << 20
DEPTH = 4
COMPRESSIONS = ("zstd", "gzip", "none")
ZSTD_LEVEL = 3
GZIP_LEVEL = 6
MISSING_ZSTD = "zstd compression needs the 'backup' extra: pip install 'buttress[backup]'"
END = object()
_ABORT = object()


def check_compression(value: object) -> str:
    """``zstd`` (default), ``gzip`` or ``none``."""
    if value not in COMPRESSIONS:
        raise ConfigError("compression", value, "must be one of zstd, gzip, none")
    return str(value)


def suffix(compression: str, encrypted: bool) -> str:
    """The file suffix of an artifact: ``.zst``, ``.gz`` or nothing, then ``.enc``."""
    base = {"zstd": ".zst", "gzip": ".gz", "none": ""}[compression]
    return base + (".enc" if encrypted else "")


def zstd_module() -> Any:
    try:
        import zstandard
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise ImportError(MISSING_ZSTD) from exc
    return zstandard


class _HashingSink:
    __slots__ = ("hash", "inner", "size")

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.hash.update(data)
        self.size += len(data)
        view = memoryview(data)
        while view:  # a raw FileIO may write less than asked
            written = self.inner.write(view)
            view = view[written or 0 :]
        return len(data)


class HashingSource:
    __slots__ = ("hash", "inner", "size")

    def __init__(self, inner: BinaryIO) -> None:
        self.inner = inner
        self.hash = hashlib.sha256()
        self.size = 0

    def read(self, size: int = -1) -> bytes:
        data = self.inner.read(size if size >= 0 else -1) or b""
        self.hash.update(data)
        self.size += len(data)
        return data

    def drain(self) -> None:
        while self.read(BLOCK):
            pass


def _compressor(compression: str) -> tuple[Callable[[bytes], bytes], Callable[[], bytes]]:
    if compression == "zstd":
        obj = zstd_module().ZstdCompressor(level=ZSTD_LEVEL).compressobj()
        return obj.compress, obj.flush
    if compression == "gzip":
        zobj = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        return zobj.compress, zobj.flush
    return (lambda data: data), (lambda: b"")


class ArtifactWriter:
    """What a strategy writes an artifact's plaintext to: ``write(data)`` and ``tell()``."""

    __slots__ = ("_buf", "_error", "_queue", "_thread", "_written")

    def __init__(self, consume: Callable[[bytes], None], finish: Callable[[], None]) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=DEPTH)
        self._buf = bytearray()
        self._written = 0
        self._error: BaseException | None = None

        def run() -> None:
            try:
                while (item := self._queue.get()) is not END:
                    if item is _ABORT:
                        return
                    consume(item)  # type: ignore[arg-type]
                finish()
            except BaseException as exc:
                self._error = exc
                while self._queue.get() not in (END, _ABORT):  # unblock the producer
                    pass

        self._thread = threading.Thread(target=run, name="buttress-backup-writer", daemon=True)
        self._thread.start()

    def _put(self, item: object) -> None:
        closing = item is END or item is _ABORT
        while True:
            if self._error is not None and not closing:
                raise self._error
            if not self._thread.is_alive():
                if closing:
                    return
                raise self._error or BackupError("the artifact writer has stopped")
            try:
                self._queue.put(item, timeout=0.05)
                return
            except queue.Full:
                continue

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Queue ``data`` for compression, encryption and storage."""
        size = len(data)
        self._written += size
        if size >= BLOCK // 2:  # large: pass it on as is (no copy into the buffer)
            if self._buf:
                self._put(bytes(self._buf))
                self._buf.clear()
            self._put(data if isinstance(data, bytes) else bytes(data))
            return size
        self._buf += data
        if len(self._buf) >= BLOCK:
            self._put(bytes(self._buf))
            self._buf.clear()
        return size

    def tell(self) -> int:
        """Plaintext bytes written so far."""
        return self._written

    def _close(self, abort: bool) -> None:
        if not abort and self._buf:
            self._put(bytes(self._buf))
            self._buf.clear()
        self._put(_ABORT if abort else END)
        self._thread.join()
        if self._error is not None and not abort:
            raise self._error


@contextlib.contextmanager
def write_artifact(
    destination: Destination,
    key: str,
    name: str,
    *,
    compression: str,
    encryption: EncryptionKey | None,
    done: Callable[[Artifact], None],
) -> Iterator[ArtifactWriter]:
    """Store what is written as the object ``key``; on a clean exit call ``done`` with the
    artifact (``name``, stored size, SHA-256 of the stored bytes)."""
    compress, flush = _compressor(compression)
    with destination.open_write(key) as raw:
        sink = _HashingSink(raw)
        encryptor = encryption.encryptor(sink) if encryption is not None else None
        out: Callable[[bytes], Any] = encryptor.write if encryptor is not None else sink.write

        def seal() -> None:
            if encryptor is not None:
                encryptor.close()

        # Two stages, each in its own thread: compression, then encryption, hashing and
        # writing, so that neither waits for the other (zstd CLI overlaps them the same way).
        stored = ArtifactWriter(out, seal)

        def compress_block(block: bytes) -> None:
            data = compress(block)
            if data:
                stored.write(data)

        def finish() -> None:
            data = flush()
            if data:
                stored.write(data)
            stored._close(abort=False)

        writer = ArtifactWriter(compress_block, finish)
        try:
            yield writer
        except BaseException:
            writer._close(abort=True)
            stored._close(abort=True)
            raise
        try:
            writer._close(abort=False)
        except BaseException:
            stored._close(abort=True)
            raise
    done(Artifact(name, sink.size, sink.hash.hexdigest()))
