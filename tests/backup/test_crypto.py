"""Encryption: chunked AES-256-GCM round-trips, and every kind of tampering is an error."""

from __future__ import annotations

import base64
import io
import os
import struct
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from buttress.backup import BackupManager, EncryptionKey, Files
from buttress.backup._manager import artifact_key
from buttress.errors import ConfigError, DecryptionError

from .conftest import snapshot

HEADER = 44  # magic, key id, salt, chunk size


def _encrypt(key: EncryptionKey, data: bytes, chunk: int = 64, pieces: int = 7) -> bytes:
    out = io.BytesIO()
    enc = key.encryptor(out, chunk_size=chunk)
    for i in range(0, len(data), pieces):
        enc.write(data[i : i + pieces])
    enc.close()
    return out.getvalue()


def _decrypt(key: EncryptionKey, blob: bytes) -> bytes:
    return key.decryptor(io.BytesIO(blob)).read()


def _frames(blob: bytes) -> list[bytes]:
    frames, pos = [], HEADER
    while pos < len(blob):
        (length,) = struct.unpack(">I", blob[pos : pos + 4])
        frames.append(blob[pos : pos + 4 + length])
        pos += 4 + length
    return frames


KEY = EncryptionKey(bytes(range(32)))


@settings(max_examples=60, deadline=None)
@given(data=st.binary(max_size=700), chunk=st.integers(1, 130), pieces=st.integers(1, 200))
def test_round_trip_any_sizes(data: bytes, chunk: int, pieces: int) -> None:
    """Whatever the data, chunk size and write sizes, decryption gives back the plaintext."""
    assert _decrypt(KEY, _encrypt(KEY, data, chunk, pieces)) == data


def test_wrong_key_is_a_decryption_error() -> None:
    """Another key is refused by its id before anything is decrypted."""
    blob = _encrypt(KEY, b"secret data" * 50)
    other = EncryptionKey(os.urandom(32))
    with pytest.raises(DecryptionError, match="wrong key"):
        _decrypt(other, blob)


def test_same_key_id_but_altered_header_fails_authentication() -> None:
    """A header changed after encryption (its salt) fails every chunk's tag."""
    blob = bytearray(_encrypt(KEY, b"x" * 300))
    blob[30] ^= 1  # inside the salt
    with pytest.raises(DecryptionError, match="authentication"):
        _decrypt(KEY, bytes(blob))


@pytest.mark.parametrize(
    "tamper",
    ["drop_last", "drop_middle", "swap", "duplicate", "flip", "append", "cut_inside"],
)
def test_tampering_is_detected(tamper: str) -> None:
    """Dropped, swapped, duplicated, flipped, appended or cut chunks never yield plaintext."""
    blob = _encrypt(KEY, os.urandom(64 * 5 + 10))
    frames = _frames(blob)
    head = blob[:HEADER]
    assert len(frames) == 6
    if tamper == "drop_last":
        altered = head + b"".join(frames[:-1])
    elif tamper == "drop_middle":
        altered = head + b"".join(frames[:2] + frames[3:])
    elif tamper == "swap":
        altered = head + b"".join([frames[1], frames[0], *frames[2:]])
    elif tamper == "duplicate":
        altered = head + b"".join([frames[0], *frames])
    elif tamper == "flip":
        mutable = bytearray(blob)
        mutable[HEADER + 20] ^= 0x40
        altered = bytes(mutable)
    elif tamper == "append":
        altered = blob + frames[0]
    else:
        altered = blob[:-5]
    with pytest.raises(DecryptionError):
        _decrypt(KEY, altered)


def test_empty_plaintext_is_authenticated() -> None:
    """An empty stream still has a final chunk; removing it is detected."""
    blob = _encrypt(KEY, b"")
    assert _decrypt(KEY, blob) == b""
    with pytest.raises(DecryptionError, match="truncated"):
        _decrypt(KEY, blob[:HEADER])


def test_keys_from_files_and_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Hex, base64 and raw keys load from files and variables; the reference is kept, not
    the key."""
    raw = os.urandom(32)
    hex_file = tmp_path / "hex.key"
    hex_file.write_text(raw.hex() + "\n")
    raw_file = tmp_path / "raw.key"
    raw_file.write_bytes(raw)
    monkeypatch.setenv("BACKUP_KEY", base64.b64encode(raw).decode())
    keys = [
        EncryptionKey.from_file(hex_file),
        EncryptionKey.from_file(raw_file),
        EncryptionKey.from_env("BACKUP_KEY"),
        EncryptionKey.from_bytes(raw),
    ]
    assert len({k.id for k in keys}) == 1
    assert keys[0].reference == {"file": str(hex_file)}
    assert keys[2].reference == {"env": "BACKUP_KEY"}
    assert raw.hex() not in repr(keys[0])
    assert "BACKUP_KEY" not in repr(keys[2])
    assert len(EncryptionKey.generate()) == 64


def test_bad_keys_are_config_errors(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A short key, a missing file or an unset variable names the field and hides the value."""
    short = tmp_path / "short.key"
    short.write_text("abcd")
    with pytest.raises(ConfigError, match="key_file") as info:
        EncryptionKey.from_file(short)
    assert "abcd" not in str(info.value)
    with pytest.raises(ConfigError, match="key_file"):
        EncryptionKey.from_file(tmp_path / "missing.key")
    monkeypatch.delenv("NO_SUCH_KEY", raising=False)
    with pytest.raises(ConfigError, match="key_env"):
        EncryptionKey.from_env("NO_SUCH_KEY")


def test_encrypted_backup_round_trip_and_key_never_stored(
    manager: BackupManager, tree: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """An encrypted backup restores; the catalog and the artifacts hold the key id, never
    the key."""
    secret = EncryptionKey.generate()
    monkeypatch.setenv("SITE_KEY", secret)
    manager.configure("site", Files(tree), key=EncryptionKey.from_env("SITE_KEY"))
    backup = manager.create("site")
    assert backup.key_id == EncryptionKey.from_env("SITE_KEY").id
    stored = tmp_path / "store" / artifact_key(backup, "data.tar")
    assert stored.name.endswith(".zst.enc")
    for path in [tmp_path / "catalog.db", *(tmp_path / "store").rglob("*")]:
        if path.is_file():
            content = path.read_bytes()
            assert secret.encode() not in content
            assert bytes.fromhex(secret) not in content
    fresh = BackupManager(tmp_path / "catalog.db", tmp_path / "store")  # key from the reference
    fresh.restore(backup.id, tmp_path / "out")
    assert snapshot(tmp_path / "out") == snapshot(tree)


def test_restore_with_the_wrong_key_fails_before_writing(
    manager: BackupManager, tree: Path, tmp_path: Path
) -> None:
    """Restoring an encrypted backup with another key raises DecryptionError; nothing is written."""
    manager.configure("site", Files(tree), key=EncryptionKey(os.urandom(32)))
    backup = manager.create("site")
    fresh = BackupManager(tmp_path / "catalog.db", tmp_path / "store")
    with pytest.raises(DecryptionError, match="wrong key"):
        fresh.restore(backup.id, tmp_path / "out", key=EncryptionKey(os.urandom(32)))
    with pytest.raises(DecryptionError, match="not available"):
        fresh.restore(backup.id, tmp_path / "out")
    assert not (tmp_path / "out").exists()
