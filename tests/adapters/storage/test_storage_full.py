"""A local destination whose disk fills, turns read-only or goes away: StorageErrors (exit 8).

The disk is a real tmpfs of a few MiB (``support.small_disk``): the kernel's own
ENOSPC and EROFS, not an exception made up by the test. Nothing half-written is
left behind, and what was there before is intact.
"""

from __future__ import annotations

import errno
import os
import subprocess
import tempfile
from pathlib import Path

import pytest
from support.small_disk import fill, small_disk

from monctl.adapters.storage import MiB
from monctl.adapters.storage.local import LocalStorage
from monctl.adapters.storage.os_errors import CAUSES, storage_error
from monctl.adapters.storage.staging import spool_staging
from monctl.errors import ExitCode, OutOfSpace, StorageError

OLD = "objects/aa/old"


def files(root: Path) -> list[str]:
    return sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())


@pytest.fixture
def disk(tmp_path: Path):  # type: ignore[no-untyped-def]
    with small_disk(tmp_path / "disk", 4 * MiB) as path:
        yield path


def test_a_spool_that_fills_the_disk_is_out_of_space_and_leaves_nothing(disk: Path) -> None:
    storage = LocalStorage(disk / "bk")
    storage.check_writable()
    storage.put(OLD, [b"an earlier object"])
    with pytest.raises(OutOfSpace) as caught, storage.staging("objects/") as batch:
        spool = batch.spool()
        for _ in range(8):
            spool.write(os.urandom(MiB))
    error = caught.value
    assert error.exit_code == ExitCode.STORAGE
    assert error.message.startswith(f"cannot write an object in {disk / 'bk'}: ")
    assert "no space left on device (" in error.message and " free)" in error.message
    assert error.free is not None and error.free < MiB and error.place == str(disk / "bk")
    assert "prune" in (error.hint or "") and "--to" in (error.hint or "")
    assert files(disk) == [OLD.replace("objects", "bk/objects")]
    assert (disk / "bk" / OLD).read_bytes() == b"an earlier object"


def test_many_pieces_at_once_fill_the_disk_too(disk: Path) -> None:
    storage = LocalStorage(disk / "bk")
    with pytest.raises(OutOfSpace), storage.staging("objects/") as batch:
        batch.spool().write_all([os.urandom(MiB) for _ in range(6)])
    assert files(disk / "bk") == []


def test_an_object_put_on_a_full_disk_leaves_no_partial(disk: Path) -> None:
    """What a manifest write meets: ``put`` (partial file, then rename)."""
    storage = LocalStorage(disk / "bk")
    storage.put(OLD, [b"an earlier object"])
    fill(disk, leave=64 * 1024)
    with pytest.raises(OutOfSpace) as caught:
        storage.put("20261126T020000Z/manifest.json", (b"x" * 65536 for _ in range(4)))
    assert caught.value.message.startswith(
        f"cannot write 20261126T020000Z/manifest.json in {disk / 'bk'}: no space left on device"
    )
    assert files(disk / "bk") == [OLD]


def test_a_full_temporary_directory_is_out_of_space_naming_it(
    disk: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """S3 uploads wait in a temporary file past 8 MiB: its disk can fill as well."""
    monkeypatch.setattr(tempfile, "tempdir", str(disk))
    storage = LocalStorage(tmp_path / "elsewhere")  # SpoolStaging works over any Storage
    with pytest.raises(OutOfSpace) as caught, spool_staging(storage) as batch:
        spool = batch.spool()
        for _ in range(12):
            spool.write(os.urandom(MiB))
    assert caught.value.message.startswith(f"cannot spool an object to upload in {disk}: ")
    assert "TMPDIR" in (caught.value.hint or "")
    assert os.listdir(disk) == []


def test_a_read_only_destination_says_so(disk: Path) -> None:
    storage = LocalStorage(disk / "bk")
    storage.put(OLD, [b"an earlier object"])
    remount = ["mount", "-o", "remount,ro", str(disk)]
    assert subprocess.run(remount, check=False).returncode == 0
    with pytest.raises(StorageError) as caught:
        storage.check_writable()
    assert caught.value.message == f"cannot write in {disk / 'bk'}: read-only file system"
    assert "read-write" in (caught.value.hint or "")
    with storage.open(OLD) as f:  # reading still works
        assert f.read() == b"an earlier object"


def test_a_destination_removed_during_the_batch_is_not_made_again(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path / "bk")
    with pytest.raises(StorageError) as caught, storage.staging("objects/") as batch:
        first = batch.spool()
        first.write(b"one")
        batch.keep(first, "objects/aa/one")
        # Removed (or unmounted) mid-run. Moved away in one step, not rmtree: the
        # batch may still be writing in the background, and rmtree would race it.
        (tmp_path / "bk").rename(tmp_path / "gone")
        batch.spool()
        batch.spool()
    assert "it is gone (removed or unmounted during the run?)" in caught.value.message
    assert caught.value.exit_code == ExitCode.STORAGE
    assert not (tmp_path / "bk").exists()


@pytest.mark.parametrize(
    "code", [errno.EDQUOT, errno.EACCES, errno.EPERM, errno.EIO, errno.ENOENT, errno.EROFS]
)
def test_every_cause_is_named_with_a_hint(code: int, tmp_path: Path) -> None:
    error = storage_error(OSError(code, os.strerror(code), "/x"), tmp_path, "cannot write x")
    assert error.exit_code == ExitCode.STORAGE
    assert error.message.startswith(f"cannot write x in {tmp_path}: {CAUSES[code][0]}")
    assert error.hint == CAUSES[code][1]
    assert isinstance(error, OutOfSpace) == (code == errno.EDQUOT)
