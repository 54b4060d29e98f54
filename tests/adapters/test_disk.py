"""``disk.DirectWriter``: a file's bytes written past the page cache, exactly.

On a real file system (pytest's temporary directory). The kernel's refusal of
O_DIRECT is faked where the tests need one on a file system that accepts it:
``os.write`` raising EINVAL, as Linux does for a direct write it will not take.
"""

from __future__ import annotations

import errno
import fcntl
import os
from pathlib import Path

import pytest
from support.direct_io import accepts_direct

from monctl.adapters import disk
from monctl.adapters.disk import ALIGN, DIRECT_BLOCK, DIRECT_MIN, DirectWriter

SIZES = [0, 1, 4095, 4096, DIRECT_MIN - 1, DIRECT_MIN + 4097, DIRECT_BLOCK - 1, DIRECT_BLOCK,
         DIRECT_BLOCK + 1, 3 * DIRECT_BLOCK + 777]  # fmt: skip


def written(path: Path, data: bytes, piece: int) -> DirectWriter:
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        writer = DirectWriter(fd)
        for i in range(0, len(data), piece):
            writer.write(memoryview(data)[i : i + piece])
        writer.finish()
        assert writer.buffer is None  # given back
        assert not fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT  # off again for the tail
    finally:
        os.close(fd)
    return writer


@pytest.mark.parametrize("size", SIZES)
def test_every_byte_lands_in_order_whatever_the_pieces(tmp_path: Path, size: int) -> None:
    data = os.urandom(size)
    aligned = size - size % ALIGN
    for piece in (1000, 65536, 3 * DIRECT_BLOCK):  # smaller than, and larger than, a block
        path = tmp_path / f"f{piece}"
        writer = written(path, data, piece)
        assert path.read_bytes() == data
        if aligned < DIRECT_MIN:
            assert writer.written_direct == 0 and writer.direct is None  # one ordinary write
        elif accepts_direct(tmp_path):
            # Every whole block past the cache but the first; the last partial one through it.
            assert writer.written_direct == aligned - ALIGN


def test_a_refused_direct_write_goes_through_the_cache(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real_write = os.write
    refused: list[int] = []

    def write(fd: int, data: memoryview) -> int:
        if fcntl.fcntl(fd, fcntl.F_GETFL) & os.O_DIRECT:
            refused.append(len(data))
            raise OSError(errno.EINVAL, os.strerror(errno.EINVAL))
        return real_write(fd, data)

    monkeypatch.setattr(disk.os, "write", write)
    data = os.urandom(2 * DIRECT_BLOCK + 10)
    writer = written(tmp_path / "f", data, 100_000)
    assert (tmp_path / "f").read_bytes() == data
    if accepts_direct(tmp_path):
        assert refused == [
            DIRECT_BLOCK - ALIGN
        ]  # refused once (after the first page), then never asked again
    assert writer.direct is False


def test_a_full_disk_is_raised_not_swallowed(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def write(fd: int, data: memoryview) -> int:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(disk.os, "write", write)
    fd = os.open(tmp_path / "f", os.O_WRONLY | os.O_CREAT, 0o600)
    writer = DirectWriter(fd)
    try:
        with pytest.raises(OSError) as raised:
            writer.write(os.urandom(DIRECT_BLOCK))
        assert raised.value.errno == errno.ENOSPC
        writer.release()
        assert writer.buffer is None
    finally:
        os.close(fd)


def test_buffers_are_kept_for_the_next_file_and_bounded() -> None:
    pool = disk._Buffers()
    taken = [pool.take() for _ in range(pool.KEEP + 2)]
    for buffer in taken:
        pool.give(buffer)
    assert len(pool.free) == pool.KEEP
    assert pool.take() is taken[pool.KEEP - 1]  # reused, not made again
    assert sum(b.closed for b in taken) == 2  # the ones beyond KEEP released
