"""A destination written by an attacker, round three (issue 17), on real local storage and
through the real CLI (``python -m monctl``): prune deletes only what monctl wrote and never
through a link, rule sets that keep nothing are refused, the garbage collection tells an
incomplete backup from an unreadable one by type, numbers and duplicate keys of leases,
records and manifests are bounded, and what verify accepts restore can write."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from support import repo
from support.fake_runtime import FakeRuntime

from monctl.adapters.storage.local import LocalStorage
from monctl.backup.listing import list_backups
from monctl.backup.prune import prune
from monctl.errors import ExitCode, StorageError
from monctl.project import Project
from monctl.repository import gc
from monctl.repository import locking as lease
from monctl.repository.manifest import manifest_key, new_backup_id, read_manifest
from monctl.repository.objects import object_key
from monctl.repository.retention import Policy

HOUR = 3600.0


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Project, FakeRuntime, LocalStorage]:
    return repo.project(tmp_path / "stack"), repo.runtime(), LocalStorage(tmp_path / "repo")


def cli(
    proj: Project, *args: str, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MONCTL_")}
    full.update(NO_COLOR="1", COLUMNS="300", **(env or {}))
    return subprocess.run(
        [sys.executable, "-m", "monctl", "--project-dir", str(proj.root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=full,
        check=False,
    )


def two_backups(setup: tuple[Project, FakeRuntime, LocalStorage]) -> tuple[str, str]:
    """#1 holds B1 and B2; #2 holds B2 and B3: B1's objects are #1's alone."""
    proj, rt, storage = setup
    first = repo.back_up(proj, rt, storage, (repo.TSDB,)).backup_id
    time.sleep(1.1)  # ids are per second
    for name in [n for n in rt.files["tsdb"] if n.startswith("B1/")]:
        del rt.files["tsdb"][name]
    rt.files["tsdb"].update(repo.block(3))
    second = repo.back_up(proj, rt, storage, (repo.TSDB,)).backup_id
    return first, second


def age(root: Path, seconds: float) -> None:
    then = time.time() - seconds
    for path in (root / "objects").rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def unique_to_first(storage: LocalStorage, first: str, second: str) -> set[str]:
    old = gc.referenced(read_manifest(storage, first))
    return old - gc.referenced(read_manifest(storage, second))


def present(root: Path, ids: set[str]) -> set[str]:
    return {i for i in ids if (root / object_key(i)).is_file()}


# -- 1. prune deletes under retired/ only retired/<backup id>.json -----------------------


def test_prune_leaves_files_under_retired_that_monctl_never_wrote(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    first, _ = two_backups(setup)
    root = tmp_path / "repo"
    foreign = ["notes.txt", "README", f"{first}.json.bak", "sub/x.json", "2026.json"]
    for name in foreign:
        (root / "retired" / name).parent.mkdir(parents=True, exist_ok=True)
        (root / "retired" / name).write_text("the operator's\n")
    result = cli(setup[0], "backup", "prune", "--keep-last", "1", "--from", str(root), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["deleted"] == [first]
    for name in foreign:
        assert (root / "retired" / name).read_text() == "the operator's\n", name
    assert not (root / "retired" / f"{first}.json").exists()  # monctl's own record went


# -- 2. no walk, read or delete leaves the destination through a link ---------------------


def test_prune_never_deletes_through_a_symlinked_retired(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    two_backups(setup)
    root = tmp_path / "repo"
    outside = tmp_path / "outside"
    outside.mkdir()
    precious = [outside / "important.txt", outside / "20200101T000000Z.json"]
    for path in precious:
        path.write_text("not monctl's\n")
    (root / "retired").symlink_to(outside, target_is_directory=True)
    result = cli(setup[0], "backup", "prune", "--keep-last", "1", "--from", str(root), "--json")
    assert result.returncode == ExitCode.STORAGE, result.stderr
    doc = json.loads(result.stdout)
    assert any(e.endswith("is a symbolic link: monctl never follows a link inside the destination")
               and "retired in" in e for e in doc["errors"]), doc["errors"]  # fmt: skip
    assert all(p.read_text() == "not monctl's\n" for p in precious)
    assert sorted(p.name for p in outside.iterdir()) == sorted(p.name for p in precious)


def test_prune_never_sweeps_through_a_symlinked_objects(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    first, second = two_backups(setup)
    root = tmp_path / "repo"
    unique = unique_to_first(setup[2], first, second)
    age(root, 2 * HOUR)
    outside = tmp_path / "elsewhere-objects"
    (root / "objects").rename(outside)
    (root / "objects").symlink_to(outside, target_is_directory=True)
    before = sorted(p.relative_to(outside) for p in outside.rglob("*"))
    result = cli(setup[0], "backup", "prune", "--keep-last", "1", "--from", str(root), "--json")
    assert result.returncode == ExitCode.STORAGE, result.stderr
    assert "objects in" in result.stdout and "is a symbolic link" in result.stdout
    assert sorted(p.relative_to(outside) for p in outside.rglob("*")) == before
    assert {i for i in unique if (outside / object_key(i).split("/", 1)[1]).is_file()} == unique


def test_a_symlinked_backup_folder_is_neither_read_nor_listed_nor_deleted(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    first, second = two_backups(setup)
    root = tmp_path / "repo"
    elsewhere = tmp_path / "elsewhere-backup"
    (root / first).rename(elsewhere)
    (root / first).symlink_to(elsewhere, target_is_directory=True)
    storage = setup[2]
    for read in (
        lambda: storage.list_objects(f"{first}/"),
        lambda: storage.exists(manifest_key(first)),
        lambda: storage.open(manifest_key(first)).__enter__(),
        lambda: storage.delete_prefix(f"{first}/"),
        lambda: storage.delete([manifest_key(first)]),
        lambda: storage.put(f"{first}/x", [b"x"]),
    ):
        with pytest.raises(StorageError, match="is a symbolic link"):
            read()
    assert [e.backup_id for e in list_backups(storage)] == [second]
    result = cli(setup[0], "backup", "verify", first, "--from", str(root))
    assert result.returncode == ExitCode.STORAGE and "symbolic link" in result.stderr
    assert (elsewhere / "manifest.json").is_file()


def test_an_object_that_is_a_link_is_not_read(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    first, _ = two_backups(setup)
    root = tmp_path / "repo"
    secret = tmp_path / "secret"
    secret.write_text("outside\n")
    (root / first / "manifest.json").unlink()
    (root / first / "manifest.json").symlink_to(secret)
    with pytest.raises(StorageError), setup[2].open(manifest_key(first)) as f:
        f.read()


def test_the_destination_itself_may_be_a_link(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    first, second = two_backups(setup)
    link = tmp_path / "backups-link"
    link.symlink_to(tmp_path / "repo", target_is_directory=True)
    result = cli(setup[0], "backup", "prune", "--keep-last", "1", "--from", str(link), "--json")
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout)["deleted"] == [first]
    assert [e.backup_id for e in list_backups(LocalStorage(link))] == [second]


# -- 3. rules that are all 0 are no policy -------------------------------------------------


@pytest.mark.parametrize(
    "rules",
    [
        ["--keep-daily", "0"],
        ["--keep-weekly", "0"],
        ["--keep-monthly", "0"],
        ["--keep-yearly", "0"],
        ["--keep-last", "0"],
        ["--keep-days", "0"],
        ["--keep-last", "0", "--keep-daily", "0"],
    ],
)
def test_a_rule_set_of_zeros_is_refused_and_nothing_deleted(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path, rules: list[str]
) -> None:
    first, second = two_backups(setup)
    root = tmp_path / "repo"
    result = cli(setup[0], "backup", "prune", *rules, "--from", str(root), "--json")
    assert result.returncode == ExitCode.USAGE, result.stdout + result.stderr
    assert "keeps nothing" in result.stdout + result.stderr
    assert [e.backup_id for e in list_backups(setup[2])] == [second, first]


def test_backup_with_keep_rules_of_zeros_is_refused_before_it_starts(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    dest = tmp_path / "fresh"
    result = cli(setup[0], "backup", "--to", str(dest), "--keep-daily", "0", "--keep-last", "0")
    assert result.returncode == ExitCode.USAGE, result.stderr
    assert "keeps nothing" in result.stderr
    assert not dest.exists()


def test_a_zero_rule_beside_a_real_one_is_a_policy() -> None:
    Policy(keep_daily=0, keep_last=2).check()


# -- 4. incomplete is a type, not the words of a message -----------------------------------


def test_a_manifest_that_says_no_manifest_stops_the_sweep(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    first, second = two_backups(setup)
    storage, root = setup[2], tmp_path / "repo"
    unique = unique_to_first(storage, first, second)
    age(root, 2 * HOUR)
    # A newer backup whose manifest is unreadable, with "no manifest" in its error.
    poisoned = new_backup_id(datetime.now(UTC) + timedelta(seconds=5))
    doc = json.loads((root / second / "manifest.json").read_bytes())
    doc["backup_id"] = poisoned
    doc["services"]["no manifest"] = doc["services"]["tsdb"]
    (root / poisoned).mkdir()
    (root / poisoned / "manifest.json").write_text(json.dumps(doc))

    [entry] = [e for e in list_backups(storage) if e.backup_id == poisoned]
    assert entry.state == "invalid" and not entry.incomplete
    report = prune(storage, Policy(keep_last=1))
    assert report.deleted == [first]
    assert report.collected is not None and report.collected.refused is not None
    assert "unreadable manifest" in report.collected.refused
    assert present(root, unique) == unique, "objects swept while a manifest was unreadable"


# -- 5. numbers read from the destination are bounded --------------------------------------


def _lease(root: Path, backup_id: str, body: str) -> None:
    (root / backup_id / ".lease-0123456789abcdef.json").write_text(body)


LEASES = {
    "1e300": '{"operation": "backup", "host": "h", "pid": 7, "started": 1, "expires": 1e300}',
    "1e400": '{"operation": "backup", "host": "h", "pid": 7, "started": 1, "expires": 1e400}',
    "Infinity": '{"operation": "backup", "host": "h", "pid": 7, "started": 1, "expires": Infinity}',
    "NaN": '{"operation": "backup", "host": "h", "pid": 7, "started": 1, "expires": NaN}',
    "pid": '{"operation": "backup", "host": "h", "pid": 1e400, "started": 1, "expires": 2e9}',
    "negative": '{"operation": "backup", "host": "h", "pid": 7, "started": -1e300, "expires": 2e9}',
    "duplicate": '{"operation": "backup", "host": "h", "pid": 7, "started": 1,'
    ' "expires": 1, "expires": 4e9}',
}


@pytest.mark.parametrize("body", LEASES.values(), ids=LEASES.keys())
def test_a_lease_with_an_absurd_number_is_kept_and_the_sweep_waits(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path, body: str
) -> None:
    first, second = two_backups(setup)
    root = tmp_path / "repo"
    unique = unique_to_first(setup[2], first, second)
    age(root, 2 * HOUR)
    _lease(root, first, body)
    result = cli(setup[0], "backup", "prune", "--keep-last", "1", "--from", str(root), "--json")
    assert result.returncode == 0, result.stderr
    assert "Traceback" not in result.stderr
    doc = json.loads(result.stdout)
    assert doc["deleted"] == []
    [decision] = [d for d in doc["decisions"] if d["id"] == first]
    assert decision["keep"] and "unreadable lease" in decision["reason"]
    assert doc["objects"]["refused"] and doc["objects"]["swept_objects"] == 0
    assert present(root, unique) == unique


def test_a_retired_record_of_nan_or_duplicate_keys_keeps_its_objects_while_a_backup_runs(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    first, second = two_backups(setup)
    storage, root = setup[2], tmp_path / "repo"
    unique = unique_to_first(storage, first, second)
    assert prune(storage, Policy(keep_last=1), dry_run=True).collected is not None
    age(root, 3 * HOUR)
    gc.retire(storage, read_manifest(storage, first), time.time())
    storage.delete_prefix(f"{first}/")
    record = root / "retired" / f"{first}.json"
    ids = json.loads(record.read_text())["objects"]
    # A backup elsewhere started an hour ago and may rely on the retired manifest.
    running = new_backup_id()
    body = {"operation": "backup", "host": "elsewhere", "pid": 7,
            "started": time.time() - HOUR, "expires": time.time() + HOUR}  # fmt: skip
    storage.put(f"{running}/.lease-0123456789abcdef.json", [json.dumps(body).encode()])
    for text in (
        f'{{"backup_id": "{first}", "deleted_at": NaN, "objects": {json.dumps(ids)}}}',
        f'{{"backup_id": "{first}", "deleted_at": 0, "deleted_at": {time.time()},'
        f' "objects": {json.dumps(ids)}}}',
    ):
        record.write_text(text)
        collected = gc.collect(storage)
        assert collected.retired_kept == [first] and collected.refused is not None
        assert present(root, unique) == unique, text[:60]
        assert record.exists()


def test_lease_numbers_are_bounded() -> None:
    assert lease._parse(LEASES["1e300"].encode()) is None
    ok = '{"operation": "backup", "host": "h", "pid": 7, "started": 1, "expires": 2e9}'
    parsed = lease._parse(ok.encode())
    assert parsed is not None and parsed.expires == 2e9
    parsed.describe()


# -- 8. and 9. what verify accepts restore can write; duplicate keys refused -----------------


def _rewrite(root: Path, backup_id: str, change: Any) -> None:
    path = root / backup_id / "manifest.json"
    doc = json.loads(path.read_bytes())
    change(doc)
    path.write_text(json.dumps(doc))


def test_a_path_with_a_lone_surrogate_is_refused_by_verify(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    proj, rt, storage = setup
    backup_id = repo.back_up(proj, rt, storage, (repo.LEDGER,)).backup_id
    root = tmp_path / "repo"
    # A name that is not UTF-8 on disk (the byte 0xff, a surrogate escape) is fine:
    _rewrite(root, backup_id, _renamed("ledger.db", "ledger-\udcff.db"))
    result = cli(proj, "backup", "verify", backup_id, "--from", str(root), "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    # a lone surrogate no file name can hold is not:
    _rewrite(root, backup_id, _renamed("ledger-\udcff.db", "plugins-\ud800.txt"))
    assert '"plugins-\\ud800.txt"' in (root / backup_id / "manifest.json").read_text()
    result = cli(proj, "backup", "verify", backup_id, "--from", str(root), "--json")
    assert result.returncode == ExitCode.INTEGRITY, result.stdout + result.stderr
    assert "holds a character no file name can" in result.stdout


def _renamed(old: str, new: str) -> Any:
    def change(doc: dict[str, Any]) -> None:
        [f] = [f for f in doc["services"]["ledger"]["files"] if f["path"] == old]
        f["path"] = new

    return change


def test_a_manifest_with_a_duplicate_key_is_refused(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    proj, rt, storage = setup
    backup_id = repo.back_up(proj, rt, storage, (repo.LEDGER,)).backup_id
    path = tmp_path / "repo" / backup_id / "manifest.json"
    text = path.read_text()
    assert cli(proj, "backup", "verify", backup_id, "--from", str(path.parents[1])).returncode == 0
    path.write_text(
        text.replace('"path": "ledger.db"', '"path": "../../etc/x", "path": "ledger.db"')
    )
    result = cli(proj, "backup", "verify", backup_id, "--from", str(path.parents[1]), "--json")
    assert result.returncode == ExitCode.INTEGRITY, result.stdout + result.stderr
    assert "appears twice" in result.stdout
    listed = json.loads(
        cli(proj, "backup", "list", "--from", str(path.parents[1]), "--json").stdout
    )
    assert [b["state"] for b in listed["backups"]] == ["invalid"]


def test_a_format_1_size_beyond_2_63_makes_the_backup_invalid(tmp_path: Path) -> None:
    from support.backup_factory import make_backup

    storage = LocalStorage(tmp_path / "repo")
    make_backup(storage, "20261126T020000Z")
    _rewrite(
        tmp_path / "repo",
        "20261126T020000Z",
        lambda doc: doc["services"]["grafana"].update(size=2**70),
    )
    [entry] = list_backups(storage)
    assert entry.state == "invalid" and "2^63" in (entry.problem or "")
