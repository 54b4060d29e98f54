"""The Storage contract, run against both implementations: a local directory and S3
(moto's server over HTTP)."""

from __future__ import annotations

import hashlib
import os
import time
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from monctl.adapters.storage import MiB, Storage, open_storage
from monctl.errors import StorageError

ID = "20261126T020000Z"


@pytest.fixture(params=["local", "s3"])
def storage(request: pytest.FixtureRequest, tmp_path: Path) -> Storage:
    if request.param == "local":
        return open_storage(str(tmp_path / "dest"))
    return request.getfixturevalue("make_s3")()


def stream(data: bytes, chunk: int = 256 * 1024) -> Iterator[bytes]:
    for i in range(0, len(data), chunk):
        yield data[i : i + chunk]


def read_all(storage: Storage, key: str) -> bytes:
    with storage.open(key) as f:
        parts = []
        while block := f.read(100_000):
            parts.append(block)
    return b"".join(parts)


def test_put_open_list_delete_round_trip(storage: Storage) -> None:
    data = os.urandom(3 * MiB + 17)
    key = f"{ID}/prometheus.tar.zst"
    assert storage.put(key, stream(data)) == len(data)
    storage.put(f"{ID}/manifest.json", [b'{"a":', b" 1}"])
    storage.put("other/readme.txt", [b"not ours"])

    assert read_all(storage, key) == data
    assert storage.exists(key) and not storage.exists(f"{ID}/grafana.tar.zst")
    assert storage.size(key) == len(data)
    assert storage.list() == [f"{ID}/manifest.json", key, "other/readme.txt"]
    assert storage.list(f"{ID}/") == [f"{ID}/manifest.json", key]
    assert storage.list("2026") == [f"{ID}/manifest.json", key]
    sizes = {o.key: o.size for o in storage.list_objects(f"{ID}/")}
    assert sizes == {key: len(data), f"{ID}/manifest.json": 8}
    assert storage.children() == [ID, "other"]

    storage.delete([key, f"{ID}/does-not-exist"])
    assert storage.list() == [f"{ID}/manifest.json", "other/readme.txt"]
    assert storage.delete_prefix(f"{ID}/") == 1
    assert storage.list() == ["other/readme.txt"]
    assert storage.children() == ["other"]


def test_put_replaces_an_existing_object(storage: Storage) -> None:
    storage.put("k/obj", [b"first version, longer"])
    storage.put("k/obj", [b"second"])
    assert read_all(storage, "k/obj") == b"second"
    assert storage.list() == ["k/obj"]


def test_empty_object(storage: Storage) -> None:
    assert storage.put("k/empty", []) == 0
    assert storage.exists("k/empty") and storage.size("k/empty") == 0
    assert read_all(storage, "k/empty") == b""


def test_missing_key_is_a_storage_error(storage: Storage) -> None:
    storage.put("k/present", [b"x"])
    with pytest.raises(StorageError) as err:
        storage.open("k/absent").__enter__()
    assert "absent" in err.value.message
    with pytest.raises(StorageError):
        storage.size("k/absent")


@pytest.mark.parametrize("key", ["/abs", "../up", "a/../b", "a//b", "", "a/./b"])
def test_unsafe_keys_are_refused(storage: Storage, key: str) -> None:
    with pytest.raises(StorageError, match="invalid storage key"):
        storage.put(key, [b"x"])


def test_failing_source_leaves_nothing(storage: Storage) -> None:
    def broken() -> Iterator[bytes]:
        # 12 MiB first: on S3 the multipart upload (5 MiB parts) is under way.
        yield from stream(os.urandom(12 * MiB))
        raise RuntimeError("the container went away")

    storage.put("k/keep", [b"x"])
    with pytest.raises(RuntimeError, match="went away"):
        storage.put("k/broken", broken())
    assert storage.list() == ["k/keep"]
    assert not storage.exists("k/broken")


def test_check_writable(storage: Storage) -> None:
    storage.check_writable()


def test_content_hash_survives_a_large_stream(storage: Storage) -> None:
    # 50 MiB generated on the fly: on S3 this goes multipart (5 MiB parts).
    sha = hashlib.sha256()

    def generated() -> Iterator[bytes]:
        block = os.urandom(MiB)
        for i in range(50):
            piece = block[i:] + block[:i]
            sha.update(piece)
            yield piece

    assert storage.put(f"{ID}/big.tar", generated()) == 50 * MiB
    with storage.open(f"{ID}/big.tar") as f:
        got = hashlib.sha256()
        while block := f.read(MiB):
            got.update(block)
    assert got.hexdigest() == sha.hexdigest()


def test_location_has_no_credentials(storage: Storage) -> None:
    assert "secret" not in storage.location and "@" not in storage.location


def test_staging_keeps_commits_and_drops(storage: Storage) -> None:
    """Content-addressed writes: bytes first, key after; commit makes them present."""
    big = os.urandom(9 * MiB + 5)  # beyond the in-memory spool and one S3 part
    with storage.staging("objects/") as batch:
        kept = batch.spool()
        for i in range(0, len(big), MiB):
            kept.write(memoryview(big)[i : i + MiB])
        assert kept.size == len(big)
        key = f"objects/{hashlib.sha256(big).hexdigest()}"
        batch.keep(kept, key)
        dropped = batch.spool()
        dropped.write(b"already in the repository")
        batch.drop(dropped)
        twice = [batch.spool(), batch.spool()]
        for spool in twice:
            spool.write(b"same bytes")
            batch.keep(spool, "objects/same")
        batch.commit()
    assert storage.list() == sorted([key, "objects/same"])
    assert read_all(storage, key) == big and read_all(storage, "objects/same") == b"same bytes"
    modified = [o.modified for o in storage.list_objects("objects/")]
    assert all(m is not None and abs(m - time.time()) < 600 for m in modified), modified


def test_staging_left_without_commit_leaves_no_partial(storage: Storage) -> None:
    with pytest.raises(RuntimeError, match="interrupted"), storage.staging("objects/") as batch:
        spool = batch.spool()
        spool.write(os.urandom(MiB))
        raise RuntimeError("interrupted")
    assert storage.list() == []
    assert storage.clean_partials("objects/", timedelta(0)) == []


def test_staging_replaces_only_when_asked(storage: Storage) -> None:
    storage.put("objects/k", [b"old"])
    for replace, expected in ((False, b"old"), (True, b"new")):
        with storage.staging("objects/") as batch:
            spool = batch.spool()
            spool.write(b"new")
            batch.keep(spool, "objects/k", replace=replace)
            batch.commit()
        if not replace and storage.location.startswith("s3://"):
            expected = b"new"  # S3 uploads what is kept; the caller decides whether to keep
        assert read_all(storage, "objects/k") == expected
