"""Backup ids and the manifest: format, round trip, and refusal of malformed ones."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path

import pytest
from support.backup_factory import make_backup

from monctl.adapters.storage.local import LocalStorage
from monctl.errors import IntegrityError, StorageError
from monctl.repository.manifest import (
    BACKUP_ID_RE,
    Manifest,
    is_backup_id,
    manifest_key,
    new_backup_id,
    parse_backup_id,
    read_manifest,
)


def test_backup_id_is_the_utc_start_time() -> None:
    assert new_backup_id(datetime(2026, 11, 26, 2, 0, 0, tzinfo=UTC)) == "20261126T020000Z"
    cet = timezone(timedelta(hours=1))
    assert new_backup_id(datetime(2026, 11, 26, 3, 0, 5, tzinfo=cet)) == "20261126T020005Z"
    now = new_backup_id()
    assert BACKUP_ID_RE.match(now)
    assert abs(parse_backup_id(now) - datetime.now(UTC)) < timedelta(seconds=5)
    assert parse_backup_id("20261126T020000Z") == datetime(2026, 11, 26, 2, tzinfo=UTC)


@pytest.mark.parametrize(
    "name",
    ["20261126T020000", "2026-11-26T020000Z", "20261399T020000Z", "x20261126T020000Z", "",
     "20261126T020000Z\n", "20261126T020000Zx", "20261126T240000Z", "20261126T020060Z",
     "\u0662\u0660\u0662\u06661126T020000Z"],  # a newline after, an hour or second too many,
)  # fmt: skip  # digits of another script
def test_other_names_are_not_backup_ids(name: str) -> None:
    assert not is_backup_id(name)
    with pytest.raises(ValueError):
        parse_backup_id(name)


def test_manifest_round_trip(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    written = make_backup(storage, "20261126T020000Z")
    read = read_manifest(storage, "20261126T020000Z")
    assert read == written
    assert Manifest.from_json(written.dumps()) == written
    assert read.total_size == sum(e.size for e in read.services.values()) > 0
    assert read.key_of("grafana") == "20261126T020000Z/grafana.tar.zst"


def _valid() -> dict:  # type: ignore[type-arg]
    return {
        "format_version": 1,
        "backup_id": "20261126T020000Z",
        "monctl_version": "0.1.0",
        "started_at": "2026-11-26T02:00:00+00:00",
        "finished_at": "2026-11-26T02:01:00+00:00",
        "compression": "gzip",
        "services": {
            "loki": {
                "archive": "loki.tar.gz",
                "image": "grafana/loki:3",
                "version": None,
                "size": 10,
                "raw_size": 20,
                "sha256": "a" * 64,
                "strategy": "flush-pause-copy",
                "data_root": "loki",
            }
        },
    }


@pytest.mark.parametrize(
    "damage",
    [
        lambda m: m.pop("services"),
        lambda m: m.update(compression="lzma"),
        lambda m: m.update(backup_id="yesterday"),
        lambda m: m.update(started_at="not a time"),
        lambda m: m.update(started_at="2026-11-26T02:00:00"),  # no time zone
        lambda m: m["services"]["loki"].update(sha256="abc"),
        lambda m: m["services"]["loki"].update(size=-1),
        lambda m: m["services"]["loki"].update(size="10"),
        lambda m: m["services"]["loki"].update(archive="../../etc/passwd"),
        lambda m: m["services"].update({"Bad Name": m["services"]["loki"]}),
        lambda m: m.update(format_version="1"),
        # What verify passed before but restore could not use:
        lambda m: m.update(format_version=True),  # a bool is no version
        lambda m: m.update(services={}),  # nothing to restore
        lambda m: m["services"]["loki"].update(data_root=""),
        lambda m: m["services"]["loki"].update(data_root="/"),
        lambda m: m["services"]["loki"].update(data_root="."),
        lambda m: m["services"]["loki"].update(data_root=".."),
        lambda m: m["services"]["loki"].update(data_root="a/b"),
        lambda m: m["services"]["loki"].pop("data_root"),
        lambda m: m["services"]["loki"].update(image="x" * 5000),
        lambda m: m["services"]["loki"].update(facts=["not", "an", "object"]),
    ],
)
def test_malformed_manifests_are_integrity_errors(damage) -> None:  # type: ignore[no-untyped-def]
    assert Manifest.from_json(json.dumps(_valid())).services["loki"].size == 10
    m = _valid()
    damage(m)
    with pytest.raises(IntegrityError, match="manifest"):
        Manifest.from_json(json.dumps(m))


def test_facts_for_the_drill_round_trip_and_are_optional() -> None:
    m = _valid()
    m["services"]["loki"]["facts"] = {"dashboards": ["a", "b"], "dashboard_count": 2}
    parsed = Manifest.from_json(json.dumps(m))
    assert parsed.services["loki"].facts == {"dashboards": ["a", "b"], "dashboard_count": 2}
    assert Manifest.from_json(parsed.dumps()) == parsed
    plain = Manifest.from_json(json.dumps(_valid()))  # a manifest from before the drill
    assert plain.services["loki"].facts == {}
    assert "facts" not in plain.to_json()["services"]["loki"]


def test_not_json_and_newer_format() -> None:
    with pytest.raises(IntegrityError, match="not valid JSON"):
        Manifest.from_json(b"{truncated")
    newer = _valid() | {"format_version": 4}
    with pytest.raises(IntegrityError, match="newer") as err:
        Manifest.from_json(json.dumps(newer))
    assert "upgrade" in (err.value.hint or "")


def test_read_manifest_says_missing_backup_or_missing_manifest(tmp_path: Path) -> None:
    storage = LocalStorage(tmp_path)
    make_backup(storage, "20261126T020000Z", manifest=False)
    with pytest.raises(IntegrityError, match="no manifest"):
        read_manifest(storage, "20261126T020000Z")
    with pytest.raises(StorageError, match="no backup 20261127T020000Z"):
        read_manifest(storage, "20261127T020000Z")
    # A manifest copied from another backup is not accepted for this one.
    make_backup(storage, "20261128T020000Z")
    with storage.open(manifest_key("20261128T020000Z")) as f:
        storage.put(manifest_key("20261126T020000Z"), [f.read()])
    with pytest.raises(IntegrityError, match="belongs to backup 20261128T020000Z"):
        read_manifest(storage, "20261126T020000Z")


@pytest.mark.parametrize("depth", [2_000, 100_000])
def test_deeply_nested_json_is_an_integrity_error_not_a_crash(depth: int) -> None:
    with pytest.raises(IntegrityError, match="manifest"):
        Manifest.from_json("[" * depth + "]" * depth)
    with pytest.raises(IntegrityError, match="manifest"):
        Manifest.from_json('{"a":' * depth + "1" + "}" * depth)
