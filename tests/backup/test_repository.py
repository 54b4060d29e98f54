"""Listing, verifying and pruning backups in a destination (a local directory here;
tests/adapters/storage/test_backups_s3.py runs the same over S3)."""

from __future__ import annotations

import io
import json
import random
import tarfile
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support.backup_factory import add_dir, add_file, days_ago, make_backup

from monctl.adapters.storage.local import LocalStorage
from monctl.backup.listing import BackupEntry, BackupList, list_backups
from monctl.backup.prune import prune
from monctl.backup.verify import verify
from monctl.cli.output import Output
from monctl.cli.render import draw
from monctl.errors import IntegrityError, StorageError
from monctl.repository import locking as lease
from monctl.repository.archive import Digest, compress_stream
from monctl.repository.manifest import Manifest, ServiceEntry, parse_backup_id, write_manifest
from monctl.repository.retention import INCOMPLETE_GRACE, Policy, decide

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "backups")


def flip_byte(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x01
    path.write_bytes(bytes(data))


def test_list_flags_incomplete_and_ignores_what_is_not_monctls(
    storage: LocalStorage, tmp_path: Path
) -> None:
    make_backup(storage, "20261124T020000Z")
    make_backup(storage, "20261125T020000Z", manifest=False)  # a failed run
    make_backup(storage, "20261126T020000Z", services=["loki"])
    root = tmp_path / "backups"
    (root / "notes").mkdir()
    (root / "notes" / "readme").write_text("operator's own files")
    (root / "2026-11-01").mkdir()
    (root / "20261123T020000Z.tar").write_text("a file, not a backup directory")
    (root / "20261399T020000Z").mkdir()  # looks like an id, is no date

    entries = list_backups(storage)
    assert [e.backup_id for e in entries] == [
        "20261126T020000Z",
        "20261125T020000Z",
        "20261124T020000Z",
    ]
    assert [e.complete for e in entries] == [True, False, True]
    assert entries[1].problem == "no manifest" and entries[1].manifest is None
    assert entries[0].manifest is not None and list(entries[0].manifest.services) == ["loki"]
    assert entries[2].total_size == sum(
        p.stat().st_size for p in (root / "20261124T020000Z").iterdir()
    )
    assert entries[0].created == datetime(2026, 11, 26, 2, tzinfo=UTC)


def test_list_reports_a_broken_manifest_as_incomplete(storage: LocalStorage) -> None:
    make_backup(storage, "20261126T020000Z")
    storage.put("20261126T020000Z/manifest.json", [b"{not json"])
    (entry,) = list_backups(storage)
    assert not entry.complete and "not valid JSON" in (entry.problem or "")


def test_verify_a_good_backup(storage: LocalStorage) -> None:
    m = make_backup(storage, "20261126T020000Z", compression="gzip")
    report = verify(storage, "20261126T020000Z")
    assert report.ok
    assert [c.service for c in report.checks] == ["prometheus", "grafana"]
    assert [c.sha256 for c in report.checks] == [e.sha256 for e in m.services.values()]
    assert all(c.tar is not None and c.tar.files == 4 for c in report.checks)
    only = verify(storage, "20261126T020000Z", ["grafana"])
    assert [c.service for c in only.checks] == ["grafana"]


@pytest.mark.parametrize("compression", ["zstd", "gzip", "none"])
def test_verify_catches_a_flipped_byte(
    storage: LocalStorage, tmp_path: Path, compression: str
) -> None:
    make_backup(storage, "20261126T020000Z", compression=compression)
    ext = {"zstd": ".tar.zst", "gzip": ".tar.gz", "none": ".tar"}[compression]
    flip_byte(tmp_path / "backups" / "20261126T020000Z" / f"grafana{ext}")
    with pytest.raises(IntegrityError, match=r"grafana: .*corrupt"):
        verify(storage, "20261126T020000Z")
    report = verify(storage, "20261126T020000Z", check=False)
    assert [c.ok for c in report.checks] == [True, False]  # keeps going past one failure


def test_verify_catches_a_truncated_archive(storage: LocalStorage, tmp_path: Path) -> None:
    make_backup(storage, "20261126T020000Z")
    path = tmp_path / "backups" / "20261126T020000Z" / "prometheus.tar.zst"
    path.write_bytes(path.read_bytes()[:-100])
    with pytest.raises(IntegrityError, match=r"prometheus: .*truncated"):
        verify(storage, "20261126T020000Z")


def test_verify_catches_a_missing_archive(storage: LocalStorage, tmp_path: Path) -> None:
    make_backup(storage, "20261126T020000Z")
    (tmp_path / "backups" / "20261126T020000Z" / "grafana.tar.zst").unlink()
    with pytest.raises(IntegrityError, match=r"grafana\.tar\.zst is missing"):
        verify(storage, "20261126T020000Z")


def test_verify_missing_manifest_and_missing_backup(storage: LocalStorage) -> None:
    make_backup(storage, "20261126T020000Z", manifest=False)
    with pytest.raises(IntegrityError, match="no manifest"):
        verify(storage, "20261126T020000Z")
    with pytest.raises(StorageError, match="no backup 20261127T020000Z"):
        verify(storage, "20261127T020000Z")
    make_backup(storage, "20261128T020000Z", services=["loki"])
    with pytest.raises(StorageError, match="no archive for grafana"):
        verify(storage, "20261128T020000Z", ["grafana"])


def test_verify_refuses_a_path_traversal_archive_even_with_a_matching_hash(
    storage: LocalStorage,
) -> None:
    # An archive whose manifest agrees with it, but which would write outside the
    # data directory: the hash alone must not make it restorable.
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        add_dir(tar, "loki")
        add_file(tar, "loki/../../etc/cron.d/x", b"* * * * * root sh")
    digest = Digest()
    storage.put("20261126T020000Z/loki.tar.gz", compress_stream([buf.getvalue()], "gzip", digest))
    write_manifest(
        storage,
        Manifest(
            backup_id="20261126T020000Z",
            monctl_version="0.1.0",
            started_at=NOW,
            finished_at=NOW,
            compression="gzip",
            services={
                "loki": ServiceEntry(
                    "loki.tar.gz",
                    "img",
                    None,
                    digest.size,
                    digest.raw_size,
                    digest.sha256,
                    "flush-pause-copy",
                    "loki",
                )
            },
            format_version=1,
        ),
    )
    with pytest.raises(IntegrityError, match=r"loki: archive member 'loki/\.\./\.\./etc"):
        verify(storage, "20261126T020000Z")


# -- retention -------------------------------------------------------------------


def entry(backup_id: str, complete: bool = True) -> BackupEntry:
    return BackupEntry(backup_id, complete, None, parse_backup_id(backup_id), 100)


def ids(entries: list[BackupEntry]) -> list[str]:
    return [e.backup_id for e in entries]


def select_for_prune(
    entries: list[BackupEntry], keep_last: int | None, keep_days: int | None, now: datetime
) -> list[BackupEntry]:
    """The backups retention would delete, newest first."""
    doomed = {
        d.backup_id
        for d in decide(entries, Policy(keep_last=keep_last, keep_days=keep_days), now)
        if not d.keep
    }
    return [
        e for e in sorted(entries, key=lambda e: e.created, reverse=True) if e.backup_id in doomed
    ]


DAILY = [entry(days_ago(NOW, d)) for d in range(10)]  # today .. 9 days ago


@pytest.mark.parametrize(
    ("keep_last", "keep_days", "deleted_days"),
    [
        (3, None, list(range(3, 10))),
        (None, 3, list(range(3, 10))),  # 0, 1 and 2 days ago are within 3 days
        (2, 5, list(range(5, 10))),  # either rule keeps: the wider one wins
        (7, 1, list(range(7, 10))),
        (0, 3, list(range(3, 10))),  # a rule of 0 keeps nothing beside the others
        (3, 0, list(range(3, 10))),
        (100, None, []),
        (None, 100, []),
    ],
)
def test_keep_last_and_keep_days(
    keep_last: int | None, keep_days: int | None, deleted_days: list[int]
) -> None:
    chosen = select_for_prune(DAILY, keep_last, keep_days, NOW)
    assert ids(chosen) == [days_ago(NOW, d) for d in deleted_days]


def test_incomplete_backups_go_only_when_older_than_the_newest_complete() -> None:
    entries = [
        entry(days_ago(NOW, 0.1), complete=False),  # maybe still running
        entry(days_ago(NOW, 1)),
        entry(days_ago(NOW, 2), complete=False),  # a failed run
        entry(days_ago(NOW, 3)),
        entry(days_ago(NOW, 0.5), complete=False),  # older than the newest complete? no
    ]
    chosen = select_for_prune(entries, keep_last=5, keep_days=None, now=NOW)
    assert ids(chosen) == [days_ago(NOW, 2)]


def test_nothing_complete_means_nothing_pruned() -> None:
    entries = [entry(days_ago(NOW, d), complete=False) for d in range(5)]
    assert select_for_prune(entries, 1, None, NOW) == []


def test_rules_are_required_and_not_negative() -> None:
    with pytest.raises(ValueError):
        select_for_prune(DAILY, None, None, NOW)
    with pytest.raises(ValueError):
        select_for_prune(DAILY, -1, None, NOW)


@pytest.mark.parametrize("seed", range(200))
def test_retention_invariants_on_random_histories(seed: int) -> None:
    rng = random.Random(seed)
    entries = [
        entry(days_ago(NOW, rng.uniform(0, 60)), complete=rng.random() < 0.8)
        for _ in range(rng.randint(0, 25))
    ]
    entries = list({e.backup_id: e for e in entries}.values())
    keep_last = rng.choice([None, 0, 1, 2, 5, 30])
    keep_days = rng.choice([None, 0, 1, 7, 90]) if keep_last is not None else rng.randint(0, 30)
    if not (keep_last or keep_days):
        keep_days = 1  # rules that are all 0 are refused (test_retention.py)
    chosen = {e.backup_id for e in select_for_prune(entries, keep_last, keep_days, NOW)}
    complete = sorted((e for e in entries if e.complete), key=lambda e: e.created, reverse=True)
    if complete:
        assert complete[0].backup_id not in chosen  # never the newest complete
    assert len(chosen) < len(entries) or not entries  # never all of them
    for i, e in enumerate(complete):
        kept = (
            i == 0
            or (keep_last is not None and i < keep_last)
            or (keep_days is not None and e.created > NOW - timedelta(days=keep_days))
        )
        assert (e.backup_id in chosen) == (not kept)
    for e in entries:
        if not e.complete:
            older = bool(complete) and e.created < complete[0].created
            old_enough = e.created < NOW - INCOMPLETE_GRACE
            assert (e.backup_id in chosen) == (older and old_enough)


def test_prune_deletes_only_selected_monctl_backups(storage: LocalStorage, tmp_path: Path) -> None:
    for d in (0, 1, 2, 3):
        make_backup(storage, days_ago(NOW, d), services=["loki"])
    make_backup(storage, days_ago(NOW, 2.5), services=["loki"], manifest=False)
    root = tmp_path / "backups"
    (root / "keep-me").mkdir()
    (root / "keep-me" / "x").write_text("not monctl's")

    dry = prune(storage, Policy(keep_last=2), dry_run=True, now=NOW)
    doomed = [days_ago(NOW, 2), days_ago(NOW, 2.5), days_ago(NOW, 3)]
    assert dry.dry_run and dry.to_json()["deleted"] == doomed
    assert len(list_backups(storage)) == 5  # nothing deleted

    report = prune(storage, Policy(keep_last=2), dry_run=False, now=NOW)
    assert report.deleted == doomed and report.errors == []
    assert ids(list_backups(storage)) == [days_ago(NOW, 0), days_ago(NOW, 1)]
    assert (root / "keep-me" / "x").read_text() == "not monctl's"
    assert report.freed > 0
    assert json.loads(json.dumps(report.to_json()))["deleted"] == doomed


def test_reports_render_and_serialise(
    storage: LocalStorage, capsys: pytest.CaptureFixture[str]
) -> None:
    make_backup(storage, "20261126T020000Z")
    make_backup(storage, "20261125T020000Z", manifest=False)
    out = Output()
    listing = BackupList(storage.location, list_backups(storage))
    draw(out, listing)
    draw(out, verify(storage, "20261126T020000Z"))
    draw(out, prune(storage, Policy(keep_last=1), dry_run=True, now=NOW))
    text = capsys.readouterr().out
    assert "20261126T020000Z" in text and "incomplete" in text and "would delete" in text
    assert "newest complete backup" in text  # why each backup is kept
    doc = json.loads(json.dumps(listing.to_json()))
    assert [b["complete"] for b in doc["backups"]] == [True, False]
    assert doc["backups"][0]["services"] == ["grafana", "prometheus"]


# -- hostile destinations: one poisoned backup, backups in use, backups that vanish -------
def test_a_poisoned_manifest_spoils_neither_listing_nor_retention(storage: LocalStorage) -> None:
    for d in (0, 1, 2):
        make_backup(storage, days_ago(NOW, d), services=["loki"])
    poisoned = days_ago(NOW, 3)
    make_backup(storage, poisoned, services=["loki"], manifest=False)
    storage.put(f"{poisoned}/manifest.json", [b"[" * 50_000 + b"]" * 50_000])

    entries = {e.backup_id: e for e in list_backups(storage)}
    assert entries[poisoned].state == "invalid" and "nested" in (entries[poisoned].problem or "")
    with pytest.raises(IntegrityError, match="nested too deeply"):
        verify(storage, poisoned)
    report = prune(storage, Policy(keep_last=1), now=NOW)
    assert report.errors == [] and poisoned in report.deleted


def test_prune_skips_a_backup_in_use_and_says_by_whom(storage: LocalStorage) -> None:
    for d in (0, 1, 2):
        make_backup(storage, days_ago(NOW, d), services=["loki"])
    in_use = days_ago(NOW, 2)
    with lease.holding(storage, in_use, "restore"):
        report = prune(storage, Policy(keep_last=1), now=NOW)
        reasons = {d.backup_id: d.reason for d in report.decisions}
        assert in_use not in report.deleted and in_use in report.kept
        assert reasons[in_use].startswith("in use: restore by pid ")
    assert days_ago(NOW, 1) in report.deleted
    # Released: the next prune takes it.
    assert prune(storage, Policy(keep_last=1), now=NOW).deleted == [in_use]


def test_a_lease_taken_after_prune_decided_still_saves_the_backup(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A restore starts on another host between prune's listing and its deletion."""
    from monctl.backup import prune as repository

    for d in (0, 1):
        make_backup(storage, days_ago(NOW, d), services=["loki"])
    old = days_ago(NOW, 1)
    real = repository.decide

    def decided_then_leased(*args: Any, **kw: Any) -> Any:
        decisions = real(*args, **kw)
        body = {"operation": "restore", "host": "other", "pid": 7, "expires": 2e9}
        storage.put(f"{old}/.lease-1111111111111111.json", [json.dumps(body).encode()])
        return decisions

    monkeypatch.setattr(repository, "decide", decided_then_leased)
    report = prune(storage, Policy(keep_last=1), now=NOW)
    assert old not in report.deleted
    assert storage.exists(f"{old}/manifest.json")


def test_an_expired_lease_does_not_hold_a_backup_forever(storage: LocalStorage) -> None:
    for d in (0, 1):
        make_backup(storage, days_ago(NOW, d), services=["loki"])
    old = days_ago(NOW, 1)
    stale = {"operation": "backup", "host": "gone", "pid": 1, "expires": 0}
    storage.put(f"{old}/.lease-0000000000000000.json", [json.dumps(stale).encode()])
    assert prune(storage, Policy(keep_last=1), now=NOW).deleted == [old]


def test_a_backup_deleted_during_verify_is_said_to_have_disappeared(
    storage: LocalStorage, monkeypatch: pytest.MonkeyPatch
) -> None:
    backup_id = days_ago(NOW, 0)
    make_backup(storage, backup_id)
    import monctl.backup.verify as verifying

    real = verifying.verify_archive

    def pruned_meanwhile(*args: Any, **kw: Any) -> Any:
        storage.delete_prefix(f"{backup_id}/")  # another host's prune, mid-verify
        return real(*args, **kw)

    monkeypatch.setattr(verifying, "verify_archive", pruned_meanwhile)
    with pytest.raises(StorageError, match=r"disappeared .* while it was verified"):
        verify(storage, backup_id, hold_lease=False)


def test_verify_holds_a_lease_while_it_reads(storage: LocalStorage) -> None:
    backup_id = days_ago(NOW, 0)
    make_backup(storage, backup_id)
    seen: list[list[str]] = []
    import monctl.backup.verify as verifying

    real = verifying.verify_archive

    def watch(*args: Any, **kw: Any) -> Any:
        seen.append([k for k in storage.list(f"{backup_id}/") if lease.is_lease(k)])
        return real(*args, **kw)

    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(verifying, "verify_archive", watch)
        assert verify(storage, backup_id).ok
    assert seen and all(len(keys) == 1 for keys in seen)
    assert not [k for k in storage.list(f"{backup_id}/") if lease.is_lease(k)]


def test_latest_is_the_newest_backup_whose_manifest_reads(storage: LocalStorage) -> None:
    from monctl.backup.drill import newest_complete

    make_backup(storage, days_ago(NOW, 1), services=["loki"], manifest=False)  # running
    make_backup(storage, days_ago(NOW, 0), services=["loki"], manifest=False)
    storage.put(f"{days_ago(NOW, 0)}/manifest.json", [b"{not json"])  # invalid
    with pytest.raises(StorageError, match="no complete backup"):
        newest_complete(storage)
    make_backup(storage, days_ago(NOW, 3), services=["loki"])
    make_backup(storage, days_ago(NOW, 2), services=["loki"])
    assert newest_complete(storage) == days_ago(NOW, 2)
