"""HashedSink: the ciphertext of an encrypted object hashed and spooled behind the cipher,
in order, its errors raised to the caller, and its thread always gone afterwards."""

from __future__ import annotations

import hashlib
import os
import threading
from collections.abc import Sequence

import pytest

from monctl.backup.hashed_sink import BATCH, HashedSink


class ListSpool:
    def __init__(self, fail_after: int | None = None) -> None:
        self.size = 0
        self.pieces: list[bytes] = []
        self.fail_after = fail_after

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if self.fail_after is not None and self.size >= self.fail_after:
            raise OSError(28, "No space left on device")
        self.pieces.append(bytes(data))
        self.size += len(data)

    def write_all(self, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
        for piece in pieces:
            self.write(piece)


@pytest.mark.parametrize("total", [0, 100, BATCH - 1, BATCH, 5 * BATCH + 12345])
def test_every_byte_in_order_and_hashed(total: int) -> None:
    data = os.urandom(total)
    spool, hasher = ListSpool(), hashlib.sha256()
    sink = HashedSink(hasher, spool)
    before = threading.active_count()
    for at in range(0, total, 65552):  # the size of one sealed age chunk
        sink.write(data[at : at + 65552])
    sink.close()
    assert b"".join(spool.pieces) == data and spool.size == total
    assert hasher.hexdigest() == hashlib.sha256(data).hexdigest()
    assert threading.active_count() == before


def test_a_spool_error_reaches_the_caller_and_the_thread_ends() -> None:
    spool = ListSpool(fail_after=2 * BATCH)
    sink = HashedSink(hashlib.sha256(), spool)
    before = threading.active_count()
    with pytest.raises(OSError, match="No space left"):
        for _ in range(64):
            sink.write(os.urandom(65536))
        sink.close()
    sink.abort()  # what Encoder.abort does after a failure
    assert threading.active_count() == before


def test_abort_mid_object_stops_the_thread() -> None:
    sink = HashedSink(hashlib.sha256(), ListSpool())
    before = threading.active_count()
    for _ in range(40):
        sink.write(os.urandom(65536))
    assert threading.active_count() == before + 1
    sink.abort()
    assert threading.active_count() == before
