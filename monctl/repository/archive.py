"""Streaming compression and hashing for backup archives.

Everything here streams in bounded memory: data flows through as chunks (or
a file object read in pieces), is never held whole. The sha256 and sizes of a
backup archive are always those of the *compressed* bytes as stored, so
``verify`` re-hashes exactly what is in the destination.

zstd frames are written with a content checksum, so a flipped byte inside a
frame is caught by the decompressor even before the sha256 is compared; a
truncated stream (a frame or gzip member that never ends) raises
IntegrityError. Compression and decompression errors of the codecs are all
translated to IntegrityError here. What the tar inside may contain is checked
by ``tar_safety.check_tar``.
"""

from __future__ import annotations

import hashlib
import io
import zlib
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import Any, BinaryIO

from monctl.errors import IntegrityError

COMPRESSIONS: tuple[str, ...] = ("zstd", "gzip", "none")
EXTENSIONS: dict[str, str] = {"zstd": ".tar.zst", "gzip": ".tar.gz", "none": ".tar"}

# Level 1, not zstd's default 3: monitoring data (TSDB chunks, Loki chunks) is already
# compressed, so level 3 shrinks it no further (both 0.978 on the bench's TSDB blocks)
# while costing ~1.5x the CPU; on 2 cores the backup is CPU-bound (bench/README.md).
ZSTD_LEVEL = 1
# zlib's level 1: several times faster than gzip's default -6 for a few percent in size.
GZIP_LEVEL = 1
READ_SIZE = 1024 * 1024
# Decompressed output is produced at most this much at a time, however
# compressible the data (64 MiB of zeros fit in a few KiB of zstd).
_MAX_OUT = 1024 * 1024


@dataclass
class Digest:
    """Filled in by ``compress_stream`` once its iterator is exhausted."""

    sha256: str = ""
    size: int = 0  # compressed bytes, as stored
    raw_size: int = 0  # uncompressed bytes (the tar stream)
    complete: bool = False  # True once the whole stream went through


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
        self._buf = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        while not self._buf:
            nxt = next(self._it, None)
            if nxt is None:
                return 0
            self._buf = memoryview(nxt)
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n


def as_reader(source: Iterable[bytes] | BinaryIO) -> BinaryIO:
    """``source`` as a readable binary file object (file objects pass through)."""
    if hasattr(source, "read"):
        return source  # type: ignore[return-value]
    return io.BufferedReader(_ChunkReader(source), READ_SIZE)


class _GzipReader(io.RawIOBase):
    """Decompress gzip on read; a stream that ends inside a member raises IntegrityError."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self._dec = zlib.decompressobj(31)
        self._pending = b""  # compressed bytes the decompressor has not taken yet
        self._out = memoryview(b"")  # decompressed bytes not yet read
        self._started = False

    def readable(self) -> bool:
        return True

    def _feed(self) -> bool:
        """Produce some output into self._out; False at a clean end of stream."""
        if not self._pending:
            data = self._src.read(READ_SIZE)
            if not data:
                if not self._started or not self._dec.eof:
                    raise IntegrityError("the gzip stream is truncated (it ends mid-member)")
                return False
            self._started = True
            self._pending = data
        if self._dec.eof:  # another member follows (as `cat a.gz b.gz` makes)
            self._dec = zlib.decompressobj(31)
        try:
            # max_length bounds the output; input it did not reach stays pending.
            self._out = memoryview(self._dec.decompress(self._pending, _MAX_OUT))
        except zlib.error as e:
            raise IntegrityError(f"the gzip stream is corrupt: {e}") from None
        self._pending = self._dec.unconsumed_tail
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


_ZSTD_MAGIC = b"\x28\xb5\x2f\xfd"


class _ZstdFrames:
    """Follows the frame and block headers of a zstd stream (RFC 8878) as it passes,
    to tell a complete stream from a truncated one: zstandard's streaming reader
    (which bounds memory) ends quietly when its input ends mid-frame."""

    def __init__(self) -> None:
        self._head = bytearray()  # the header being collected
        self._need = 4  # bytes of it still to come
        self._state = "magic"
        self._skip = 0  # payload bytes to pass over
        self._checksum = False
        self.frames = 0

    @property
    def complete(self) -> bool:
        return self.frames > 0 and self._state == "magic" and not self._head and not self._skip

    def feed(self, data: bytes) -> None:
        view, pos = memoryview(data), 0
        while pos < len(view):
            if self._skip:
                step = min(self._skip, len(view) - pos)
                self._skip -= step
                pos += step
                continue
            take = min(self._need - len(self._head), len(view) - pos)
            self._head += view[pos : pos + take]
            pos += take
            if len(self._head) == self._need:
                head = bytes(self._head)
                self._head.clear()
                self._header(head)

    def _header(self, head: bytes) -> None:
        if self._state == "magic":
            if head == _ZSTD_MAGIC:
                self._state, self._need = "descriptor", 1
            elif head[1:] == b"\x2a\x4d\x18" and head[0] & 0xF0 == 0x50:
                self._state, self._need = "skippable", 4  # a skippable frame
            else:
                raise IntegrityError("the zstd stream is corrupt: not a zstd frame")
        elif self._state == "skippable":
            self._skip = int.from_bytes(head, "little")
            self._state, self._need = "magic", 4
        elif self._state == "descriptor":
            d = head[0]
            single = bool(d & 0x20)
            fcs = (1 if single else 0, 2, 4, 8)[d >> 6]
            self._skip = (0 if single else 1) + (0, 1, 2, 4)[d & 3] + fcs
            self._checksum = bool(d & 0x04)
            self._state, self._need = "block", 3
        else:  # block header: last-block bit, type, size
            h = int.from_bytes(head, "little")
            kind, size = (h >> 1) & 3, h >> 3
            if kind == 3:
                raise IntegrityError("the zstd stream is corrupt: reserved block type")
            self._skip = 1 if kind == 1 else size  # an RLE block stores one byte
            if h & 1:
                self._skip += 4 if self._checksum else 0
                self.frames += 1
                self._state, self._need = "magic", 4


class _Tee(io.RawIOBase):
    """Reads from ``src`` and shows every byte to ``observe``."""

    def __init__(self, src: BinaryIO, observe: Callable[[bytes], None]) -> None:
        self._src, self._observe = src, observe

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._src.read(len(b))
        self._observe(data)
        b[: len(data)] = data
        return len(data)


class _ZstdReader(io.RawIOBase):
    """Decompress zstd on read in bounded memory; truncation raises IntegrityError."""

    def __init__(self, src: BinaryIO) -> None:
        import zstandard

        self._frames = _ZstdFrames()
        tee = io.BufferedReader(_Tee(src, self._frames.feed), READ_SIZE)
        self._reader = zstandard.ZstdDecompressor().stream_reader(
            tee, read_size=READ_SIZE, read_across_frames=True
        )
        self._error = zstandard.ZstdError

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            n = int(self._reader.readinto(b))
        except self._error as e:
            raise IntegrityError(f"the zstd stream is corrupt: {e}") from None
        if n == 0 and not self._frames.complete:
            raise IntegrityError("the zstd stream is truncated (it ends mid-frame)")
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
    raw = _ZstdReader(reader) if compression == "zstd" else _GzipReader(reader)
    return io.BufferedReader(raw, READ_SIZE)


class HashingReader(io.RawIOBase):
    """Pass reads through to ``src`` while hashing and counting the bytes read.

    ``drain()`` reads what is left (so the hash covers the whole object even
    when the consumer stopped at the tar end-of-archive marker).
    """

    def __init__(
        self,
        src: BinaryIO,
        on_bytes: Callable[[int], None] | None = None,
        hasher: Any = None,  # sha256 unless given (objects.id_hasher)
    ) -> None:
        self._src = src
        self._sha = hashlib.sha256() if hasher is None else hasher
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
        buf = bytearray(64 * 1024)  # usually nothing is left: no big buffer for nothing
        while self.readinto(buf):
            pass

    @property
    def hexdigest(self) -> str:
        return str(self._sha.hexdigest())

    @property
    def sha256(self) -> str:  # format 1: always sha256
        return self.hexdigest


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
