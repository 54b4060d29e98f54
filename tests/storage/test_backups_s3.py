"""list / verify / prune over S3 (moto's server over HTTP), as `monctl backup list`,
`verify` and `prune --from s3://...` run them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from support.backup_factory import days_ago, make_backup

from monctl.adapters.storage.s3 import S3Storage
from monctl.backup.repository import list_backups, prune
from monctl.backup.retention import Policy
from monctl.backup.verify import verify
from monctl.errors import IntegrityError, StorageError

NOW = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)


def test_list_verify_prune_over_s3(
    make_s3: Callable[..., S3Storage],
    raw_s3: Any,
    bucket: str,
    uploads: Callable[[], list[dict[str, Any]]],
) -> None:
    storage = make_s3(prefix="nightly")
    for d in (0, 1, 2, 3):
        make_backup(storage, days_ago(NOW, d), compression="zstd")
    make_backup(storage, days_ago(NOW, 1.5), manifest=False)
    raw_s3.put_object(Bucket=bucket, Key="nightly/README", Body=b"not a backup")
    raw_s3.put_object(Bucket=bucket, Key="other/20261126T020000Z/x", Body=b"outside the prefix")
    # A leftover of a killed upload inside a backup that will be kept:
    leftover = f"nightly/{days_ago(NOW, 0)}/loki.tar.zst"
    raw_s3.create_multipart_upload(Bucket=bucket, Key=leftover)

    entries = list_backups(storage)
    assert [e.backup_id for e in entries] == [days_ago(NOW, d) for d in (0, 1, 1.5, 2, 3)]
    assert [e.complete for e in entries] == [True, True, False, True, True]

    report = verify(storage, days_ago(NOW, 1))
    assert report.ok and len(report.checks) == 2

    result = prune(storage, Policy(keep_last=2), now=NOW)
    assert result.deleted == [days_ago(NOW, d) for d in (1.5, 2, 3)]
    assert result.cleaned == [f"{days_ago(NOW, 0)}/loki.tar.zst"]
    assert uploads() == []
    keys = {o["Key"] for o in raw_s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert "nightly/README" in keys and "other/20261126T020000Z/x" in keys
    assert [e.backup_id for e in list_backups(storage)] == [days_ago(NOW, 0), days_ago(NOW, 1)]


def test_verify_over_s3_catches_damage_and_missing_manifest(
    make_s3: Callable[..., S3Storage], raw_s3: Any, bucket: str
) -> None:
    storage = make_s3()
    make_backup(storage, "20261126T020000Z", compression="gzip")
    key = "backups/20261126T020000Z/prometheus.tar.gz"
    data = bytearray(raw_s3.get_object(Bucket=bucket, Key=key)["Body"].read())
    data[len(data) // 3] ^= 0xFF
    raw_s3.put_object(Bucket=bucket, Key=key, Body=bytes(data))
    with pytest.raises(IntegrityError, match=r"prometheus: .*corrupt"):
        verify(storage, "20261126T020000Z")

    raw_s3.delete_object(Bucket=bucket, Key="backups/20261126T020000Z/manifest.json")
    with pytest.raises(IntegrityError, match="no manifest"):
        verify(storage, "20261126T020000Z")
    with pytest.raises(StorageError, match="no backup 20261201T020000Z"):
        verify(storage, "20261201T020000Z")


def test_console_folder_objects_are_not_monctls_and_prune_finishes(
    make_s3: Callable[..., S3Storage], raw_s3: Any, bucket: str
) -> None:
    """An empty "nightly/ID/" object (what S3 consoles create) once made prune delete a
    manifest and then fail on every later run, leaving an "incomplete" backup forever."""
    storage = make_s3(prefix="nightly")
    for d in (0, 1, 2):
        make_backup(storage, days_ago(NOW, d))
    old = days_ago(NOW, 2)
    raw_s3.put_object(Bucket=bucket, Key=f"nightly/{old}/", Body=b"")
    raw_s3.put_object(Bucket=bucket, Key="nightly/", Body=b"")  # the prefix's own "folder"

    assert [o.key for o in storage.list_objects(f"{old}/")] == [
        f"{old}/grafana.tar.zst",
        f"{old}/manifest.json",
        f"{old}/prometheus.tar.zst",
    ]
    assert [e.complete for e in list_backups(storage)] == [True, True, True]
    report = prune(storage, Policy(keep_last=2), now=NOW)
    assert report.errors == [] and report.deleted == [old]
    keys = {o["Key"] for o in raw_s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert not any(old in k for k in keys), keys  # the folder object went with it
    assert [e.backup_id for e in list_backups(storage)] == [days_ago(NOW, 0), days_ago(NOW, 1)]
    assert prune(storage, Policy(keep_last=2), now=NOW).errors == []  # and the next run is clean


def test_a_deletion_cut_short_leaves_the_backup_incomplete_and_the_next_prune_finishes(
    make_s3: Callable[..., S3Storage], monkeypatch: pytest.MonkeyPatch
) -> None:
    storage = make_s3(prefix="cut")
    for d in (0, 1, 2):
        make_backup(storage, days_ago(NOW, d))
    old = days_ago(NOW, 2)
    real = storage.delete
    calls: list[list[str]] = []

    def fail_after_the_manifest(keys: Any) -> None:
        keys = list(keys)
        calls.append(keys)
        if len(calls) == 2:  # the manifest went first; the archives fail
            raise StorageError("S3 failed to delete (injected)")
        real(keys)

    monkeypatch.setattr(storage, "delete", fail_after_the_manifest)
    first = prune(storage, Policy(keep_last=2), now=NOW)
    assert calls[0] == [f"{old}/manifest.json"] and first.errors
    state = {e.backup_id: e.state for e in list_backups(storage)}
    assert state[old] == "incomplete"  # clearly incomplete, never complete-but-broken
    monkeypatch.setattr(storage, "delete", real)
    second = prune(storage, Policy(keep_last=2), now=NOW)
    assert second.deleted == [old] and second.errors == []
