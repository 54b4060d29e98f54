"""list / verify / prune over S3 (moto's server over HTTP), as `monctl backup list`,
`verify` and `prune --from s3://...` run them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

import pytest
from support.backup_factory import days_ago, make_backup

from monctl.adapters.storage.s3 import S3Storage
from monctl.backup.listing import list_backups
from monctl.backup.prune import prune
from monctl.backup.verify import verify
from monctl.errors import IntegrityError, StorageError
from monctl.repository.retention import Policy

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


def test_incremental_backups_over_s3_upload_only_what_is_new(
    make_s3: Callable[..., S3Storage],
    raw_s3: Any,
    bucket: str,
    uploads: Callable[[], list[dict[str, Any]]],
    tmp_path: Any,
) -> None:
    """Format 2 on S3: the second backup uploads nothing, the third only the new unit;
    prune's garbage collection removes what only the pruned backup needed."""
    import time

    from support import repo

    from monctl.repository import gc
    from monctl.repository.manifest import read_manifest

    storage = make_s3(prefix="incr")
    proj, rt = repo.project(tmp_path / "stack"), repo.runtime()

    def objects() -> dict[str, Any]:
        listed = raw_s3.list_objects_v2(Bucket=bucket, Prefix="incr/objects/")
        return {o["Key"]: o["LastModified"] for o in listed.get("Contents", [])}

    first = repo.back_up(proj, rt, storage)
    after_first = objects()
    time.sleep(1.1)
    second = repo.back_up(proj, rt, storage)
    assert objects() == after_first, "an object was uploaded again"
    assert sum(s.stats.written_bytes for s in second.services) == 0
    for name in [n for n in rt.files["tsdb"] if n.startswith("B1/")]:
        del rt.files["tsdb"][name]
    rt.files["tsdb"].update(repo.block(3))
    third = repo.back_up(proj, rt, storage, (repo.TSDB,))
    new = set(objects()) - set(after_first)
    assert len(new) == 3 and repo.stats(third, "tsdb").new_objects == 3
    assert verify(storage, third.backup_id).ok

    unique = (
        gc.referenced(read_manifest(storage, first.backup_id))
        - gc.referenced(read_manifest(storage, third.backup_id))
        - gc.referenced(read_manifest(storage, second.backup_id))
    )
    assert unique == set()  # the first two backups hold the same objects
    report = prune(storage, Policy(keep_last=1), now=datetime.now(UTC))
    assert set(report.deleted) >= {first.backup_id, second.backup_id}
    # Objects written minutes ago wait out the grace; an hour later those only the pruned
    # backups needed go: B1's three, and the ledger's three (the third backup left it out).
    assert gc.collect(storage).swept == 0
    swept = gc.collect(storage, now=time.time() + 3600)
    assert swept.swept == 6 and swept.refused is None
    assert verify(storage, third.backup_id).ok
    assert uploads() == []


def test_an_encrypted_backup_over_s3_uploads_only_age_files_and_restores_with_the_key(
    make_s3: Callable[..., S3Storage],
    raw_s3: Any,
    bucket: str,
    tmp_path: Any,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """No plaintext reaches the bucket (nor, on the way, a temporary file: the spool
    receives ciphertext); the key gives everything back, its absence nothing."""
    import pyrage
    from support import repo

    from monctl import services
    from monctl.adapters import age
    from monctl.backup import restore

    monkeypatch.setattr(services, "SERVICES", [*services.SERVICES, repo.TSDB, repo.LEDGER])
    ident = pyrage.x25519.Identity.generate()
    (tmp_path / "key.txt").write_text(f"{ident}\n")
    storage = make_s3(prefix="sealed")
    proj, rt = repo.project(tmp_path / "stack"), repo.runtime()
    expected = {name: dict(files) for name, files in rt.files.items()}
    report = repo.back_up(proj, rt, storage, recipients=(str(ident.to_public()),))

    listed = raw_s3.list_objects_v2(Bucket=bucket, Prefix="sealed/objects/")["Contents"]
    assert len(listed) >= 6
    for obj in listed:
        body = raw_s3.get_object(Bucket=bucket, Key=obj["Key"])["Body"].read()
        assert body.startswith(b"age-encryption.org/v1\n"), obj["Key"]
        assert b"row\nrow\nrow\n" not in body
    assert verify(storage, report.backup_id).ok  # without the key: the stored bytes

    def run(identities: age.Identities | None) -> Any:
        return restore.run(
            proj, rt, storage, report.backup_id, (), confirm=lambda q: True,
            wait_ready=lambda s: "running, ready", identities=identities,
        )  # fmt: skip

    rt.files = {"tsdb": {}, "ledger": {}}
    with pytest.raises(age.MissingIdentity):
        run(None)
    assert rt.files == {"tsdb": {}, "ledger": {}}
    done = run(age.load_identities([tmp_path / "key.txt"]))
    assert done.exit_code == 0, done.to_json()
    assert rt.files == expected
