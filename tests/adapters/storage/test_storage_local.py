"""Local-directory specifics: the partial-file protocol, Ctrl-C, leftovers, edges."""

from __future__ import annotations

import os
import time
import tracemalloc
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest
from support.direct_io import accepts_direct

from monctl.adapters.storage import MiB
from monctl.adapters.storage.local import PARTIAL_RE, LocalStorage
from monctl.errors import StorageError
from monctl.repository.archive import Digest, compress_stream

KEY = "20261126T020000Z/grafana.tar.gz"


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


def test_object_appears_only_when_complete(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    seen: list[list[str]] = []

    def source() -> Iterator[bytes]:
        for _ in range(3):
            yield b"x" * 1000
            seen.append(files(tmp_path))

    storage.put(KEY, source())
    # While streaming only a partial file exists, never the final name.
    assert all(len(s) == 1 and PARTIAL_RE.search(s[0]) for s in seen)
    assert files(tmp_path) == [KEY]


def test_ctrl_c_keeps_the_old_object_and_leaves_no_partial(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put(KEY, [b"old"])

    def interrupted() -> Iterator[bytes]:
        yield b"new data"
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        storage.put(KEY, interrupted())
    assert files(tmp_path) == [KEY]
    assert (tmp_path / KEY).read_bytes() == b"old"


def test_partials_are_not_listed_and_old_ones_are_cleaned(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    storage.put(KEY, [b"complete"])
    old = tmp_path / "20261126T020000Z" / "loki.tar.gz.partial-0123456789abcdef"
    new = tmp_path / "20261126T020000Z" / "prometheus.tar.gz.partial-fedcba9876543210"
    other = tmp_path / "20251126T020000Z" / "x.tar.partial-00000000000000aa"
    for p in (old, new, other):
        p.parent.mkdir(exist_ok=True)
        p.write_bytes(b"half")
    two_hours_ago = time.time() - 7200
    os.utime(old, (two_hours_ago, two_hours_ago))
    os.utime(other, (two_hours_ago, two_hours_ago))

    assert storage.list() == [KEY]
    assert storage.clean_partials("20261126T020000Z/") == ["20261126T020000Z/loki.tar.gz"]
    assert new.exists() and other.exists()  # too recent / outside the prefix
    assert storage.clean_partials(older_than=timedelta(0), accept=lambda k: "x.tar" in k) == [
        "20251126T020000Z/x.tar"
    ]
    assert new.exists()


def test_delete_prefix_removes_partials_and_empty_dirs_but_not_the_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "dest")
    storage.put(KEY, [b"a"])
    storage.put("20261126T020000Z/manifest.json", [b"{}"])
    (tmp_path / "dest" / "20261126T020000Z" / "x.partial-0123456789abcdef").write_bytes(b"")
    assert storage.delete_prefix("20261126T020000Z/") == 2
    assert (tmp_path / "dest").is_dir() and list((tmp_path / "dest").iterdir()) == []
    with pytest.raises(StorageError):
        storage.delete_prefix("20261126T020000Z")  # not a directory prefix


def test_missing_root(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "nope")
    with pytest.raises(StorageError, match="does not exist"):
        storage.list()
    with pytest.raises(StorageError, match="does not exist"):
        storage.children()
    storage.check_writable()  # creates it
    assert storage.list() == [] and (tmp_path / "nope").is_dir()


def test_unwritable_destination_is_a_storage_error(tmp_path: Path) -> None:
    (tmp_path / "file").write_text("a file where the directory should be")
    storage = LocalStorage(tmp_path / "file" / "backups")
    with pytest.raises(StorageError, match="cannot"):
        storage.check_writable()
    with pytest.raises(StorageError, match="cannot"):
        storage.put(KEY, [b"x"])


def test_symlinked_directories_are_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret.txt").write_text("not a backup")
    storage = LocalStorage(tmp_path / "dest")
    storage.put(KEY, [b"a"])
    (tmp_path / "dest" / "20261127T020000Z").symlink_to(outside)
    assert storage.list() == [KEY]
    assert storage.children() == ["20261126T020000Z"]


def test_memory_stays_bounded_while_streaming(tmp_path: Path) -> None:
    """A sanity bound, not a benchmark (bench/ measures RSS): 64 MiB compressed and
    written through put() must not be held whole."""
    storage = LocalStorage(tmp_path)
    block = os.urandom(MiB)

    def source() -> Iterator[bytes]:
        for i in range(64):
            yield block[i:] + block[:i]

    tracemalloc.start()
    try:
        storage.put(KEY, compress_stream(source(), "gzip", Digest()))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert (tmp_path / KEY).stat().st_size > 60 * MiB
    assert peak < 12 * MiB, f"peak {peak / MiB:.1f} MiB"


def test_staged_objects_appear_only_at_commit_and_crash_leftovers_are_cleaned(
    tmp_path: Path,
) -> None:
    storage = LocalStorage(tmp_path)
    with storage.staging("objects/") as batch:
        spool = batch.spool()
        spool.write(b"bytes of an object")
        batch.keep(spool, "objects/ab/abcdef")
        assert storage.list() == [], "visible before commit"
        assert [p for p in files(tmp_path) if PARTIAL_RE.search(p)], "no spool file"
        batch.commit()
    assert storage.list() == ["objects/ab/abcdef"]
    assert files(tmp_path) == ["objects/ab/abcdef"]
    # A process killed mid-batch leaves its spool: cleaned once old enough.
    leftover = tmp_path / "objects" / "spool.partial-0123456789abcdef"
    leftover.write_bytes(b"half")
    os.utime(leftover, (time.time() - 7200, time.time() - 7200))
    assert storage.list() == ["objects/ab/abcdef"]
    assert storage.clean_partials("objects/", timedelta(hours=1)) == ["objects/spool"]
    assert files(tmp_path) == ["objects/ab/abcdef"]


def test_a_staged_object_goes_past_the_page_cache_and_reads_back_exactly(tmp_path: Path) -> None:
    """A spool's whole blocks are written with O_DIRECT (``disk.DirectWriter``): a backup's
    objects do not push the host's cache out. The bytes, pieces of odd sizes, the tail
    through the cache, are the object exactly."""
    from monctl.adapters.disk import DIRECT_BLOCK
    from monctl.adapters.storage.staging import FileSpool

    data = os.urandom(2 * DIRECT_BLOCK + 12345)
    storage = LocalStorage(tmp_path)
    with storage.staging("objects/") as batch:
        spool = batch.spool()
        assert isinstance(spool, FileSpool) and spool.direct is not None
        spool.write(data[:1000])
        spool.write_all([memoryview(data)[1000:700_000], data[700_000:]])
        if accepts_direct(tmp_path):
            assert spool.direct.direct is True  # two whole blocks written directly
        assert spool.size == len(data)
        batch.keep(spool, "objects/cd/cdef01")
        batch.commit()
    assert (tmp_path / "objects" / "cd" / "cdef01").read_bytes() == data
