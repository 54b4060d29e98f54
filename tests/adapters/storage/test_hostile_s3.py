"""A bucket written by an attacker, round three (issue 17), on moto's S3 server: prune
deletes under ``retired/`` only ``retired/<backup id>.json``, and a lease or a retired
record with an absurd number is kept (the sweep waits) instead of stopping every prune."""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from support import repo

from monctl.adapters.storage.s3 import S3Storage
from monctl.backup.prune import prune
from monctl.repository.retention import Policy


def _two_backups(storage: S3Storage, tmp_path: Path) -> tuple[str, str]:
    proj, rt = repo.project(tmp_path / "stack"), repo.runtime()
    first = repo.back_up(proj, rt, storage, (repo.TSDB,)).backup_id
    time.sleep(1.1)  # ids are per second
    rt.files["tsdb"].update(repo.block(3))
    second = repo.back_up(proj, rt, storage, (repo.TSDB,)).backup_id
    return first, second


def _keys(raw_s3: Any, bucket: str, prefix: str) -> set[str]:
    listed = raw_s3.list_objects_v2(Bucket=bucket, Prefix=prefix).get("Contents", [])
    return {o["Key"] for o in listed}


def test_prune_over_s3_leaves_keys_under_retired_that_monctl_never_wrote(
    make_s3: Callable[..., S3Storage], raw_s3: Any, bucket: str, tmp_path: Path
) -> None:
    storage = make_s3(prefix="nightly")
    first, _ = _two_backups(storage, tmp_path)
    foreign = [
        "nightly/retired/notes.txt",
        "nightly/retired/README",
        f"nightly/retired/{first}.json.bak",
        "nightly/retired/sub/x.json",
        "nightly/retired/",  # a console's folder object
    ]
    for key in foreign:
        raw_s3.put_object(Bucket=bucket, Key=key, Body=b"the operator's")
    report = prune(storage, Policy(keep_last=1))
    assert report.deleted == [first] and report.errors == []
    assert _keys(raw_s3, bucket, "nightly/retired/") == set(foreign)


def test_a_lease_expiring_at_1e300_over_s3_is_kept_and_the_sweep_waits(
    make_s3: Callable[..., S3Storage], raw_s3: Any, bucket: str, tmp_path: Path
) -> None:
    storage = make_s3(prefix="leased")
    first, _ = _two_backups(storage, tmp_path)
    body = {"operation": "backup", "host": "h", "pid": 7, "started": 1, "expires": 1e300}
    raw_s3.put_object(
        Bucket=bucket, Key=f"leased/{first}/.lease-0123456789abcdef.json", Body=json.dumps(body)
    )
    before = _keys(raw_s3, bucket, "leased/objects/")
    report = prune(storage, Policy(keep_last=1))
    assert report.deleted == [] and report.errors == []
    [decision] = [d for d in report.decisions if d.backup_id == first]
    assert decision.keep and "unreadable lease" in decision.reason
    assert report.collected is not None and report.collected.refused is not None
    assert _keys(raw_s3, bucket, "leased/objects/") == before
