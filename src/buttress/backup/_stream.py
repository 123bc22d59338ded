"""Writing artifacts as streams: compress, encrypt, hash and store in one pass.

Writing: the strategy writes plaintext (or reads files straight into ``space()``) into blocks
of 1 MiB taken from a pool of ``DEPTH + 2`` that are reused, never allocated afresh; full
blocks go through a bounded queue to a thread that compresses them (zstd level 3 with its
frame checksum, as the zstd command line; or gzip), then the compressed bytes to a second
thread that encrypts (optional), hashes (SHA-256 of the stored bytes) and writes to the
destination. Three threads overlap like ``tar | zstd`` (reading, compressing, writing); zstd,
zlib, hashlib, AES and file I/O release the GIL on large buffers. Reading runs the chain
backwards in a worker thread and checks the SHA-256 and size of the stored bytes at the end.
Memory stays bounded whatever the size of the data.
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


def _compressor(
    compression: str,
) -> tuple[Callable[[memoryview], bytes], Callable[[], bytes]]:
    if compression == "zstd":
        obj = zstd_module().ZstdCompressor(level=ZSTD_LEVEL, write_checksum=True).compressobj()
        return obj.compress, obj.flush
    if compression == "gzip":
        zobj = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        return zobj.compress, zobj.flush
    return bytes, (lambda: b"")  # a copy: the block goes back to the pool


class _Worker:
    """A thread consuming the items put to it, in order, through a bounded queue; an error
    in ``consume`` or ``finish`` is raised to the producer at its next ``put`` or ``close``."""

    __slots__ = ("_error", "_queue", "_thread")

    def __init__(
        self,
        consume: Callable[[Any], None],
        finish: Callable[[], None],
        name: str,
        released: Callable[[Any], None] | None = None,
    ) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=DEPTH)
        self._error: BaseException | None = None

        def run() -> None:
            try:
                while (item := self._queue.get()) is not END:
                    if item is _ABORT:
                        return
                    consume(item)
                    if released is not None:
                        released(item)
                finish()
            except BaseException as exc:
                self._error = exc
                while self._queue.get() not in (END, _ABORT):  # unblock the producer
                    pass

        self._thread = threading.Thread(target=run, name=name, daemon=True)
        self._thread.start()

    def check(self) -> None:
        """Raise the worker's error, if it failed."""
        if self._error is not None:
            raise self._error

    def put(self, item: object) -> None:
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

    def close(self, abort: bool) -> None:
        self.put(_ABORT if abort else END)
        self._thread.join()
        if self._error is not None and not abort:
            raise self._error


class _Pool:
    """At most ``size`` blocks of ``BLOCK`` bytes, reused: a block written in full is never
    allocated again (fresh large allocations cost a page fault per 4 KiB)."""

    __slots__ = ("_free", "_made", "_ready", "_size")

    def __init__(self, size: int) -> None:
        self._free: list[bytearray] = []
        self._made = 0
        self._size = size
        self._ready = threading.Condition()

    def take(self, check: Callable[[], None]) -> bytearray:
        with self._ready:
            while not self._free:
                if self._made < self._size:
                    self._made += 1
                    return bytearray(BLOCK)
                check()  # the worker holding the blocks failed: stop waiting
                self._ready.wait(0.05)
            return self._free.pop()

    def give(self, block: bytearray) -> None:
        with self._ready:
            self._free.append(block)
            self._ready.notify()


class ArtifactWriter:
    """What a strategy writes an artifact's plaintext to: ``write(data)`` and ``tell()``; or,
    without a copy, fill ``space()`` (the free part of the current block) and ``advance(n)``.

    Blocks of ``BLOCK`` bytes from a small pool go through a bounded queue to the worker
    thread; a block goes back to the pool once consumed, so memory stays bounded."""

    __slots__ = ("_block", "_fill", "_pool", "_worker", "_written")

    def __init__(self, consume: Callable[[memoryview], None], finish: Callable[[], None]) -> None:
        self._pool = _Pool(DEPTH + 2)
        self._block: bytearray | None = None
        self._fill = 0
        self._written = 0

        def consume_block(item: tuple[bytearray, int]) -> None:
            with memoryview(item[0]) as view:
                consume(view[: item[1]])

        def release(item: tuple[bytearray, int]) -> None:
            self._pool.give(item[0])

        self._worker = _Worker(consume_block, finish, "buttress-backup-writer", release)

    def space(self) -> memoryview:
        """The free part of the current block (never empty): fill a prefix, then
        ``advance`` by its length. Valid until the next call on this writer."""
        if self._block is None:
            self._block = self._pool.take(self._worker.check)
            self._fill = 0
        return memoryview(self._block)[self._fill :]

    def advance(self, size: int) -> None:
        """Count ``size`` bytes written into ``space()``; a full block goes to the worker."""
        self._fill += size
        self._written += size
        if self._fill >= BLOCK:
            self._send()

    def _send(self) -> None:
        if self._block is not None and self._fill:
            block, fill = self._block, self._fill
            self._block = None
            self._worker.put((block, fill))

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Copy ``data`` into blocks for compression, encryption and storage."""
        size = len(data)
        block, start = self._block, self._fill
        if block is not None and start + size < BLOCK:  # the common case: it fits
            block[start : start + size] = data
            self._fill = start + size
            self._written += size
            return size
        with memoryview(data) as view:
            while view:
                space = self.space()
                n = min(len(space), len(view))
                space[:n] = view[:n]
                space.release()
                self.advance(n)
                view = view[n:]
        return size

    def tell(self) -> int:
        """Plaintext bytes written so far."""
        return self._written

    def _close(self, abort: bool) -> None:
        if not abort:
            self._send()
        self._worker.close(abort)


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
        stored = _Worker(out, seal, "buttress-backup-store")

        def compress_block(block: memoryview) -> None:
            data = compress(block)
            if data:
                stored.put(data)

        def finish() -> None:
            data = flush()
            if data:
                stored.put(data)
            stored.close(abort=False)

        writer = ArtifactWriter(compress_block, finish)
        try:
            yield writer
        except BaseException:
            writer._close(abort=True)
            stored.close(abort=True)
            raise
        try:
            writer._close(abort=False)
        except BaseException:
            stored.close(abort=True)
            raise
    done(Artifact(name, sink.size, sink.hash.hexdigest()))
