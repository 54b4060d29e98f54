"""Encrypted backups on the real engine: `backup --encrypt-to`, then list, verify,
restore and the restore drill with and without the key (the CLI as operators run it).

Loki's test image has no shell, like the distroless upstream one: the encrypted
restore of its data must not need one either.
"""

from __future__ import annotations

import json
import uuid
from pathlib import Path

import pytest
from support.age_keys import write_identity
from support.data import explain, fingerprint, inspect, sh, wipe
from support.engine import Stack

pytestmark = pytest.mark.docker

AGE_HEADER = b"age-encryption.org/v1\n"
SERVICES = ("grafana", "loki")


def volume_files(stack: Stack, service: str) -> list[str]:
    """``fingerprint`` without Loki's compactor, which writes its own files on its own
    schedule (its delete-requests store appears minutes after Loki starts)."""
    return [x for x in fingerprint(stack, service).splitlines() if "./compactor" not in x]


def _grafana_marker(stack: Stack, value: str) -> None:
    insert = (
        "import sqlite3; c = sqlite3.connect('/var/lib/grafana/grafana.db'); c.execute("
        f"'INSERT OR REPLACE INTO standin_info VALUES (?, ?)', ('marker', '{value}')); c.commit()"
    )
    sh(stack, "grafana", f'python3 -c "{insert}"')


def test_encrypted_backup_verify_restore_and_drill_need_thewrite_identity(
    data_stack: Stack, tmp_path: Path
) -> None:
    stack = data_stack
    dest = tmp_path / "sealed"
    recipient = write_identity(tmp_path / "backup.key")
    write_identity(tmp_path / "other.key")
    marker = uuid.uuid4().hex
    _grafana_marker(stack, marker)
    per_service = [a for s in SERVICES for a in ("--service", s)]

    made = stack.monctl(
        "backup", "--to", str(dest), *per_service, "--encrypt-to", recipient, "--json",
        timeout=600,
    )  # fmt: skip
    assert made.code == 0, explain(made)
    summary = json.loads(made.out)
    backup_id = summary["id"]
    assert summary["encrypted_to"] == [recipient]
    objects = [p for p in (dest / "objects").rglob("*") if p.is_file()]
    assert objects and all(p.read_bytes().startswith(AGE_HEADER) for p in objects)
    assert marker.encode() not in b"".join(p.read_bytes() for p in objects)
    secret = (tmp_path / "backup.key").read_text().split()[-1]
    assert secret not in made.out + made.err

    listed = stack.monctl("backup", "list", "--from", str(dest), "--json")
    assert json.loads(listed.out)["backups"][0]["encrypted_to"] == [recipient]

    keyless = stack.monctl("backup", "verify", backup_id, "--from", str(dest), "--json")
    assert keyless.code == 0, explain(keyless)
    assert json.loads(keyless.out)["contents_checked"] is False
    deep = stack.monctl("backup", "verify", backup_id, "--from", str(dest), "--deep")
    assert deep.code == 10 and "--identity" in deep.err, explain(deep)
    keyed = stack.monctl(
        "backup", "verify", backup_id, "--from", str(dest), "--deep", "--json",
        "--identity", str(tmp_path / "backup.key"),
    )  # fmt: skip
    assert keyed.code == 0 and json.loads(keyed.out)["contents_checked"] is True, explain(keyed)

    _grafana_marker(stack, "changed after the backup")
    before = {s: volume_files(stack, s) for s in SERVICES}
    started = {s: inspect(stack, s, "{{.State.StartedAt}}") for s in SERVICES}
    restore = ("restore", backup_id, "--from", str(dest), "--yes")
    for extra, says in (
        ((), "no identity was given"),
        (("--identity", str(tmp_path / "other.key")), "matches none of them"),
    ):
        refused = stack.monctl(*restore, *extra)
        assert refused.code == 10 and says in refused.err, explain(refused)
        assert "Traceback" not in refused.err and secret not in refused.err
    assert {s: volume_files(stack, s) for s in SERVICES} == before, "a volume changed"
    assert {s: inspect(stack, s, "{{.State.StartedAt}}") for s in SERVICES} == started

    # The key from the setting (a path relative to the project), as cron would run it.
    wipe(stack, "loki")
    env = {"MONCTL_BACKUP_IDENTITY": str(tmp_path / "backup.key")}
    done = stack.monctl(*restore, "--json", env=env, timeout=600)
    assert done.code == 0, explain(done)
    assert [s["state"] for s in json.loads(done.out)["services"]] == ["running, ready"] * 2
    rows = sh(stack, "grafana", "python3 -c \"import sqlite3; print(sqlite3.connect("
              "'/var/lib/grafana/grafana.db').execute(\\\"SELECT value FROM standin_info "
              "WHERE key='marker'\\\").fetchone()[0])\"")  # fmt: skip
    assert rows.strip() == marker

    drill = stack.monctl(
        "backup", "test", backup_id, "--from", str(dest), "--service", "grafana", "--json",
        "--identity", str(tmp_path / "backup.key"), timeout=900,
    )  # fmt: skip
    assert drill.code == 0, explain(drill)
    assert [s["status"] for s in json.loads(drill.out)["services"]] == ["passed"]
    no_key = stack.monctl("backup", "test", backup_id, "--from", str(dest), "--json")
    assert no_key.code == 10 and "Traceback" not in no_key.err, explain(no_key)
