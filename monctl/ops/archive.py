"""Streaming compression, hashing and safe-tar checks for backup archives.

Everything here streams in bounded memory: data flows through as chunks (or
a file object read in pieces), is never held whole. The sha256 and sizes of a
backup archive are always those of the *compressed* bytes as stored, so
``verify`` re-hashes exactly what is in the destination.

zstd frames are written with a content checksum, so a flipped byte inside a
frame is caught by the decompressor even before the sha256 is compared; a
truncated stream (a frame or gzip member that never ends) raises
IntegrityError. Compression and decompression errors of the codecs are all
translated to IntegrityError here.
"""

from __future__ import annotations

import hashlib
import io
import posixpath
import tarfile
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from monctl.errors import IntegrityError

COMPRESSIONS: tuple[str, ...] = ("zstd", "gzip", "none")
EXTENSIONS: dict[str, str] = {"zstd": ".tar.zst", "gzip": ".tar.gz", "none": ".tar"}

ZSTD_LEVEL = 3
# zlib's level 1: several times faster than gzip's default -6 for a few percent in size.
GZIP_LEVEL = 1
READ_SIZE = 1024 * 1024
# Compressed input is fed to the decompressor in small slices: one slice of
# all-zero data (a sparse or preallocated file) can expand ~30,000-fold, and
# the output of one call is held in memory. 4 KiB bounds that to ~128 MiB in the
# pathological case and costs little per GiB.
_DECOMPRESS_SLICE = 4096
_GZIP_MAX_OUT = 1024 * 1024


@dataclass
class Digest:
    """Filled in by ``compress_stream`` once its iterator is exhausted."""

    sha256: str = ""
    size: int = 0  # compressed bytes, as stored
    raw_size: int = 0  # uncompressed bytes (the tar stream)
    complete: bool = False  # True once the whole stream went through


@dataclass(frozen=True)
class TarCheck:
    """What ``check_tar`` saw in an archive."""

    members: int
    files: int
    dirs: int
    links: int
    bytes: int  # sum of regular file sizes

    def to_json(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "files": self.files,
            "dirs": self.dirs,
            "links": self.links,
            "bytes": self.bytes,
        }


def check_compression(compression: str) -> str:
    if compression not in COMPRESSIONS:
        raise IntegrityError(
            f"unknown compression {compression!r}", hint=f"use one of {', '.join(COMPRESSIONS)}"
        )
    return compression


def _compressor(compression: str, level: int | None, threads: int) -> Callable[[bytes], bytes]:
    """A (compress, flush) pair folded into one callable: b"" means flush."""
    if compression == "zstd":
        import zstandard

        # threads: zstd's worker threads run beside Python, so compression
        # overlaps reading from Docker and writing to the destination.
        cobj = zstandard.ZstdCompressor(
            level=ZSTD_LEVEL if level is None else level, threads=threads, write_checksum=True
        ).compressobj()
        return lambda data: cobj.compress(data) if data else cobj.flush()
    if compression == "gzip":
        zobj = zlib.compressobj(GZIP_LEVEL if level is None else level, zlib.DEFLATED, 31)
        return lambda data: zobj.compress(data) if data else zobj.flush()
    check_compression(compression)
    return lambda data: data


def compress_stream(
    chunks: Iterable[bytes],
    compression: str,
    digest: Digest,
    *,
    level: int | None = None,
    threads: int = -1,
) -> Iterator[bytes]:
    """Compress ``chunks`` (a tar stream) and yield the compressed bytes.

    Hash and count the compressed bytes as they pass, and the raw bytes too;
    ``digest`` is filled in when the iterator is exhausted (``digest.complete``
    tells whether it was). Empty chunks are never yielded. Memory: one input
    chunk plus the codec's window. ``threads=-1``: one zstd worker per CPU.
    """
    compress = _compressor(compression, level, threads)
    sha = hashlib.sha256()
    size = raw = 0
    for chunk in chunks:
        if not chunk:
            continue
        raw += len(chunk)
        out = compress(chunk)
        if out:
            sha.update(out)
            size += len(out)
            yield out
    out = compress(b"") if compression != "none" else b""
    if out:
        sha.update(out)
        size += len(out)
        yield out
    digest.sha256, digest.size, digest.raw_size, digest.complete = sha.hexdigest(), size, raw, True


class _ChunkReader(io.RawIOBase):
    """A read-only file object over an iterable of byte chunks."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._it = iter(chunks)
        self._buf = b""

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            nxt = next(self._it, None)
            if nxt is None:
                return 0
            self._buf = bytes(nxt)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def as_reader(source: Iterable[bytes] | BinaryIO) -> BinaryIO:
    """``source`` as a readable binary file object (file objects pass through)."""
    if hasattr(source, "read"):
        return source  # type: ignore[return-value]
    return io.BufferedReader(_ChunkReader(source), READ_SIZE)


class _DecompressingReader(io.RawIOBase):
    """Decompress a zstd or gzip stream on read, in bounded memory, and insist
    that the last frame/member ends: a stream cut short raises IntegrityError."""

    def __init__(self, src: BinaryIO, compression: str) -> None:
        self._src = src
        self._compression = compression
        self._dec: Any = self._new()
        self._pending = b""  # compressed bytes not yet fed
        self._out = b""
        self._started = False  # saw at least one byte of input

    def _new(self) -> Any:
        if self._compression == "zstd":
            import zstandard

            return zstandard.ZstdDecompressor().decompressobj()
        return zlib.decompressobj(31)

    def readable(self) -> bool:
        return True

    def _feed(self) -> bool:
        """Produce some output into self._out; False at a clean end of stream."""
        if not self._pending:
            data = self._src.read(READ_SIZE)
            if not data:
                if not self._started or not self._dec.eof:
                    raise IntegrityError(
                        f"the {self._compression} stream is truncated (it ends mid-frame)"
                    )
                return False
            self._started = True
            self._pending = data
        if self._dec.eof:
            # A further frame (zstd) or member (gzip) follows the previous one.
            self._dec = self._new()
        try:
            if self._compression == "gzip":
                # max_length bounds the output; input it did not reach stays pending.
                self._out = self._dec.decompress(self._pending, _GZIP_MAX_OUT)
                self._pending = self._dec.unconsumed_tail
            else:
                piece = self._pending[:_DECOMPRESS_SLICE]
                self._pending = self._pending[_DECOMPRESS_SLICE:]
                self._out = self._dec.decompress(piece)
        except Exception as e:  # zstandard.ZstdError, zlib.error
            raise IntegrityError(f"the {self._compression} stream is corrupt: {e}") from None
        if self._dec.eof and self._dec.unused_data:
            self._pending = self._dec.unused_data + self._pending
        return True

    def readinto(self, b: Any) -> int:
        while not self._out:
            if not self._feed():
                return 0
        n = min(len(b), len(self._out))
        b[:n] = self._out[:n]
        self._out = self._out[n:]
        return n


def decompress_stream(source: Iterable[bytes] | BinaryIO, compression: str) -> BinaryIO:
    """A readable binary file object yielding the decompressed bytes of ``source``.

    ``source`` is the stored archive as chunks or a file object. Reads raise
    IntegrityError when the data is corrupt or ends before its last frame does.
    With "none" the source is returned as a reader unchanged.
    """
    check_compression(compression)
    reader = as_reader(source)
    if compression == "none":
        return reader
    raw = _DecompressingReader(reader, compression)
    return io.BufferedReader(raw, READ_SIZE)


class HashingReader(io.RawIOBase):
    """Pass reads through to ``src`` while hashing and counting the bytes read.

    ``drain()`` reads what is left (so the hash covers the whole object even
    when the consumer stopped at the tar end-of-archive marker).
    """

    def __init__(self, src: BinaryIO, on_bytes: Callable[[int], None] | None = None) -> None:
        self._src = src
        self._sha = hashlib.sha256()
        self._on_bytes = on_bytes
        self.size = 0

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._src.read(len(b))
        n = len(data)
        b[:n] = data
        self._sha.update(data)
        self.size += n
        if self._on_bytes is not None and n:
            self._on_bytes(n)
        return n

    def drain(self) -> None:
        buf = bytearray(READ_SIZE)
        while self.readinto(buf):
            pass

    @property
    def sha256(self) -> str:
        return self._sha.hexdigest()


def hash_stream(source: Iterable[bytes] | BinaryIO) -> tuple[str, int]:
    """(sha256 hex, size in bytes) of everything in ``source``."""
    sha = hashlib.sha256()
    size = 0
    reader = as_reader(source)
    while True:
        data = reader.read(READ_SIZE)
        if not data:
            return sha.hexdigest(), size
        sha.update(data)
        size += len(data)


def _inside(root: str, path: str) -> bool:
    """True when the normalized relative ``path`` is ``root`` or below it."""
    if path.startswith("/") or path == ".." or path.startswith("../"):
        return False
    return not root or path == root or path.startswith(root + "/")


def check_member(member: tarfile.TarInfo, data_root: str = "") -> None:
    """Raise IntegrityError unless ``member`` is safe to extract under ``data_root``.

    Safe: a regular file, directory, symlink or hard link; a relative name with
    no ".." component, at or below ``data_root`` (a relative directory name such
    as "prometheus"; "" allows any relative name); a link whose target resolves
    to a path at or below ``data_root`` (absolute link targets are refused: they
    would point wherever the restore runs, not into the data).
    """
    root = posixpath.normpath(data_root.strip("/")) if data_root.strip("/") else ""
    name = member.name
    what = f"archive member {name!r}"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise IntegrityError(f"{what} has an absolute path")
    if ".." in name.split("/"):
        raise IntegrityError(f"{what} contains '..'")
    norm = posixpath.normpath(name)
    if norm != "." and not _inside(root, norm):
        raise IntegrityError(f"{what} lies outside the data directory {data_root!r}")
    if member.isdev() or not (
        member.isfile() or member.isdir() or member.issym() or member.islnk()
    ):
        raise IntegrityError(f"{what} is a device file or special file")
    if member.issym() or member.islnk():
        target = member.linkname
        if target.startswith("/"):
            raise IntegrityError(f"{what} links to the absolute path {target!r}")
        # Symlink targets are relative to the link's directory; hard link
        # targets are member names, relative to the archive root.
        base = posixpath.dirname(norm) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if not _inside(root, resolved):
            raise IntegrityError(f"{what} links outside the data directory ({target!r})")


def check_tar(fileobj: BinaryIO, data_root: str = "") -> TarCheck:
    """Read the whole uncompressed tar stream ``fileobj`` and check every member.

    Raise IntegrityError naming the first unsafe member (see ``check_member``)
    or when the tar is malformed or truncated mid-member. Return the counts.
    A plain tar cut exactly between two members cannot be told from a short
    one here: the size and sha256 in the manifest catch that.
    """
    members = files = dirs = links = total = 0
    try:
        with tarfile.open(fileobj=fileobj, mode="r|") as tar:
            for member in tar:
                check_member(member, data_root)
                members += 1
                if member.isfile():
                    files += 1
                    total += member.size
                elif member.isdir():
                    dirs += 1
                else:
                    links += 1
    except tarfile.TarError as e:
        raise IntegrityError(f"the tar stream is malformed or truncated: {e}") from None
    except EOFError as e:
        raise IntegrityError(f"the tar stream is truncated: {e}") from None
    return TarCheck(members=members, files=files, dirs=dirs, links=links, bytes=total)
