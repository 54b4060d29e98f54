"""``host_read``: a held directory read on the host yields what an archive of it would.

The reference is Python's ``tarfile`` (which, like the engine's archive writer, walks
in sorted order and makes every later name of an inode a hard link to the first),
parsed by monctl's own tar reader; the real engine's archive is compared in
tests/e2e/test_backup_host_read.py.
"""

from __future__ import annotations

import io
import os
import socket
import tarfile
from pathlib import Path

import pytest

from monctl.backup import host_read
from monctl.errors import IntegrityError
from monctl.repository.tar_stream import members as tar_members

LARGE = 5 * 1024 * 1024  # several pieces


def odd_tree(root: Path) -> None:
    """Files, an empty file, a hard link pair, relative symlinks, odd modes and owners."""
    (root / "snapshots" / "snap" / "01BLOCK" / "chunks").mkdir(parents=True)
    snap = root / "snapshots" / "snap"
    (snap / "01BLOCK" / "chunks" / "000001").write_bytes(os.urandom(300_000))
    (snap / "01BLOCK" / "index").write_bytes(b"index" * 1000)
    (snap / "01BLOCK" / "tombstones").write_bytes(b"")
    os.link(snap / "01BLOCK" / "index", snap / "01BLOCK" / "index.again")
    (snap / "01BLOCK" / "meta.json").symlink_to("index")
    (snap / "queries.active").write_bytes(b"q")
    (snap / "01BLOCK" / "chunks" / "000002").write_bytes(os.urandom(LARGE))
    os.chmod(snap / "queries.active", 0o4640)
    os.chown(snap / "queries.active", 4242, 4343)
    (snap / "dangling").symlink_to("no/such/file")
    os.utime(snap / "01BLOCK" / "index", (1_600_000_000.7, 1_600_000_000.7))


def tar_of(root: Path, relative: str) -> list[tuple[tuple[object, ...], bytes]]:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.add(root / relative, arcname=Path(relative).name, recursive=True)
    buf.seek(0)
    return [(_fields(m), b"".join(d.pieces()) if m.isfile() else b"")
            for m, d in tar_members(buf)]  # fmt: skip


def host_of(
    root: Path, relative: str, skip: frozenset[str] = frozenset()
) -> list[tuple[tuple[object, ...], bytes]]:
    counted: list[int] = []
    top = Path(relative).name or root.name
    found = [(_fields(m), b"".join(d.pieces()) if d is not None else b"")
             for m, d in host_read.members(root, relative, top, counted.append, skip)]  # fmt: skip
    assert sum(counted) == sum(len(data) for _, data in found)
    return found


def _fields(m: object) -> tuple[object, ...]:
    from monctl.repository.tar_stream import Member

    assert isinstance(m, Member)
    name = m.name.rstrip("/")
    return (name, m.type, m.size, m.mode, m.uid, m.gid, int(m.mtime), m.linkname)


def test_a_directory_read_on_the_host_is_its_archive_member_for_member(tmp_path: Path) -> None:
    odd_tree(tmp_path)
    expected = tar_of(tmp_path, "snapshots/snap")
    assert host_of(tmp_path, "snapshots/snap") == expected
    kinds = {fields[1] for fields, _ in expected}
    assert {tarfile.REGTYPE, tarfile.DIRTYPE, tarfile.SYMTYPE, tarfile.LNKTYPE} <= kinds


def test_the_whole_data_directory_is_named_as_in_the_container(tmp_path: Path) -> None:
    data = tmp_path / "_data"
    data.mkdir()
    odd_tree(data)
    found = list(host_read.members(data, "", "prometheus", lambda n: None))
    assert found[0][0].name == "prometheus" and found[0][0].type == tarfile.DIRTYPE
    assert found[1][0].name == "prometheus/snapshots"


def test_skipped_top_level_names_are_not_walked(tmp_path: Path) -> None:
    odd_tree(tmp_path)
    names = [f[0] for f, _ in host_of(tmp_path, "snapshots/snap", frozenset({"01BLOCK"}))]
    assert names == ["snap", "snap/dangling", "snap/queries.active"]


def test_a_symlink_where_the_snapshot_should_be_is_refused_not_followed(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("not the service's")
    data = tmp_path / "_data"
    (data / "snapshots").mkdir(parents=True)
    (data / "snapshots" / "snap").symlink_to(outside)
    with pytest.raises(IntegrityError, match="refusing to read"):
        host_of(data, "snapshots/snap")


def test_a_symlinked_directory_inside_is_a_symlink_member_never_entered(tmp_path: Path) -> None:
    outside = tmp_path / "outside"
    outside.mkdir()
    (outside / "secret").write_text("not the service's")
    data = tmp_path / "_data"
    data.mkdir()
    (data / "escape").symlink_to(outside)
    found = host_of(data, "")
    assert [f[0] for f, _ in found] == ["_data", "_data/escape"]
    assert found[1][0][1] == tarfile.SYMTYPE and found[1][1] == b""


def test_a_file_replaced_after_it_was_listed_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(LARGE * b"f")
    walk = host_read.members(tmp_path, "d", "d", lambda n: None)
    next(walk)  # the directory
    member, data = next(walk)
    assert member.name == "d/f" and data is not None
    (tmp_path / "d" / "g").write_bytes(b"other")
    os.rename(tmp_path / "d" / "g", tmp_path / "d" / "f")  # another inode under the name
    with pytest.raises(IntegrityError, match="another file took its name"):
        b"".join(data.pieces())


def test_a_file_shorter_than_listed_is_refused(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    (tmp_path / "d" / "f").write_bytes(b"x" * LARGE)
    walk = host_read.members(tmp_path, "d", "d", lambda n: None)
    next(walk)
    _, data = next(walk)
    assert data is not None
    os.truncate(tmp_path / "d" / "f", 10)
    with pytest.raises(IntegrityError, match="fewer than listed"):
        b"".join(data.pieces())


def test_sockets_are_left_out_and_fifos_yielded_for_tar_safety_to_refuse(tmp_path: Path) -> None:
    (tmp_path / "d").mkdir()
    os.mkfifo(tmp_path / "d" / "fifo")
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(tmp_path / "d" / "sock"))
        found = host_of(tmp_path, "d")
    kinds = [(f[0], f[1]) for f, _ in found]
    assert kinds == [("d", tarfile.DIRTYPE), ("d/fifo", tarfile.FIFOTYPE)]


def test_a_path_leaving_the_volume_is_refused(tmp_path: Path) -> None:
    from monctl.errors import OperationFailed

    with pytest.raises(OperationFailed, match="leaves the volume"):
        list(host_read.members(tmp_path, "snapshots/../..", "x", lambda n: None))
