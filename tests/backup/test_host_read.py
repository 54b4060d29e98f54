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
from collections.abc import Iterator
from pathlib import Path

import pytest

from monctl.adapters.storage.local import LocalStorage
from monctl.backup import host_read
from monctl.errors import IntegrityError, OperationFailed
from monctl.repository.tar_stream import Member
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


# -- Ingest: a host read's files stored several at a time, the same as from a tar ------------


def ingested(tmp_path: Path, repo_name: str, host: bool) -> tuple[list[tuple[object, ...]], str]:
    """The file list and pack of ``tmp_path/data`` ingested from a host read (its files
    stored by the workers) or from a tar stream of it (one after another)."""
    from monctl.backup.ingest import Ingest
    from monctl.repository import Repository
    from monctl.services.model import Layout

    (tmp_path / repo_name).mkdir()
    repo = Repository.of(LocalStorage(tmp_path / repo_name))
    layout = Layout(units="[0-9A-Z]{7}", objects=("objects/*",), compressed=("*/chunks/*",))
    with repo.staging() as staging:
        ingest = Ingest("svc", layout, staging, repo.index(["svc"]), "auto")
        if host:
            pairs = host_read.members(tmp_path / "data", "", "data", ingest.count)
            ingest.add_members(pairs, "data", keep_root=False)
        else:
            buf = io.BytesIO()
            with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
                tar.add(tmp_path / "data", arcname="data")
            ingest.add_stream([buf.getvalue()], "data", keep_root=False)
        files, pack, stats = ingest.finish()
        staging.commit()
    rows = [(e.path, e.kind, e.mode, e.uid, e.gid, e.mtime, e.size, e.sha256, e.link,
             e.blob.ref.id if e.blob else None) for e in files]  # fmt: skip
    assert stats.new_objects == len({r[-1] for r in rows if r[-1]}) + (pack is not None)
    return rows, pack.ref.id if pack else ""


def test_files_stored_by_the_workers_are_what_a_tar_stream_stores(tmp_path: Path) -> None:
    data = tmp_path / "data"
    odd_tree(data)  # a unit, a hard link, symlinks, small files (packed)
    (data / "objects").mkdir()
    for i in range(12):  # more than the workers hold at once; small, large, one twice
        size = (i % 4) * 1024 * 1024 + i * 777
        (data / "objects" / f"o{i:02}").write_bytes(os.urandom(size) if i != 7 else b"")
    (data / "objects" / "same").write_bytes((data / "objects" / "o03").read_bytes())
    rows, pack = ingested(tmp_path, "host", host=True)
    assert (rows, pack) == ingested(tmp_path, "tar", host=False)
    stored = {r[0]: r[-1] for r in rows}
    assert stored["objects/same"] == stored["objects/o03"] is not None
    assert stored["snapshots/snap/01BLOCK/chunks/000002"] is not None  # > IN_MEMORY: a spool


def test_a_file_that_shrinks_while_a_worker_reads_it_fails_the_service(tmp_path: Path) -> None:
    """Every worker stops and every file it opened is closed; the error names the file."""
    from monctl.backup.ingest import Ingest
    from monctl.repository import Repository
    from monctl.services.model import Layout

    data = tmp_path / "data"
    data.mkdir()
    for i in range(8):
        (data / f"f{i}").write_bytes(b"x" * LARGE)
    (tmp_path / "repo").mkdir()
    repo = Repository.of(LocalStorage(tmp_path / "repo"))
    open_before = len(os.listdir("/proc/self/fd"))
    walk = host_read.members(data, "", "data", lambda n: None)

    def shrinking() -> Iterator[tuple[Member, object]]:
        for member, file in walk:
            if member.name == "data/f5":
                os.truncate(data / "f5", 10)  # listed with its size, then shorter
            yield member, file

    with repo.staging() as staging:
        ingest = Ingest("svc", Layout(), staging, repo.index(["svc"]), "auto")
        with pytest.raises(IntegrityError, match=r"f5.*fewer than listed"):
            ingest.add_members(shrinking(), "data", keep_root=False)  # type: ignore[arg-type]
        ingest.abort()
    walk.close()
    assert len(os.listdir("/proc/self/fd")) == open_before


def test_remove_deletes_the_snapshot_below_the_volume(tmp_path: Path) -> None:
    odd_tree(tmp_path)
    (tmp_path / "snapshots" / "other").mkdir()
    host_read.remove(tmp_path, "snapshots/snap")
    assert sorted(p.name for p in (tmp_path / "snapshots").iterdir()) == ["other"]


def test_remove_never_deletes_through_a_link(tmp_path: Path) -> None:
    """The service may have put a link where its snapshots were: whatever it points
    at stays, and the deletion is refused (the container's rm then tries)."""
    outside = tmp_path / "outside"
    (outside / "snap").mkdir(parents=True)
    (outside / "snap" / "keep").write_bytes(b"not monctl's")
    volume = tmp_path / "_data"
    volume.mkdir()
    (volume / "snapshots").symlink_to(outside)
    with pytest.raises(IntegrityError, match="a link or no directory"):
        host_read.remove(volume, "snapshots/snap")
    (volume / "snapshots").unlink()
    (volume / "snapshots").mkdir()
    (volume / "snapshots" / "snap").symlink_to(outside / "snap")
    with pytest.raises(OSError, match="symbolic link"):
        host_read.remove(volume, "snapshots/snap")
    assert (outside / "snap" / "keep").read_bytes() == b"not monctl's"
    for relative in ("../outside/snap", "snapshots/..", ""):
        with pytest.raises(OperationFailed, match="refusing"):
            host_read.remove(volume, relative)
    assert (outside / "snap" / "keep").exists()


def test_a_backup_deletes_its_snapshot_on_this_host_and_asks_the_container_only_when_refused(
    tmp_path: Path,
) -> None:
    """With the volume's directory at hand, the snapshot is deleted there (no ``docker
    exec``); when that is refused (a link in its way), the container's ``rm`` is asked,
    as without one, and nothing outside the volume is touched."""
    from support.fake_runtime import FakeRuntime

    from monctl.backup import consistency
    from monctl.services import SERVICES

    prometheus = next(s for s in SERVICES if s.name == "prometheus")
    assert prometheus.data is not None
    volume = tmp_path / "_data"
    odd_tree(volume)
    runtime = FakeRuntime({}, tools={"rm": lambda argv: (0, "")})
    ctx = consistency.Context(None, runtime, {})  # type: ignore[arg-type]
    path = f"{prometheus.data.path}/snapshots/snap"
    source = consistency.Source(runtime, prometheus, path, host=volume)  # type: ignore[arg-type]
    consistency._delete_snapshot(ctx, prometheus, path, source)
    assert not (volume / "snapshots" / "snap").exists()
    assert source.notes == ["snapshot deleted"] and runtime.log == [] and ctx.warnings == []

    outside = tmp_path / "outside" / "snap"
    outside.mkdir(parents=True)
    (volume / "snapshots").rmdir()
    (volume / "snapshots").symlink_to(outside.parent)
    source = consistency.Source(runtime, prometheus, path, host=volume)  # type: ignore[arg-type]
    consistency._delete_snapshot(ctx, prometheus, path, source)
    assert runtime.log == [f"exec prometheus rm -rf {path}"]
    assert source.notes == ["snapshot deleted"] and outside.is_dir()
