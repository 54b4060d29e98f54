"""Prune as retention plus garbage collection: the objects no kept backup needs go, never
one that a running backup may still use (its own new objects, or those of a manifest it
may have read before a prune deleted it)."""

from __future__ import annotations

import json
import os
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import repo
from support.fake_runtime import FakeRuntime

from monctl.adapters.storage.local import LocalStorage
from monctl.backup.prune import prune
from monctl.project import Project
from monctl.repository import gc
from monctl.repository.manifest import new_backup_id, read_manifest
from monctl.repository.objects import object_key
from monctl.repository.retention import Policy

HOUR = 3600.0


@pytest.fixture
def setup(tmp_path: Path) -> tuple[Project, FakeRuntime, LocalStorage]:
    return repo.project(tmp_path / "stack"), repo.runtime(), LocalStorage(tmp_path / "repo")


def objects_of(storage: LocalStorage, backup_id: str) -> set[str]:
    return gc.referenced(read_manifest(storage, backup_id))


def age(root: Path, seconds: float) -> None:
    """Make every object look written ``seconds`` ago."""
    then = time.time() - seconds
    for path in (root / "objects").rglob("*"):
        if path.is_file():
            os.utime(path, (then, then))


def present(root: Path, ids: set[str]) -> set[str]:
    return {i for i in ids if (root / object_key(i)).is_file()}


def two_backups(
    setup: tuple[Project, FakeRuntime, LocalStorage],
) -> tuple[str, str]:
    """#1 holds B1 and B2; #2 holds B2 and B3 (B1 was compacted away)."""
    proj, rt, storage = setup
    first = repo.back_up(proj, rt, storage, (repo.TSDB,)).backup_id
    time.sleep(1.1)  # ids are per second
    for name in [n for n in rt.files["tsdb"] if n.startswith("B1/")]:
        del rt.files["tsdb"][name]
    rt.files["tsdb"].update(repo.block(3))
    second = repo.back_up(proj, rt, storage, (repo.TSDB,)).backup_id
    return first, second


def lease(storage: LocalStorage, started: float, operation: str = "backup") -> str:
    """A backup in progress (on another host): its id and lease, nothing else yet."""
    backup_id = new_backup_id()
    body = {"operation": operation, "host": "elsewhere", "pid": 7, "started": started,
            "expires": time.time() + 24 * HOUR}  # fmt: skip
    storage.put(f"{backup_id}/.lease-0123456789abcdef.json", [json.dumps(body).encode()])
    return backup_id


def test_prune_deletes_what_only_the_pruned_backup_needed(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    first, second = two_backups(setup)
    storage = setup[2]
    old, new = objects_of(storage, first), objects_of(storage, second)
    shared, unique = old & new, old - new
    assert shared and unique and new - old
    age(tmp_path / "repo", 2 * HOUR)

    dry = prune(storage, Policy(keep_last=1), dry_run=True)
    assert dry.collected is not None and dry.collected.swept == len(unique)
    assert present(tmp_path / "repo", old | new) == old | new, "a dry run deleted something"

    report = prune(storage, Policy(keep_last=1))
    assert report.deleted == [first]
    assert report.collected is not None and report.collected.swept == len(unique)
    assert present(tmp_path / "repo", shared | new) == shared | new
    assert present(tmp_path / "repo", unique) == set()
    assert storage.list(gc.RETIRED) == []  # nobody was running: the record went too
    assert report.freed > report.collected.freed > 0


def test_objects_a_running_backup_may_use_are_spared(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    first, second = two_backups(setup)
    storage = setup[2]
    root = tmp_path / "repo"
    unique = objects_of(storage, first) - objects_of(storage, second)
    age(root, 3 * HOUR)
    # A backup elsewhere started an hour ago: it may have read the first backup's manifest,
    # and written objects of its own that no manifest references yet.
    running = lease(storage, time.time() - HOUR)
    own = root / "objects" / "ee" / ("ee" * 32)
    own.parent.mkdir(parents=True, exist_ok=True)
    own.write_bytes(b"written by the running backup")
    os.utime(own, (time.time() - 0.5 * HOUR,) * 2)
    stale = root / "objects" / "ff" / ("ff" * 32)
    stale.parent.mkdir(parents=True, exist_ok=True)
    stale.write_bytes(b"left by a backup that failed long ago")
    os.utime(stale, (time.time() - 2 * HOUR,) * 2)

    report = prune(storage, Policy(keep_last=1))
    assert first in report.deleted and running not in report.deleted
    assert report.collected is not None and report.collected.retired_kept == [first]
    assert present(root, unique) == unique, "objects the running backup may reuse were swept"
    assert own.is_file(), "an object of the running backup was swept"
    assert not stale.exists(), "garbage older than every running backup stays forever"

    storage.delete_prefix(f"{running}/")  # it finished (or died and its lease went)
    again = prune(storage, Policy(keep_last=1))
    assert again.collected is not None and again.collected.retired_kept == []
    assert present(root, unique) == set()
    assert storage.list(gc.RETIRED) == []


def test_nothing_is_swept_while_a_manifest_cannot_be_read(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    first, _ = two_backups(setup)
    storage = setup[2]
    age(tmp_path / "repo", 2 * HOUR)
    # Newer than the newest complete backup: retention keeps it, and so it is read.
    soon = new_backup_id(datetime.now(UTC) + timedelta(minutes=5))
    storage.put(f"{soon}/manifest.json", [b'{"format_version": 2, "services": '])
    before = set(storage.list("objects/"))
    report = prune(storage, Policy(keep_last=1))
    assert first in report.deleted
    assert report.collected is not None and report.collected.refused
    assert "unreadable manifest" in report.collected.refused
    assert set(storage.list("objects/")) == before


def test_young_garbage_waits_for_the_grace_period(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    """Without any lease, an object written minutes ago may belong to a backup that has
    just begun on another host: it waits."""
    storage = setup[2]
    two_backups(setup)
    orphan = tmp_path / "repo" / "objects" / "aa" / ("aa" * 32)
    orphan.parent.mkdir(parents=True, exist_ok=True)
    orphan.write_bytes(b"x")
    assert gc.collect(storage).swept == 0 and orphan.is_file()
    assert gc.collect(storage, now=time.time() + HOUR).swept == 1 and not orphan.exists()


def test_a_backup_of_a_newer_format_is_never_pruned_nor_its_objects_swept(
    setup: tuple[Project, FakeRuntime, LocalStorage], tmp_path: Path
) -> None:
    """A manifest this monctl cannot read because a newer monctl wrote it (a downgrade, or
    two versions sharing a repository) is no broken backup: prune keeps it past the grace
    period that would doom an incomplete one, and sweeps no object it may reference."""
    first, _ = two_backups(setup)
    storage = setup[2]
    root = tmp_path / "repo"
    needed = objects_of(storage, first)  # what the newer-format backup below references
    doc = json.loads((root / first / "manifest.json").read_text())
    doc["format_version"] = 99
    newer = new_backup_id(datetime.now(UTC) - timedelta(days=3))
    (root / newer).mkdir()
    (root / newer / "manifest.json").write_text(json.dumps({**doc, "backup_id": newer}))
    (root / first / "manifest.json").unlink()  # first's objects: referenced by no readable one
    age(root, 2 * HOUR)

    report = prune(storage, Policy(keep_last=1))
    decision = {d.backup_id: d for d in report.decisions}[newer]
    assert decision.keep and "newer monctl" in decision.reason
    assert newer not in report.deleted and (root / newer / "manifest.json").exists()
    assert report.collected is None or report.collected.swept == 0
    assert present(root, needed) == needed
