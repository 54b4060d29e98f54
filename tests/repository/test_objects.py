"""Objects (format 2): named by the hash of what is stored, checked on every read, and
compressed only where it pays."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from monctl.adapters.storage.local import LocalStorage
from monctl.errors import IntegrityError
from monctl.repository.object_reader import check_object, hash_stored, open_object
from monctl.repository.objects import (
    PREFIX,
    Blob,
    Encoder,
    ObjectRef,
    choose_codec,
    id_of_key,
    object_key,
)


def store(storage: LocalStorage, data: bytes, codec: str, whole: bool = False) -> Blob:
    with storage.staging(PREFIX) as batch:
        spool = batch.spool()
        encoder = Encoder(codec, spool)
        if whole:
            blob = encoder.write_whole(
                [data[:100], memoryview(data)[100:]], hashlib.sha256(data).hexdigest()
            )
        else:
            for i in range(0, len(data), 70_000):
                encoder.write(data[i : i + 70_000])
            blob = encoder.finish()
        batch.keep(spool, blob.ref.key)
        batch.commit()
    return blob


def read(storage: LocalStorage, blob: Blob) -> bytes:
    with open_object(storage, blob) as plain:
        parts = []
        while data := plain.read(50_000):
            parts.append(data)
    return b"".join(parts)


@pytest.mark.parametrize("codec", ["none", "zstd", "gzip"])
@pytest.mark.parametrize("whole", [False, True])
def test_round_trip_and_the_name_is_the_hash_of_what_is_stored(
    tmp_path: Path, codec: str, whole: bool
) -> None:
    storage = LocalStorage(tmp_path)
    data = os.urandom(300_000) + b"\0" * 300_000
    blob = store(storage, data, codec, whole)
    assert blob.size == len(data) and blob.sha256 == hashlib.sha256(data).hexdigest()
    assert hash_stored(storage, blob.ref) == (blob.ref.id, blob.ref.stored)
    assert read(storage, blob) == data
    if codec != "none":
        assert blob.ref.stored < len(data) and blob.ref.id != blob.sha256
    else:
        assert blob.ref.id == blob.sha256  # stored as it is: one hash is both
    assert id_of_key(object_key(blob.ref.id)) == blob.ref.id
    assert id_of_key(f"objects/00/{blob.ref.id}") is None  # not under its own prefix


@pytest.mark.parametrize("codec", ["none", "zstd", "gzip"])
def test_a_flipped_byte_is_caught_at_the_end_of_the_read(tmp_path: Path, codec: str) -> None:
    storage = LocalStorage(tmp_path)
    blob = store(storage, os.urandom(200_000), codec)
    path = tmp_path / blob.ref.key
    damaged = bytearray(path.read_bytes())
    damaged[len(damaged) // 3] ^= 0x01
    path.write_bytes(bytes(damaged))
    with pytest.raises(IntegrityError, match="corrupt"):
        check_object(storage, blob, "the object")


def test_an_object_decoding_to_more_than_recorded_stops_there(tmp_path: Path) -> None:
    """A decompression bomb, or a manifest lying about the size: reading stops one byte
    past what was promised."""
    storage = LocalStorage(tmp_path)
    blob = store(storage, b"\0" * 5_000_000, "zstd")
    lying = Blob(blob.ref, 1000, blob.sha256)
    with pytest.raises(IntegrityError, match="holds more than the 1000 bytes"):
        read(storage, lying)
    wrong = Blob(blob.ref, blob.size, "0" * 64)
    with pytest.raises(IntegrityError, match="does not decode to the content recorded"):
        read(storage, wrong)
    missing = Blob(ObjectRef("a" * 64, 10, "none"), 10, "a" * 64)
    with pytest.raises(Exception, match="no object"):
        read(storage, missing)


def test_compression_pays_or_is_skipped() -> None:
    assert choose_codec("auto", os.urandom(1 << 20)) == "none"  # TSDB-chunk-like
    assert choose_codec("auto", b"SQLite format 3\0" + b"\0" * 4096 * 16) == "zstd"
    assert choose_codec("auto", b"x" * (1 << 20), compressed=True) == "none"  # declared
    assert choose_codec("auto", b"tiny") == "none"
    for forced in ("zstd", "gzip", "none"):
        assert choose_codec(forced, os.urandom(1000), compressed=True) == forced
    with pytest.raises(IntegrityError, match="unknown compression"):
        choose_codec("lzma", b"")
