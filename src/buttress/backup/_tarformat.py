"""The tar format, read and written quickly: ustar headers, PAX and GNU extensions.

Writing: a regular file's ustar header is packed directly when its name is short ASCII and
its numbers fit; anything else gets a PAX header from ``tarfile``. Reading: headers are parsed
with ``struct`` (checksum checked), PAX (``x``, ``g``) and GNU long names (``L``, ``K``) are
applied, and a member's data is left in the stream for the caller; what the caller does not
read is skipped before the next header. Both are several times faster per member than
``tarfile``, which matters for trees of many small files.
"""

from __future__ import annotations

import struct
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Protocol

from buttress.errors import BackupError

__all__ = ["Member", "end_of_archive", "file_header", "padding", "read_members"]

BLOCKSIZE = 512
RECORDSIZE = 20 * BLOCKSIZE
_HEADER = struct.Struct("100s8s8s8s12s12s8sc100s6s2s32s32s8s8s155s12x")
_ZERO = bytes(BLOCKSIZE)
_MAX_OCTAL_11 = 8**11
_MAX_OCTAL_7 = 8**7


class Readable(Protocol):
    """A forward-only binary stream."""

    def read(self, size: int = -1, /) -> bytes: ...

    def tell(self) -> int: ...

    def seek(self, offset: int, whence: int = 0, /) -> int: ...


@dataclass(slots=True)
class Member:
    """One archive member: its data (``size`` bytes) follows in the stream."""

    name: str
    type: bytes
    size: int
    mode: int
    mtime: float
    uid: int
    gid: int
    linkname: str

    def isreg(self) -> bool:
        """A regular file."""
        return self.type in (b"0", b"\0", b"7")

    def isdir(self) -> bool:
        """A directory."""
        return self.type == b"5"

    def issym(self) -> bool:
        """A symbolic link."""
        return self.type == b"2"


def file_header(name: str, size: int, mode: int, mtime: int, uid: int, gid: int) -> bytes:
    """The header of a regular file member (ustar, or PAX for long or non-ASCII names)."""
    raw = name.encode("utf-8", "surrogateescape")
    if (
        len(raw) <= 100
        and raw.isascii()
        and 0 <= size < _MAX_OCTAL_11
        and 0 <= mtime < _MAX_OCTAL_11
        and 0 <= uid < _MAX_OCTAL_7
        and 0 <= gid < _MAX_OCTAL_7
    ):
        buf = bytearray(
            _HEADER.pack(
                raw,
                b"%07o\0" % (mode & 0o7777),
                b"%07o\0" % uid,
                b"%07o\0" % gid,
                b"%011o\0" % size,
                b"%011o\0" % mtime,
                b"        ",
                b"0",
                b"",
                b"ustar\0",
                b"00",
                b"",
                b"",
                b"0000000\0",
                b"0000000\0",
                b"",
            )
        )
        buf[148:155] = b"%06o\0" % sum(buf)
        return bytes(buf)
    info = tarfile.TarInfo(name)
    info.size, info.mode, info.mtime = size, mode & 0o7777, mtime
    info.uid, info.gid = max(uid, 0), max(gid, 0)
    info.uname = info.gname = ""
    return info.tobuf(tarfile.PAX_FORMAT, "utf-8", "surrogateescape")


def padding(size: int) -> bytes:
    """The zero bytes that complete a member's data to a 512-byte block."""
    rest = size % BLOCKSIZE
    return b"\0" * (BLOCKSIZE - rest) if rest else b""


def end_of_archive(written: int) -> bytes:
    """Two zero blocks, then zeros up to a whole 10 KiB record (what GNU tar expects)."""
    total = written + 2 * BLOCKSIZE
    rest = total % RECORDSIZE
    return b"\0" * (2 * BLOCKSIZE + (RECORDSIZE - rest if rest else 0))


def _number(field: bytes) -> int:
    if field and field[0] & 0x80:  # GNU base-256
        value = int.from_bytes(bytes([field[0] & 0x7F]) + field[1:], "big")
        return value - (1 << (8 * len(field) - 1)) if field[0] == 0xFF else value
    text = field.split(b"\0", 1)[0].strip()
    try:
        return int(text, 8) if text else 0
    except ValueError:
        raise BackupError(f"damaged tar header: bad number {field!r}") from None


def _text(field: bytes) -> str:
    return field.split(b"\0", 1)[0].decode("utf-8", "surrogateescape")


def _pax(data: bytes) -> dict[str, str]:
    records: dict[str, str] = {}
    pos = 0
    while pos < len(data) and data[pos] != 0:
        space = data.find(b" ", pos)
        if space < 0:
            raise BackupError("damaged PAX header")
        length = int(data[pos:space])
        key, _, value = data[space + 1 : pos + length - 1].partition(b"=")
        records[key.decode("utf-8", "surrogateescape")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def _read_exact(stream: Readable, size: int) -> bytes:
    data = stream.read(size)
    if len(data) != size:
        raise BackupError("damaged tar stream: it ends inside a member")
    return data


def read_members(stream: Readable) -> Iterator[Member]:
    """The members of the tar in ``stream``, in order; after each one its data is next."""
    global_pax: dict[str, str] = {}
    pax: dict[str, str] = {}
    long_name = long_link = None
    next_header = stream.tell()
    while True:
        if stream.tell() < next_header:
            stream.seek(next_header)
        block = stream.read(BLOCKSIZE)
        if len(block) < BLOCKSIZE or block == _ZERO:
            if block and block != _ZERO:
                raise BackupError("damaged tar stream: truncated header")
            return
        fields = _HEADER.unpack(block)
        stored = _number(fields[6])
        actual = sum(block[:148]) + 256 + sum(block[156:])
        if stored != actual:
            raise BackupError("damaged tar stream: header checksum mismatch")
        kind = fields[7]
        size = _number(fields[4])
        data_start = stream.tell()
        next_header = data_start + size + (-size % BLOCKSIZE)
        if kind in (b"x", b"g", b"L", b"K"):
            data = _read_exact(stream, size)
            if kind == b"x":
                pax.update(_pax(data))
            elif kind == b"g":
                global_pax.update(_pax(data))
            elif kind == b"L":
                long_name = _text(data)
            else:
                long_link = _text(data)
            continue
        name = _text(fields[0])
        if fields[9].startswith(b"ustar") and fields[15].strip(b"\0"):
            name = _text(fields[15]) + "/" + name
        values = {**global_pax, **pax}
        member = Member(
            name=values.get("path", long_name or name),
            type=kind,
            size=int(values.get("size", size)),
            mode=_number(fields[1]),
            mtime=float(values.get("mtime", _number(fields[5]))),
            uid=int(values.get("uid", _number(fields[2]))),
            gid=int(values.get("gid", _number(fields[3]))),
            linkname=values.get("linkpath", long_link or _text(fields[8])),
        )
        if member.size != size:
            next_header = data_start + member.size + (-member.size % BLOCKSIZE)
        pax, long_name, long_link = {}, None, None
        yield member
