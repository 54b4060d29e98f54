"""Streaming compression and hashing: round trips, digests, and damaged streams."""

from __future__ import annotations

import gzip
import hashlib
import io
import shutil
import subprocess
import tracemalloc

import pytest
from support.backup_factory import pieces, tar_bytes

from monctl.errors import IntegrityError
from monctl.repository.archive import (
    COMPRESSIONS,
    EXTENSIONS,
    Digest,
    HashingReader,
    compress_stream,
    decompress_stream,
    hash_stream,
)
from monctl.repository.tar_safety import check_tar

RAW = tar_bytes("prometheus")


def compressed(compression: str, raw: bytes = RAW) -> tuple[bytes, Digest]:
    digest = Digest()
    data = b"".join(compress_stream(pieces(raw, 10_000), compression, digest))
    return data, digest


@pytest.mark.parametrize("compression", COMPRESSIONS)
def test_round_trip_and_digest(compression: str) -> None:
    data, digest = compressed(compression)
    assert digest.complete
    assert digest.sha256 == hashlib.sha256(data).hexdigest()
    assert digest.size == len(data)
    assert digest.raw_size == len(RAW)
    assert hash_stream(io.BytesIO(data)) == (digest.sha256, digest.size)
    assert hash_stream(pieces(data, 777)) == (digest.sha256, digest.size)
    # From chunks and from a file object alike.
    assert decompress_stream(pieces(data, 4096), compression).read() == RAW
    assert decompress_stream(io.BytesIO(data), compression).read() == RAW
    if compression != "none":
        assert len(data) < len(RAW)


def test_digest_is_incomplete_until_the_stream_is_exhausted() -> None:
    digest = Digest()
    stream = compress_stream(pieces(RAW), "gzip", digest)
    next(stream)
    assert not digest.complete and digest.sha256 == ""


def test_extensions_cover_every_compression() -> None:
    assert set(EXTENSIONS) == set(COMPRESSIONS)


def test_unknown_compression_is_refused() -> None:
    with pytest.raises(IntegrityError):
        list(compress_stream([b"x"], "lz4", Digest()))
    with pytest.raises(IntegrityError):
        decompress_stream([b"x"], "bz2")


@pytest.mark.parametrize("tool", ["zstd", "gzip"])
def test_archives_are_standard_files(tool: str) -> None:
    """What monctl writes opens with the standard tools (an operator's last resort)."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    data, _ = compressed("zstd" if tool == "zstd" else "gzip")
    out = subprocess.run([path, "-dc"], input=data, capture_output=True, check=True).stdout
    assert out == RAW


def test_concatenated_gzip_members_are_read_whole() -> None:
    data = gzip.compress(RAW[:5000]) + gzip.compress(RAW[5000:])
    assert decompress_stream(io.BytesIO(data), "gzip").read() == RAW


def test_concatenated_zstd_frames_are_read_whole() -> None:
    a, _ = compressed("zstd", RAW[:5000])
    b, _ = compressed("zstd", RAW[5000:])
    assert decompress_stream(io.BytesIO(a + b), "zstd").read() == RAW


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
@pytest.mark.parametrize("cut", [0.5, 0.99, -1])
def test_truncated_stream_is_an_integrity_error(compression: str, cut: float) -> None:
    data, _ = compressed(compression)
    end = len(data) - 1 if cut == -1 else int(len(data) * cut)
    with pytest.raises(IntegrityError, match=r"truncated|corrupt"):
        check_tar(decompress_stream(io.BytesIO(data[:end]), compression), "prometheus")


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
@pytest.mark.parametrize("where", [0.3, 0.7])
def test_flipped_byte_is_an_integrity_error(compression: str, where: float) -> None:
    data, _ = compressed(compression)
    i = int(len(data) * where)
    damaged = data[:i] + bytes([data[i] ^ 0x20]) + data[i + 1 :]
    with pytest.raises(IntegrityError):
        check_tar(decompress_stream(io.BytesIO(damaged), compression), "prometheus")


@pytest.mark.parametrize("compression", ["zstd", "gzip"])
def test_empty_or_foreign_input_is_an_integrity_error(compression: str) -> None:
    for data in (b"", b"this is not compressed at all" * 10):
        with pytest.raises(IntegrityError):
            decompress_stream(io.BytesIO(data), compression).read()


def test_hashing_reader_counts_and_drains() -> None:
    data, digest = compressed("zstd")
    seen: list[int] = []
    reader = HashingReader(io.BytesIO(data), seen.append)
    check_tar(decompress_stream(io.BufferedReader(reader), "zstd"), "prometheus")
    reader.drain()
    assert (reader.sha256, reader.size) == (digest.sha256, digest.size)
    assert sum(seen) == len(data)


def test_highly_compressible_data_streams_in_bounded_pieces() -> None:
    # 64 MiB of zeros compress to a few KiB; reading it back must not produce
    # one 64 MiB buffer (the decompressor is fed in small slices).
    zeros = bytes(1024 * 1024)
    digest = Digest()
    data = b"".join(compress_stream((zeros for _ in range(64)), "zstd", digest))
    assert len(data) < 100_000
    tracemalloc.start()
    try:
        reader = decompress_stream(io.BytesIO(data), "zstd")
        total = 0
        while block := reader.read(1024 * 1024):
            total += len(block)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert total == 64 * 1024 * 1024
    assert peak < 16 * 1024 * 1024, f"peak {peak / 2**20:.1f} MiB"


@pytest.mark.parametrize(("tool", "compression"), [("zstd", "zstd"), ("gzip", "gzip")])
def test_reads_what_the_standard_tools_write(tool: str, compression: str) -> None:
    """Frames with a content size and checksum (zstd CLI), a gzip header with a name."""
    path = shutil.which(tool)
    if path is None:
        pytest.skip(f"{tool} is not installed")
    data = subprocess.run([path, "-c"], input=RAW, capture_output=True, check=True).stdout
    assert decompress_stream(io.BytesIO(data), compression).read() == RAW
    with pytest.raises(IntegrityError, match="truncated"):
        decompress_stream(io.BytesIO(data[:-3]), compression).read()
