"""Reading a tar stream member by member, in bounded memory, from an untrusted source.

The standard library's ``tarfile`` keeps every member it has read (memory grows
with the member count) and reads a GNU long name or a PAX header whole,
whatever size the header claims (a small archive can claim hundreds of MB).
A backup archive comes from outside, so this reader parses the headers itself:
each 512-byte header through ``tarfile.TarInfo.frombuf`` (checksum, numbers),
the extended headers (GNU ``L``/``K``, PAX ``x``/``g``) with hard bounds, and
nothing is kept once a member has been passed on. ``members`` yields each
member with a reader for its data; whatever the consumer does not read is
skipped. The stream must end with the end-of-archive marker (two zero blocks,
then nothing but zeros): a stream cut between members is truncated, not ended.

``header`` writes a member's header back out (GNU format, or POSIX pax), so a
restore can re-emit the very members it checked with new owners.
"""

from __future__ import annotations

import tarfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from typing import BinaryIO

from monctl.errors import IntegrityError

BLOCK = tarfile.BLOCKSIZE
# Linux's PATH_MAX; no data directory of the stack comes near it.
MAX_NAME = 4096
# A PAX header holds a few records (path, times, owner names): 64 KiB is plenty.
MAX_PAX = 64 * 1024
READ_SIZE = 1024 * 1024

# Types a data directory may hold. Devices, FIFOs, sparse and multi-volume
# members are refused: nothing of the stack's data is one.
FILE_TYPES = (tarfile.REGTYPE, tarfile.AREGTYPE, tarfile.CONTTYPE)
KNOWN = (*FILE_TYPES, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE)
SPECIAL = (tarfile.CHRTYPE, tarfile.BLKTYPE, tarfile.FIFOTYPE)


@dataclass(frozen=True)
class Member:
    name: str
    type: bytes
    size: int  # bytes of data that follow (files only; 0 for the others)
    mode: int
    uid: int
    gid: int
    mtime: float
    linkname: str = ""

    def isfile(self) -> bool:
        return self.type in FILE_TYPES

    def isdir(self) -> bool:
        return self.type == tarfile.DIRTYPE

    def issym(self) -> bool:
        return self.type == tarfile.SYMTYPE

    def islnk(self) -> bool:
        return self.type == tarfile.LNKTYPE

    def isdev(self) -> bool:
        return self.type in SPECIAL


def show(name: str, limit: int = 120) -> str:
    """A member name for a message: escaped (no control bytes), bounded."""
    text = name.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
    text = repr(text[:limit])
    return text + ("…" if len(name) > limit else "")


class _Blocks:
    """Exact reads of a stream; a short read is a truncated archive."""

    def __init__(self, src: BinaryIO) -> None:
        self.src = src
        self.offset = 0

    def read(self, n: int) -> bytes:
        parts = []
        want = n
        while want:
            data = self.src.read(min(want, READ_SIZE))
            if not data:
                raise IntegrityError(
                    f"the tar stream is truncated (it ends at byte {self.offset + n - want})"
                )
            parts.append(data)
            want -= len(data)
        self.offset += n
        return b"".join(parts)

    def some(self, n: int) -> bytes | memoryview:
        """Up to ``n`` (> 0) bytes, at least one; a short stream is truncated."""
        return self.read(min(n, READ_SIZE))

    def skip(self, n: int) -> None:
        while n:
            n -= len(self.some(n))

    def rest_is_zero(self) -> bool:
        while True:
            data = self.src.read(READ_SIZE)
            if not data:
                return True
            self.offset += len(data)
            if data.strip(b"\0"):
                return False


class _ChunkBlocks(_Blocks):
    """``_Blocks`` over an iterable of chunks (the engine's archive stream): file
    data is handed out as views of the chunks as they came, never copied."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = memoryview(b"")
        self.offset = 0

    def _fill(self) -> bool:
        while not self._buf:
            nxt = next(self._it, None)
            if nxt is None:
                return False
            self._buf = memoryview(nxt)
        return True

    def some(self, n: int) -> memoryview:
        if not self._fill():
            raise IntegrityError(f"the tar stream is truncated (it ends at byte {self.offset})")
        piece = self._buf[:n]
        self._buf = self._buf[len(piece) :]
        self.offset += len(piece)
        return piece

    def read(self, n: int) -> bytes:
        if len(self._buf) >= n:  # the usual case for a header: no join
            return bytes(self.some(n))
        parts = []
        while n:
            piece = self.some(n)
            parts.append(piece)
            n -= len(piece)
        return b"".join(parts)

    def rest_is_zero(self) -> bool:
        while self._fill():
            piece, self._buf = self._buf, memoryview(b"")
            self.offset += len(piece)
            if bytes(piece).strip(b"\0"):
                return False
        return True


def padding(size: int) -> int:
    """The zero bytes that follow a member's ``size`` bytes to the next 512-byte block."""
    return -size % BLOCK


class Data:
    """The data of the current member; reading past it is impossible."""

    def __init__(self, blocks: _Blocks, size: int) -> None:
        self._blocks = blocks
        self.left = size

    def read(self, n: int = READ_SIZE) -> bytes:
        """Exactly ``min(n, what is left)`` bytes."""
        n = min(n, self.left)
        if n <= 0:
            return b""
        data = self._blocks.read(n)
        self.left -= n
        return data

    def pieces(self) -> Iterator[bytes | memoryview]:
        """The rest of the data in pieces as they arrive (views: use each before the next)."""
        while self.left > 0:
            piece = self._blocks.some(min(self.left, READ_SIZE))
            self.left -= len(piece)
            yield piece


def _text(raw: bytes) -> str:
    return raw.rstrip(b"\0").decode("utf-8", "surrogateescape")


def _pax(raw: bytes) -> dict[str, str]:
    """Records "LEN key=value\\n" of a PAX header; IntegrityError when malformed."""
    records: dict[str, str] = {}
    pos = 0
    while pos < len(raw) and raw[pos : pos + 1] != b"\0":
        space = raw.find(b" ", pos, pos + 20)
        try:
            length = int(raw[pos:space])
        except ValueError:
            raise IntegrityError("the tar stream has a malformed PAX header") from None
        record = raw[pos : pos + length]
        if space < 0 or length < 5 or len(record) != length or not record.endswith(b"\n"):
            raise IntegrityError("the tar stream has a malformed PAX header")
        key, eq, value = record[space - pos + 1 : -1].partition(b"=")
        if not eq:
            raise IntegrityError("the tar stream has a malformed PAX header")
        records[key.decode("utf-8", "replace")] = value.decode("utf-8", "surrogateescape")
        pos += length
    return records


def _number(value: str, what: str) -> float:
    try:
        number = float(value)
    except ValueError:
        raise IntegrityError(f"the tar stream has a bad PAX {what}: {value[:40]!r}") from None
    if number < 0 or number != number or number > 2**63:
        raise IntegrityError(f"the tar stream has a bad PAX {what}: {value[:40]!r}")
    return number


def members(src: BinaryIO | Iterable[bytes]) -> Iterator[tuple[Member, Data]]:
    """Each member of the tar stream ``src`` (a file object, or chunks as the engine
    sends them) with a reader for its data, in order.

    Raise IntegrityError when the stream is malformed, truncated (also between
    members: the end-of-archive marker must be there, followed only by zeros),
    or holds an extended header beyond the bounds above or a member type that
    is not a file, directory, link or device. Memory: one member's headers.
    """
    blocks = _Blocks(src) if hasattr(src, "read") else _ChunkBlocks(src)  # type: ignore[arg-type]
    long_name: str | None = None
    long_link: str | None = None
    pax: dict[str, str] = {}
    while True:
        block = blocks.read(BLOCK)
        if not block.strip(b"\0"):
            if long_name is not None or long_link is not None or pax:
                raise IntegrityError("the tar stream ends after an extended header")
            try:
                second = blocks.read(BLOCK)
            except IntegrityError:
                raise IntegrityError(
                    "the tar stream is truncated inside its end-of-archive marker"
                ) from None
            if second.strip(b"\0") or not blocks.rest_is_zero():
                raise IntegrityError(
                    "the tar stream is truncated or damaged: no end-of-archive marker"
                )
            return
        try:
            info = tarfile.TarInfo.frombuf(block, "utf-8", "surrogateescape")
        except tarfile.HeaderError as exc:
            raise IntegrityError(f"the tar stream has a malformed header: {exc}") from None
        size = info.size
        if size < 0:
            raise IntegrityError("the tar stream has a member of negative size")
        if info.type in (tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK):
            if size > MAX_NAME + 1:
                raise IntegrityError(
                    f"the tar stream claims a {size}-byte name (more than {MAX_NAME}): refused"
                )
            text = _text(blocks.read(size + padding(size))[:size])
            if info.type == tarfile.GNUTYPE_LONGNAME:
                long_name = text
            else:
                long_link = text
            continue
        if info.type in (tarfile.XHDTYPE, tarfile.XGLTYPE, tarfile.SOLARIS_XHDTYPE):
            if size > MAX_PAX:
                raise IntegrityError(
                    f"the tar stream claims a {size}-byte PAX header (more than {MAX_PAX}): refused"
                )
            records = _pax(blocks.read(size + padding(size))[:size])
            if info.type != tarfile.XGLTYPE:  # global headers: nothing the stack's tars use
                pax.update(records)
            continue
        if info.type not in KNOWN and info.type not in SPECIAL:
            raise IntegrityError(
                f"archive member {show(info.name)} has an unsupported type {info.type!r}"
            )
        name = pax.get("path", long_name if long_name is not None else info.name)
        link = pax.get("linkpath", long_link if long_link is not None else info.linkname)
        if "size" in pax:
            size = int(_number(pax["size"], "size"))
        if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME or len(link) > MAX_NAME:
            raise IntegrityError(f"archive member {show(name)} has a name longer than {MAX_NAME}")
        member = Member(
            name=name,
            type=info.type,
            size=size if info.type in FILE_TYPES else 0,
            mode=info.mode & 0o7777,
            uid=int(_number(pax["uid"], "uid")) if "uid" in pax else info.uid,
            gid=int(_number(pax["gid"], "gid")) if "gid" in pax else info.gid,
            mtime=_number(pax["mtime"], "mtime") if "mtime" in pax else float(info.mtime),
            linkname=link,
        )
        long_name = long_link = None
        pax = {}
        data = Data(blocks, member.size)
        yield member, data
        # Links and directories carry no data, whatever their header's size says
        # (as tarfile and Go's archive/tar, which Docker extracts with, read them).
        blocks.skip(data.left + padding(member.size))


def header(member: Member, *, pax: bool = False) -> bytes:
    """``member``'s header (with GNU long-name headers when needed), ready to write;
    ``pax``: POSIX pax instead (ustar, with a pax extended header when a name, link or
    number does not fit: what ``backup export`` writes for any tar to read)."""
    info = tarfile.TarInfo(member.name)
    info.type = member.type
    info.size = member.size
    info.mode = member.mode
    info.uid, info.gid = member.uid, member.gid
    info.uname = info.gname = ""
    info.mtime = int(member.mtime)
    info.linkname = member.linkname
    return info.tobuf(tarfile.PAX_FORMAT if pax else tarfile.GNU_FORMAT, "utf-8", "surrogateescape")


def end_marker() -> bytes:
    return b"\0" * (2 * BLOCK)


def renamed(member: Member, name: str, linkname: str | None = None) -> Member:
    return replace(member, name=name, linkname=member.linkname if linkname is None else linkname)
