"""Incremental, deduplicated backups (format 2) through the real pipeline: what is read,
what is written, what is reused, and that a restore gives back exactly what was there.

The runtime is the fake at the outer edge (``support.fake_runtime``); the repository a
real local directory. The same flows run against Docker and Prometheus in tests/e2e.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import repo
from support.fake_runtime import FakeRuntime

from monctl.adapters.storage.local import LocalStorage
from monctl.backup import restore, verify
from monctl.errors import ExitCode, IntegrityError
from monctl.project import Project
from monctl.repository.filelist import ServiceFiles
from monctl.repository.manifest import read_manifest
from monctl.repository.objects import object_key


@pytest.fixture(autouse=True)
def per_unit(monkeypatch: pytest.MonkeyPatch) -> None:
    """Requests as costly as no bytes at all: every unit to read is read on its own
    (the units here are small; real ones are tens to hundreds of MiB)."""
    monkeypatch.setenv("MONCTL_BACKUP_REQUEST_BYTES", "0")


def files_of(storage: LocalStorage, backup_id: str, service: str) -> ServiceFiles:
    return read_manifest(storage, backup_id).files(service)


def test_a_second_backup_reads_no_unit_and_writes_nothing(
    proj: Project, rt: FakeRuntime, storage: LocalStorage
) -> None:
    first = repo.back_up(proj, rt, storage)
    s1 = repo.stats(first, "tsdb")
    assert s1.new_objects == 6 and s1.reused_objects == 0 and s1.read_bytes > 600_000
    assert rt.reads == ["/data/tsdb", "/var/lib/ledger"]  # one whole read each: all is new

    second = repo.back_up(proj, rt, storage)
    s2 = repo.stats(second, "tsdb")
    assert rt.reads == ["/var/lib/ledger"], "a unit the repository holds was read again"
    assert (s2.read_bytes, s2.written_bytes, s2.new_objects) == (0, 0, 0)
    assert s2.reused_objects == 6
    # The ledger is read whole (no listing) but nothing of it is written again.
    ledger = repo.stats(second, "ledger")
    assert ledger.read_bytes > 5_000_000 and ledger.written_bytes == 0
    assert ledger.reused_objects == 3  # two journal files and the unchanged pack
    a, b = (files_of(storage, r.backup_id, "tsdb") for r in (first, second))
    assert a.files == b.files
    assert verify.verify(storage, second.backup_id).ok


def test_a_new_unit_alone_is_read_and_written(
    proj: Project, rt: FakeRuntime, storage: LocalStorage
) -> None:
    repo.back_up(proj, rt, storage)
    rt.files["tsdb"].update(repo.block(3, size=200_000))
    report = repo.back_up(proj, rt, storage, (repo.TSDB,))
    s = repo.stats(report, "tsdb")
    assert rt.reads == ["/data/tsdb/B3"]
    assert s.new_objects == 3 and s.reused_objects == 6
    notes = next(r.notes for r in report.services if r.service == "tsdb")
    assert "2 unit(s) reused (not read), 1 read (one request each)" in notes
    assert 200_000 <= s.written_bytes < 200_000 + 20_000  # the block, its index compressed
    tops = {e.top for e in files_of(storage, report.backup_id, "tsdb").files}
    assert tops == {"B1", "B2", "B3"}


def test_one_whole_read_when_the_units_to_skip_are_smaller_than_a_request(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MONCTL_BACKUP_REQUEST_BYTES")
    repo.back_up(proj, rt, storage, (repo.TSDB,))
    rt.files["tsdb"].update(repo.block(3))
    report = repo.back_up(proj, rt, storage, (repo.TSDB,))
    assert rt.reads == ["/data/tsdb"]  # B1 and B2 pass by, skipped, cheaper than 1 request
    s = repo.stats(report, "tsdb")
    assert s.new_objects == 3 and s.reused_objects == 6


def test_a_unit_whose_listing_changed_is_read_again(
    proj: Project, rt: FakeRuntime, storage: LocalStorage
) -> None:
    repo.back_up(proj, rt, storage, (repo.TSDB,))
    rt.files["tsdb"]["B2/meta.json"] = b'{"ulid": "B2", "compaction": {"failed": true}}'
    rt.mtimes["tsdb"] = {"B2/meta.json": 1_790_000_500}
    report = repo.back_up(proj, rt, storage, (repo.TSDB,))
    assert rt.reads == ["/data/tsdb/B2"]
    s = repo.stats(report, "tsdb")
    assert s.new_objects == 1 and s.reused_objects == 5  # only meta.json is new content
    meta = next(
        e
        for e in files_of(storage, report.backup_id, "tsdb").files
        if e.path.endswith("B2/meta.json")
    )
    assert meta.mtime == 1_790_000_500


def test_a_missing_object_is_written_again_by_the_next_backup(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    first = repo.back_up(proj, rt, storage, (repo.TSDB,))
    chunk = next(
        e for e in files_of(storage, first.backup_id, "tsdb").files if e.path == "B1/chunks/000001"
    )
    assert chunk.blob is not None and chunk.blob.ref.codec == "none"  # declared compressed
    (tmp_path / "repo" / object_key(chunk.blob.ref.id)).unlink()
    with pytest.raises(IntegrityError, match="is missing"):
        verify.verify(storage, first.backup_id)
    second = repo.back_up(proj, rt, storage, (repo.TSDB,))
    assert rt.reads == ["/data/tsdb/B1"]
    assert repo.stats(second, "tsdb").new_objects == 1
    assert verify.verify(storage, first.backup_id).ok  # the first backup is whole again


def test_full_rewrites_a_damaged_object(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    first = repo.back_up(proj, rt, storage)
    index = next(
        e for e in files_of(storage, first.backup_id, "tsdb").files if e.path == "B2/index"
    )
    assert index.blob is not None and index.blob.ref.codec == "zstd"  # it compresses
    path = tmp_path / "repo" / object_key(index.blob.ref.id)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x40
    path.write_bytes(bytes(data))
    report = verify.verify(storage, first.backup_id, check=False)
    assert report.exit_code == ExitCode.INTEGRITY
    assert report.needed_by == {index.blob.ref.id: [first.backup_id]}
    # An incremental backup trusts what is there; --full reads and writes it all again.
    full = repo.back_up(proj, rt, storage, full=True)
    assert rt.reads == ["/data/tsdb", "/var/lib/ledger"]
    assert repo.stats(full, "tsdb").reused_objects == 0
    assert verify.verify(storage, first.backup_id).ok


def test_the_same_content_is_stored_once(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    same = os.urandom(100_000)
    rt.files["ledger"]["journal/0003"] = same
    rt.files["ledger"]["journal/0004"] = same
    report = repo.back_up(proj, rt, storage, (repo.LEDGER,))
    entries = {e.path: e for e in files_of(storage, report.backup_id, "ledger").files}
    assert entries["journal/0003"].blob == entries["journal/0004"].blob
    objects = [p for p in (tmp_path / "repo" / "objects").rglob("*") if p.is_file()]
    assert len(objects) == 4  # three distinct journal files (0003 = 0004) and the pack
    assert entries["ledger.db"].blob is None  # packed: not an immutable file


def test_compression_only_where_it_pays_unless_forced(
    proj: Project, rt: FakeRuntime, storage: LocalStorage
) -> None:
    auto = files_of(storage, repo.back_up(proj, rt, storage, (repo.LEDGER,)).backup_id, "ledger")
    assert auto.pack is not None and auto.pack.ref.codec == "zstd"
    assert auto.pack.ref.stored < auto.pack.size / 5  # the database shrinks
    journal = {e.path: e.blob for e in auto.files if e.blob}
    assert {b.ref.codec for b in journal.values()} == {"none"}  # random bytes: not worth it
    forced = repo.back_up(proj, rt, storage, (repo.LEDGER,), compression="gzip", full=True)
    codecs = {b.ref.codec for b in files_of(storage, forced.backup_id, "ledger").blobs()}
    assert codecs == {"gzip"}


def test_a_listing_that_fails_means_reading_everything(
    proj: Project, rt: FakeRuntime, storage: LocalStorage
) -> None:
    repo.back_up(proj, rt, storage, (repo.TSDB,))
    rt.tools["find"] = lambda argv: (1, "find: permission denied")
    report = repo.back_up(proj, rt, storage, (repo.TSDB,))
    assert rt.reads == ["/data/tsdb"]
    assert any("could not be listed" in w for w in report.warnings)
    assert repo.stats(report, "tsdb").written_bytes == 0  # read, but nothing new to write


def test_restore_gives_back_every_file_and_time(
    proj: Project, rt: FakeRuntime, storage: LocalStorage
) -> None:
    repo.back_up(proj, rt, storage)
    rt.files["tsdb"].update(repo.block(3))
    report = repo.back_up(proj, rt, storage)  # B1, B2 reused; B3 new
    expected = {name: dict(files) for name, files in rt.files.items()}
    rt.files = {"tsdb": {"B9/junk": b"x"}, "ledger": {}}
    done = restore.run(proj, rt, storage, report.backup_id, (), confirm=lambda q: True)
    assert done.exit_code == ExitCode.OK, done.to_json()
    assert rt.files == expected
    assert set(rt.mtimes["tsdb"].values()) == {1_790_000_000}


def test_restore_refuses_before_staging_when_an_object_is_damaged(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    report = repo.back_up(proj, rt, storage, (repo.LEDGER,))
    pack = files_of(storage, report.backup_id, "ledger").pack
    assert pack is not None
    path = tmp_path / "repo" / object_key(pack.ref.id)
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(IntegrityError, match=r"pack of ledger .* wrong size"):
        restore.run(proj, rt, storage, report.backup_id, (), confirm=lambda q: True)
    assert not [entry for entry in rt.log if entry.startswith(("stage", "swap"))]


def test_a_failed_backup_leaves_no_manifest_and_no_spool(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    real = rt.read_data

    def broken(service: object, path: str) -> Iterator[bytes]:
        if "ledger" in path:
            yield b"\0" * 100  # not a tar: the stream breaks mid-backup
            return
        yield from real(service, path)  # type: ignore[arg-type]

    rt.read_data = broken  # type: ignore[method-assign]
    from monctl.backup import create

    report = create.run(proj, rt, storage, (repo.TSDB, repo.LEDGER))
    assert report.exit_code == ExitCode.INTEGRITY
    assert [(s.service, s.status) for s in report.services] == [
        ("tsdb", "discarded"),
        ("ledger", "failed"),
    ]
    assert not storage.list(f"{report.backup_id}/")
    assert not list((tmp_path / "repo").rglob("*.partial-*"))
    doc = report.to_json()
    assert doc["error"]["message"].startswith("backup failed (ledger)")
    json.dumps(doc)


def test_verify_all_reads_each_object_once_and_names_every_backup_in_need(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    from support.backup_factory import make_backup

    from monctl.backup.verify_all import verify_all

    make_backup(storage, "20200101T000000Z", services=("grafana",))  # a flat one, too
    first = repo.back_up(proj, rt, storage, (repo.TSDB,)).backup_id
    time.sleep(1.1)
    second = repo.back_up(proj, rt, storage, (repo.TSDB,)).backup_id
    good = verify_all(storage)
    assert good.ok and [b.backup_id for b in good.backups] == ["20200101T000000Z", first, second]
    stored = sum(
        p.stat().st_size for p in (tmp_path / "repo" / "objects").rglob("*") if p.is_file()
    )
    flat = sum(p.stat().st_size for p in (tmp_path / "repo" / "20200101T000000Z").glob("*.tar.*"))
    assert good.read_bytes == stored + flat  # shared objects read once, not per backup

    victim = next(e.blob for e in files_of(storage, first, "tsdb").files if e.path == "B1/index")
    assert victim is not None
    (tmp_path / "repo" / object_key(victim.ref.id)).unlink()
    bad = verify_all(storage)
    assert bad.exit_code == ExitCode.INTEGRITY
    assert bad.needed_by == {victim.ref.id: [first, second]}
    assert [b.ok for b in bad.backups] == [True, False, False]
    doc = json.loads(json.dumps(bad.to_json()))
    assert doc["needed_by"] == {victim.ref.id: [first, second]}


def test_list_says_what_each_backup_read_wrote_and_reused(
    proj: Project, rt: FakeRuntime, storage: LocalStorage
) -> None:
    from monctl.backup.listing import list_repository
    from monctl.repository import Repository

    repo.back_up(proj, rt, storage)
    time.sleep(1.1)
    second = repo.back_up(proj, rt, storage)
    listed = list_repository(Repository(storage)).to_json()
    newest = listed["backups"][0]
    assert newest["id"] == second.backup_id and newest["format_version"] == 2
    assert newest["written_bytes"] == 0 and newest["reused_objects"] == 9
    assert newest["service_stats"]["tsdb"]["reused_objects"] == 6
    assert listed["repository"]["objects"] == 9 and listed["repository"]["bytes"] > 0
    report = second.to_json()
    assert report["written_bytes"] == 0 and report["reused_objects"] == 9
    assert report["repository_bytes"] == sum(
        s.stats.reused_bytes for s in second.services
    )  # nothing new: the repository is what this backup reuses
