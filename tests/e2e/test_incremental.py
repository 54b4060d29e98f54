"""Incremental, deduplicated backups on the real engine with the real Prometheus (Debian's
binary in the locally built image): what a second backup reuses, what prune keeps and
deletes, that a restore gives back exactly what Prometheus answered, how a missing or
damaged object is named and repaired, and that the flat backups of earlier versions
still list, verify and restore.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import pytest
from support.data import (
    explain,
    in_volume,
    inspect,
    load_blocks,
    prom_query,
    sh,
    wait_ready,
    wipe,
)
from support.engine import Stack
from support.flat import flat_backup

from monctl.adapters.storage.local import LocalStorage
from monctl.repository import gc
from monctl.repository.manifest import read_manifest
from monctl.repository.objects import object_key

pytestmark = pytest.mark.docker


def _backup(stack: Stack, dest: Path, *args: str) -> dict:  # type: ignore[type-arg]
    result = stack.monctl("backup", "--json", "--to", str(dest), *args, timeout=600)
    assert result.code == 0, explain(result)
    return json.loads(result.out)  # type: ignore[no-any-return]


def _backup_env(stack: Stack, dest: Path, env: dict[str, str], *args: str) -> dict:  # type: ignore[type-arg]
    result = stack.monctl("backup", "--json", "--to", str(dest), *args, env=env, timeout=600)
    assert result.code == 0, explain(result)
    return json.loads(result.out)  # type: ignore[no-any-return]


def _blocks(stack: Stack) -> str:
    """Prometheus' blocks (names, owners, hashes): what a restore would replace. The WAL
    and the head change with every scrape, so they are no measure of "untouched"."""
    result = in_volume(
        stack, "prometheus",
        "cd /target && find . -path ./wal -prune -o -path ./chunks_head -prune -o -path "
        "./snapshots -prune -o -type f -exec sha256sum {} + | sort",
    )  # fmt: skip
    assert result.code == 0, result.err
    return result.out


def _service(doc: dict, name: str) -> dict:  # type: ignore[type-arg]
    return next(s for s in doc["services"] if s["service"] == name)  # type: ignore[no-any-return]


def test_back_up_add_data_back_up_prune_the_first_restore_the_second(
    data_stack: Stack, tmp_path: Path
) -> None:
    stack = data_stack
    dest = tmp_path / "repo"
    storage = LocalStorage(dest)
    now = int(time.time())
    (tmp_path / "a").mkdir()
    load_blocks(stack, tmp_path / "a", now - 16 * 3600, now - 10 * 3600)  # several blocks
    first = _backup(stack, dest, "--service", "prometheus")
    old_blocks = sorted(
        {e.top for e in read_manifest(storage, first["id"]).files("prometheus").files}
    )
    assert len(old_blocks) >= 2, old_blocks

    # As compaction would: one block goes (merged elsewhere), a new one arrives.
    assert stack.compose("stop", "prometheus").code == 0
    assert in_volume(stack, "prometheus", f"rm -rf /target/{old_blocks[0]}").code == 0
    assert stack.compose("start", "prometheus").code == 0
    wait_ready(stack, "prometheus")
    (tmp_path / "b").mkdir()
    load_blocks(stack, tmp_path / "b", now - 8 * 3600, now - 6 * 3600)
    times = [now - 11 * 3600, now - 10 * 3600 - 300, now - 7 * 3600, now - 6 * 3600 - 300]
    expected = {t: prom_query(stack, "monctl_test_known", t) for t in times}
    assert all(len(v) == 3 for v in expected.values()), expected

    # The test's blocks are small, so one request for everything would cost less than
    # one per new block; a request worth nothing makes monctl ask for each on its own.
    second = _backup_env(
        stack, dest, {"MONCTL_BACKUP_REQUEST_BYTES": "0"}, "--service", "prometheus"
    )
    s1, s2 = _service(first, "prometheus"), _service(second, "prometheus")
    m1 = read_manifest(storage, first["id"]).files("prometheus")
    m2 = read_manifest(storage, second["id"]).files("prometheus")
    kept_blocks = [b for b in old_blocks if b in {e.top for e in m2.files}]
    assert kept_blocks, "no block of the first backup is in the second"
    # The blocks the repository held were not transferred again: the second backup read
    # only the new block(s) and the head, and reused every object of the old blocks.
    old_objects = {e.blob.ref.id for e in m1.files if e.top in kept_blocks and e.blob}
    assert old_objects <= {e.blob.ref.id for e in m2.files if e.blob}
    assert s2["reused_objects"] >= len(old_objects) > 0
    assert f"{len(kept_blocks)} unit(s) reused (not read)" in " ".join(s2["notes"]), s2
    new_bytes = m2.raw_size - sum(e.size for e in m1.files if e.top in kept_blocks)
    headers = 1024 * len(m2.files)  # a tar header and padding per member, at most
    assert s2["read_bytes"] <= new_bytes + headers, (s2, new_bytes)
    assert second["repository_bytes"] > 0 and s1["written_bytes"] > 0

    ids1, ids2 = (
        gc.referenced(read_manifest(storage, first["id"])),
        gc.referenced(read_manifest(storage, second["id"])),
    )
    shared, unique = ids1 & ids2, ids1 - ids2
    assert shared and unique, "the first backup should share blocks and hold its own"
    # Objects written a moment ago are within prune's grace (a backup elsewhere may have
    # just written them): age them as the next night's prune would see them.
    past = time.time() - 7200
    for path in (dest / "objects").rglob("*"):
        if path.is_file():
            os.utime(path, (past, past))
    pruned = stack.monctl("backup", "prune", "--from", str(dest), "--keep-last", "1", "--json")
    assert pruned.code == 0, explain(pruned)
    doc = json.loads(pruned.out)
    assert doc["deleted"] == [first["id"]] and doc["objects"]["swept_objects"] == len(unique)
    assert all((dest / object_key(i)).is_file() for i in shared), "a shared object was swept"
    assert not any((dest / object_key(i)).exists() for i in unique), "an orphan survived"

    wipe(stack, "prometheus")
    assert prom_query(stack, "monctl_test_known", times[0]) == []
    restored = stack.monctl("restore", second["id"], "--from", str(dest), "--service",
                            "prometheus", "--yes", "--json", timeout=600)  # fmt: skip
    assert restored.code == 0, explain(restored)
    assert json.loads(restored.out)["services"][0]["state"] == "running, ready"
    assert {t: prom_query(stack, "monctl_test_known", t) for t in times} == expected
    owners = sh(stack, "prometheus", "find /prometheus ! -user 65534 | head -3").strip()
    assert owners == "", f"files not owned by Prometheus' user: {owners}"


def test_a_missing_or_damaged_object_is_named_refused_and_repaired(
    data_stack: Stack, tmp_path: Path
) -> None:
    stack = data_stack
    dest = tmp_path / "repo"
    storage = LocalStorage(dest)
    now = int(time.time())
    (tmp_path / "a").mkdir()
    load_blocks(stack, tmp_path / "a", now - 30 * 3600, now - 28 * 3600)
    first = _backup(stack, dest, "--service", "prometheus", "--service", "grafana")
    second = _backup(stack, dest, "--service", "prometheus", "--service", "grafana")
    files = read_manifest(storage, second["id"]).files("prometheus").files
    shared = {e.blob.ref.id for e in read_manifest(storage, first["id"]).files("prometheus").files
              if e.blob} & {e.blob.ref.id for e in files if e.blob}  # fmt: skip
    damaged, missing = sorted(shared)[:2]
    path = dest / object_key(damaged)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x20
    path.write_bytes(bytes(data))
    (dest / object_key(missing)).unlink()

    checked = stack.monctl("backup", "verify", second["id"], "--from", str(dest), "--json")
    assert checked.code == 10, explain(checked)
    doc = json.loads(checked.out)
    assert set(doc["needed_by"]) == {damaged, missing}
    assert all(set(ids) == {first["id"], second["id"]} for ids in doc["needed_by"].values())
    everything = stack.monctl("backup", "verify", "--all", "--from", str(dest))
    assert everything.code == 10 and damaged in everything.out + everything.err

    before = _blocks(stack)
    started = inspect(stack, "prometheus", "{{.State.StartedAt}}")
    refused = stack.monctl("restore", second["id"], "--from", str(dest), "--yes")
    assert refused.code == 10, explain(refused)
    assert _blocks(stack) == before, "the live volume changed"
    assert inspect(stack, "prometheus", "{{.State.StartedAt}}") == started, "restarted"
    assert damaged[:16] in refused.err and missing[:16] in refused.err, refused.err

    repair = _backup(stack, dest, "--full", "--service", "prometheus", "--service", "grafana")
    assert _service(repair, "prometheus")["reused_objects"] == 0
    for backup_id in (first["id"], second["id"], repair["id"]):
        verified = stack.monctl("backup", "verify", backup_id, "--from", str(dest))
        assert verified.code == 0, explain(verified)


def test_flat_backups_of_earlier_versions_still_list_verify_and_restore(
    data_stack: Stack, tmp_path: Path
) -> None:
    stack = data_stack
    dest = tmp_path / "repo"
    storage = LocalStorage(dest)
    flat_backup(stack, storage, "20260101T020000Z", ("grafana", "alertmanager"))
    _backup(stack, dest, "--service", "grafana")  # a format-2 backup beside it
    listed = json.loads(stack.monctl("backup", "list", "--from", str(dest), "--json").out)
    flat = next(b for b in listed["backups"] if b["id"] == "20260101T020000Z")
    assert flat["state"] == "complete" and flat["format_version"] == 1
    assert flat["services"] == ["alertmanager", "grafana"] and flat["total_size"] > 0
    verified = stack.monctl("backup", "verify", "20260101T020000Z", "--from", str(dest))
    assert verified.code == 0, explain(verified)
    assert stack.monctl("backup", "verify", "--all", "--from", str(dest)).code == 0

    marker = sh(stack, "grafana", "sha256sum /var/lib/grafana/grafana.db").split()[0]
    wipe(stack, "grafana")
    restored = stack.monctl("restore", "20260101T020000Z", "--from", str(dest), "--service",
                            "grafana", "--yes", timeout=600)  # fmt: skip
    assert restored.code == 0, explain(restored)
    assert sh(stack, "grafana", "sha256sum /var/lib/grafana/grafana.db").split()[0] == marker
    # Prune deletes it like any other backup (a directory), and keeps the objects.
    pruned = stack.monctl("backup", "prune", "--from", str(dest), "--keep-last", "1", "--json")
    assert pruned.code == 0 and json.loads(pruned.out)["deleted"] == ["20260101T020000Z"]
