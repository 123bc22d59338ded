"""Encryption at rest: AES-256-GCM over a stream, in authenticated chunks.

Format of an encrypted artifact::

    header  = b"BTRSAE01" | key id (16 bytes) | salt (16 bytes) | chunk size (4 bytes, BE)
    frames  = (length (4 bytes, BE) | ciphertext and 16-byte tag) ...

Each artifact gets its own data key, HKDF-SHA256(key, salt), so nonces never repeat across
artifacts. The nonce of chunk ``i`` is ``i`` (11 bytes, BE) followed by a final flag (1 for
the last chunk, 0 otherwise), and the header is the associated data of every chunk: a chunk
moved, dropped, duplicated, or a stream cut after a non-final chunk fails authentication
(the STREAM construction of Hoang, Reyhanitabar, Rogaway and Vizár). Memory is one chunk.

The key is 32 bytes, read from a file or an environment variable (64 hex characters, base64,
or 32 raw bytes in a file) and never stored beside the backup: the catalog and each artifact
hold only the key id, a hash of the key, so a wrong key is reported as such before anything
is decrypted. ``cryptography`` (the ``backup`` extra) is imported when a key is first used.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import os
import secrets
import struct
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from buttress.errors import ConfigError, DecryptionError

if TYPE_CHECKING:
    from cryptography.hazmat.primitives.ciphers.aead import AESGCM

__all__ = ["ChunkDecryptor", "ChunkEncryptor", "EncryptionKey", "Sink", "Source"]

MAGIC = b"BTRSAE01"
CHUNK = 1 << 20
TAG = 16
_HEADER = struct.Struct(">8s16s16sI")
_LENGTH = struct.Struct(">I")
_KEY_ID_CONTEXT = b"buttress-backup-key-id\0"
MISSING_EXTRA = "encryption needs the 'backup' extra: pip install 'buttress[backup]'"


class Sink(Protocol):
    """Where bytes are written."""

    def write(self, data: bytes, /) -> Any: ...


class Source(Protocol):
    """Where bytes are read from."""

    def read(self, size: int = -1, /) -> bytes: ...


def _aesgcm(key: bytes) -> AESGCM:
    try:
        from cryptography.hazmat.primitives.ciphers.aead import AESGCM
    except ImportError as exc:  # pragma: no cover - the extra is installed in tests
        raise ImportError(MISSING_EXTRA) from exc
    return AESGCM(key)


def _derive(key: bytes, salt: bytes) -> bytes:
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.kdf.hkdf import HKDF

    return HKDF(hashes.SHA256(), 32, salt, b"buttress-backup-v1").derive(key)


def _nonce(index: int, final: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if final else b"\x00")


def _parse_key(text: bytes, where: str) -> bytes:
    stripped = text.strip()
    if len(stripped) == 64:
        try:
            return bytes.fromhex(stripped.decode("ascii"))
        except (ValueError, UnicodeDecodeError):
            pass
    try:
        decoded = base64.b64decode(stripped, altchars=b"-_" if b"-" in stripped else None)
        if len(decoded) == 32:
            return decoded
    except (binascii.Error, ValueError):
        pass
    if len(text) == 32:
        return bytes(text)
    raise ConfigError(where, "<redacted>", "must hold a 32-byte key: 64 hex characters or base64")


class EncryptionKey:
    """A 256-bit key for AES-256-GCM. Build it with ``from_file``, ``from_env`` or
    ``from_bytes``; ``generate()`` returns a new key as hex text to save. The key never
    appears in ``repr``; ``id`` (a hash) is what the catalog stores."""

    __slots__ = ("_key", "id", "reference")

    def __init__(self, key: bytes, *, reference: dict[str, str] | None = None) -> None:
        if not isinstance(key, bytes) or len(key) != 32:
            raise ConfigError("key", "<redacted>", "must be 32 bytes")
        self._key = key
        self.id = hashlib.sha256(_KEY_ID_CONTEXT + key).hexdigest()[:32]
        self.reference = reference
        """Where the key comes from (``{"file": path}`` or ``{"env": name}``), or None."""

    @classmethod
    def from_bytes(cls, key: bytes) -> EncryptionKey:
        """A key given directly (32 raw bytes)."""
        return cls(key)

    @classmethod
    def from_file(cls, path: str | os.PathLike[str]) -> EncryptionKey:
        """The key in the file at ``path`` (hex, base64 or 32 raw bytes)."""
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise ConfigError(
                "key_file", os.fspath(path), f"must be a readable file ({exc.strerror})"
            ) from None
        return cls(_parse_key(data, "key_file"), reference={"file": os.fspath(path)})

    @classmethod
    def from_env(cls, name: str) -> EncryptionKey:
        """The key in the environment variable ``name`` (hex or base64)."""
        value = os.environ.get(name)
        if not value:
            raise ConfigError("key_env", name, "must name a set environment variable")
        return cls(_parse_key(value.encode(), "key_env"), reference={"env": name})

    @classmethod
    def from_reference(cls, reference: dict[str, str]) -> EncryptionKey:
        """The key from a stored reference (``{"file": ...}`` or ``{"env": ...}``)."""
        if "file" in reference:
            return cls.from_file(reference["file"])
        if "env" in reference:
            return cls.from_env(reference["env"])
        raise ConfigError("key", reference, "must be a {'file': path} or {'env': name} reference")

    @staticmethod
    def generate() -> str:
        """A new random key as 64 hex characters (save it in a file or a secret store)."""
        return secrets.token_hex(32)

    def encryptor(self, sink: Sink, *, chunk_size: int = CHUNK) -> ChunkEncryptor:
        """A writer encrypting into ``sink``."""
        return ChunkEncryptor(self._key, self.id, sink, chunk_size=chunk_size)

    def decryptor(self, source: Source) -> ChunkDecryptor:
        """A reader decrypting ``source``; raises ``DecryptionError`` on a wrong key or damage."""
        return ChunkDecryptor(self._key, self.id, source)

    def __repr__(self) -> str:
        return f"EncryptionKey(id={self.id!r})"


class ChunkEncryptor:
    """Buffers plaintext and writes one authenticated frame per chunk; ``close()`` writes the
    final frame (possibly empty) and must be called."""

    __slots__ = ("_aead", "_buf", "_chunk", "_closed", "_header", "_index", "_sink")

    def __init__(self, key: bytes, key_id: str, sink: Sink, *, chunk_size: int = CHUNK) -> None:
        salt = os.urandom(16)
        self._header = _HEADER.pack(MAGIC, bytes.fromhex(key_id), salt, chunk_size)
        self._aead = _aesgcm(_derive(key, salt))
        self._sink = sink
        self._chunk = chunk_size
        self._buf = bytearray()
        self._index = 0
        self._closed = False
        sink.write(self._header)

    def _frame(self, data: bytes | bytearray | memoryview, final: bool) -> None:
        sealed = self._aead.encrypt(_nonce(self._index, final), bytes(data), self._header)
        self._sink.write(_LENGTH.pack(len(sealed)) + sealed)
        self._index += 1

    def write(self, data: bytes | bytearray | memoryview) -> int:
        """Encrypt ``data`` (buffered until a chunk is full and more follows)."""
        self._buf += data
        chunk = self._chunk
        # Keep at least one byte back: the last chunk must be written with the final flag.
        if len(self._buf) > chunk:
            view = memoryview(self._buf)
            start = 0
            while len(self._buf) - start > chunk:
                self._frame(view[start : start + chunk], False)
                start += chunk
            view.release()
            del self._buf[:start]
        return len(data)

    def flush(self) -> None:
        """Nothing to do: frames are written as chunks fill."""

    def close(self) -> None:
        """Write the final frame."""
        if not self._closed:
            self._closed = True
            self._frame(self._buf, True)
            self._buf = bytearray()


class ChunkDecryptor:
    """Reads frames, checks each one's tag, and returns plaintext; raises ``DecryptionError``
    on a wrong key, any altered, moved or missing frame, or a stream cut short."""

    __slots__ = ("_aead", "_buf", "_done", "_header", "_index", "_max", "_next", "_source")

    def __init__(self, key: bytes, key_id: str, source: Source) -> None:
        self._source = source
        header = _read_exact(source, _HEADER.size)
        if len(header) < _HEADER.size or header[:8] != MAGIC:
            raise DecryptionError("not an encrypted buttress artifact (bad header)")
        _magic, stored_id, salt, chunk = _HEADER.unpack(header)
        if stored_id.hex() != key_id:
            raise DecryptionError(
                f"wrong key: the artifact was encrypted with key id {stored_id.hex()}, "
                f"this key's id is {key_id}"
            )
        self._header = header
        self._aead = _aesgcm(_derive(key, salt))
        self._max = chunk + TAG
        self._index = 0
        self._buf = b""
        self._done = False
        self._next = self._read_frame()

    def _read_frame(self) -> bytes | None:
        head = _read_exact(self._source, 4)
        if not head:
            return None
        if len(head) < 4:
            raise DecryptionError("truncated ciphertext")
        (length,) = _LENGTH.unpack(head)
        if not TAG <= length <= self._max:
            raise DecryptionError("damaged ciphertext (bad frame length)")
        sealed = _read_exact(self._source, length)
        if len(sealed) < length:
            raise DecryptionError("truncated ciphertext")
        return sealed

    def _open_next(self) -> bytes:
        sealed = self._next
        if sealed is None:
            raise DecryptionError("truncated ciphertext (no final chunk)")
        following = self._read_frame()
        final = following is None
        from cryptography.exceptions import InvalidTag

        try:
            plain = self._aead.decrypt(_nonce(self._index, final), sealed, self._header)
        except InvalidTag:
            raise DecryptionError(
                f"chunk {self._index} failed authentication: the ciphertext was altered, "
                "reordered or cut short"
            ) from None
        self._index += 1
        self._next = following
        self._done = final
        return plain

    def read(self, size: int = -1) -> bytes:
        """Up to ``size`` bytes of plaintext (all the rest when negative); b"" at the end."""
        while not self._done and (size < 0 or len(self._buf) < size):
            self._buf += self._open_next()
        if size < 0 or size >= len(self._buf):
            out, self._buf = self._buf, b""
        else:
            out, self._buf = self._buf[:size], self._buf[size:]
        return out

    def readable(self) -> bool:
        """Always True."""
        return True


def _read_exact(source: Source, size: int) -> bytes:
    data = source.read(size)
    if len(data) == size or not data:
        return data
    parts = [data]
    got = len(data)
    while got < size:
        more = source.read(size - got)
        if not more:
            break
        parts.append(more)
        got += len(more)
    return b"".join(parts)
