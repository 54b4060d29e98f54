"""monctl backup (+ list/verify/prune) and restore on a real engine, with real data.

Prometheus and Alertmanager are Debian's real binaries (tests/images); Grafana and Loki
are stand-ins that keep a real SQLite database / flushed chunk files. S3 is moto's
server mode over HTTP. Destructive tests use their own stack (``data_stack``), never
the shared ``running_stack``.
"""

from __future__ import annotations

import fcntl
import json
import socket
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.parse
import uuid
from collections.abc import Callable
from pathlib import Path

import pytest
from support import wait_for
from support.data import (
    explain,
    http_json,
    in_volume,
    load_blocks,
    no_paused,
    prom_query,
    sh,
    snapshots,
    wait_ready,
    wipe,
)
from support.engine import Stack, docker

pytestmark = pytest.mark.docker


def loki_lines(stack: Stack, selector: str, around_ns: int) -> list[str]:
    """The log lines Loki's query_range returns for ``selector`` within an hour of a time."""
    hour = 3600 * 10**9
    q = urllib.parse.urlencode(
        {"query": selector, "start": around_ns - hour, "end": around_ns + hour, "limit": 100}
    )
    doc = http_json(f"{stack.url('loki')}/loki/api/v1/query_range?{q}")
    return [value[1] for stream in doc["data"]["result"] for value in stream["values"]]


def _backup_json(stack: Stack, *args: str, env: dict[str, str] | None = None) -> dict:
    result = stack.monctl("backup", "--json", *args, env=env, timeout=600)
    assert result.code == 0, explain(result)
    return json.loads(result.out)


def test_round_trip_every_service_restores_the_same_data(data_stack: Stack, tmp_path: Path) -> None:
    stack = data_stack
    # Loki's image, like the distroless upstream one, has no shell: restore must not need one.
    no_shell = docker(
        "run", "--rm", "--entrypoint", "sh", stack.overrides["LOKI_IMAGE"], "-c", "true"
    )
    assert no_shell.code != 0 and "executable file not found" in no_shell.err, no_shell
    # Prometheus: real blocks of known series (promtool), plus whatever it scraped live.
    now = int(time.time())
    start, end = now - 6 * 3600, now - 4 * 3600
    load_blocks(stack, tmp_path, start, end)
    known_at = [start + 1800, start + 3600 + 17, end - 120]
    deadline = time.monotonic() + 60
    while not prom_query(stack, "up", time.time()) and time.monotonic() < deadline:
        time.sleep(1)  # the first live scrape
    live_at = time.time()
    before = {t: prom_query(stack, "monctl_test_known", t) for t in known_at}
    live_before = prom_query(stack, "count_over_time(up[1h])", live_at)
    assert all(len(v) == 3 for v in before.values()), before
    assert live_before, "no live scrape before the backup"

    # Grafana (stand-in): a row in its real SQLite database.
    marker = uuid.uuid4().hex
    insert = (
        "import sqlite3; c = sqlite3.connect('/var/lib/grafana/grafana.db'); c.execute("
        f"'INSERT OR REPLACE INTO standin_info VALUES (?, ?)', ('marker', '{marker}')); c.commit()"
    )
    sh(stack, "grafana", f'python3 -c "{insert}"')
    # Alertmanager: a silence through its API. It writes silences to disk on its
    # maintenance interval (15 min) or on shutdown: restart it so the file holds it.
    am = stack.url("alertmanager")
    matcher = {"name": "alertname", "value": "MonctlBackupTest", "isRegex": False, "isEqual": True}
    silence = http_json(f"{am}/api/v2/silences", "POST", {
        "matchers": [matcher],
        "startsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
        "endsAt": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() + 86400)),
        "createdBy": "monctl-test", "comment": "backup round trip",
    }, auth=stack.basic_auth())["silenceID"]  # fmt: skip
    assert stack.compose("restart", "alertmanager").code == 0
    wait_ready(stack, "alertmanager")
    # Loki: a pushed line, in memory until the backup's /flush writes it out.
    line = f"loki-marker-{marker}"
    pushed_ns = time.time_ns()
    push = {"streams": [{"stream": {"job": "t"}, "values": [[str(pushed_ns), line]]}]}
    http_json(f"{stack.url('loki')}/loki/api/v1/push", "POST", push)

    summary = _backup_json(stack)
    assert summary["ok"] is True
    assert {s["service"] for s in summary["services"]} == {
        "prometheus",
        "alertmanager",
        "grafana",
        "loki",
    }
    for s in summary["services"]:
        assert s["status"] == "ok" and s["bytes"] > 0 and s["files"] > 0, s
        assert s["read_bytes"] > 0 and s["written_bytes"] > 0, s
    assert snapshots(stack) == "", "the TSDB snapshot was left in the volume"
    assert no_paused(stack) == []
    backups = Path(stack.overrides["MONCTL_BACKUP_DEST"])
    assert (backups / summary["id"] / "manifest.json").is_file()
    prom = (Path(stack.overrides["MONCTL_TEXTFILE_DIR"]) / "monctl_backup.prom").read_text()
    assert 'monctl_backup_last_success{service="grafana"} 1' in prom
    assert 'monctl_backup_last_success_timestamp_seconds{service="prometheus"}' in prom
    assert 'monctl_backup_bytes_written{service="loki"}' in prom
    assert 'monctl_backup_bytes_reused{service="grafana"}' in prom

    for service in ("prometheus", "alertmanager", "grafana", "loki"):
        wipe(stack, service)
    assert prom_query(stack, "monctl_test_known", known_at[0]) == [], "wipe did not wipe"
    with pytest.raises(urllib.error.HTTPError):
        http_json(f"{am}/api/v2/silence/{silence}", auth=stack.basic_auth())

    result = stack.monctl("restore", summary["id"], "--yes", "--json", timeout=600)
    assert result.code == 0, explain(result)
    report = json.loads(result.out)
    assert [s["state"] for s in report["services"]] == ["running, ready"] * 4, report

    assert {t: prom_query(stack, "monctl_test_known", t) for t in known_at} == before
    assert prom_query(stack, "count_over_time(up[1h])", live_at) == live_before
    assert (
        http_json(f"{am}/api/v2/silence/{silence}", auth=stack.basic_auth())["status"]["state"]
        == "active"
    )
    rows = sh(stack, "grafana", "python3 -c \"import sqlite3; print(sqlite3.connect("
              "'/var/lib/grafana/grafana.db').execute(\\\"SELECT value FROM standin_info "
              "WHERE key='marker'\\\").fetchone()[0])\"")  # fmt: skip
    assert rows.strip() == marker
    # Real Loki keeps compressed chunks under chunks/<tenant>/: ask it for the line instead
    wait_for(lambda: line in loki_lines(stack, '{job="t"}', pushed_ns), 60, "Loki's marker line")
    assert in_volume(stack, "loki", "find /target/chunks -type f | head -1").out.strip()
    owners = {"prometheus": "65534", "alertmanager": "65534", "grafana": "472", "loki": "10001"}
    for service, uid in owners.items():
        found = in_volume(stack, service, f"find /target ! -user {uid} | head -3").out.strip()
        assert found == "", f"{service}: files not owned by {uid}: {found}"
    assert in_volume(stack, "prometheus", "ls -A /target").out.split().count("snapshots") == 0


def test_a_second_backup_is_refused_while_one_holds_the_lock(data_stack: Stack) -> None:
    lock_file = data_stack.root / ".monctl" / "backup.lock"
    lock_file.parent.mkdir(exist_ok=True)
    # A real second process holds the lock, the way a running backup does.
    holder = subprocess.Popen(
        [sys.executable, "-c",
         "import fcntl, os, sys, time; f = open(sys.argv[1], 'a+'); "
         "fcntl.flock(f, fcntl.LOCK_EX); f.truncate(0); f.write(f'pid {os.getpid()}, backup'); "
         "f.flush(); print('held', flush=True); time.sleep(60)", str(lock_file)],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "held"
        before = sorted(p.name for p in Path(data_stack.overrides["MONCTL_BACKUP_DEST"]).iterdir())
        result = data_stack.monctl("backup", "--service", "grafana")
        assert result.code == 9, explain(result)
        assert f"pid {holder.pid}" in result.err
        after = sorted(p.name for p in Path(data_stack.overrides["MONCTL_BACKUP_DEST"]).iterdir())
        assert after == before, "a refused backup wrote something"
    finally:
        holder.kill()
        holder.wait()
    # The lock dies with its holder: the next run goes ahead.
    assert data_stack.monctl("backup", "-q", "--service", "grafana").code == 0
    with open(lock_file, "a+") as f:  # and monctl released it too
        fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)


def test_quiet_success_prints_nothing_and_retention_keeps_the_newest(
    data_stack: Stack, tmp_path: Path
) -> None:
    dest = tmp_path / "retention"
    ids = []
    for _ in range(3):
        ids.append(_backup_json(data_stack, "--to", str(dest), "--service", "grafana")["id"])
        time.sleep(1.1)  # ids are per second
    quiet = data_stack.monctl(
        "backup", "-q", "--to", str(dest), "--service", "grafana", "--keep-last", "1"
    )
    assert quiet.code == 0 and quiet.out == "" and quiet.err == "", explain(quiet)
    listed = json.loads(data_stack.monctl("backup", "list", "--from", str(dest), "--json").out)
    remaining = [b["id"] for b in listed["backups"]]
    assert len(remaining) == 1 and remaining[0] > max(ids), remaining  # only the newest
    # rules that all keep nothing are no policy: refused, nothing deleted.
    result = data_stack.monctl("backup", "prune", "--from", str(dest), "--keep-days", "0", "--json")
    assert result.code == 2, explain(result)
    result = data_stack.monctl("backup", "prune", "--from", str(dest), "--keep-last", "1", "--json")
    assert result.code == 0, explain(result)
    assert json.loads(result.out)["deleted"] == []
    assert data_stack.monctl("backup", "verify", remaining[0], "--from", str(dest)).code == 0


# --------------------------------------------------------------------------- S3 (moto)


def _s3_env(endpoint: str, key: str = "testing") -> dict[str, str]:
    return {
        "AWS_ACCESS_KEY_ID": key,
        "AWS_SECRET_ACCESS_KEY": f"secret-{key}",
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": endpoint,
    }


def _s3(endpoint: str):  # type: ignore[no-untyped-def]
    import boto3

    env = _s3_env(endpoint)
    return boto3.client(
        "s3", endpoint_url=endpoint, region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=env["AWS_SECRET_ACCESS_KEY"],
    )  # fmt: skip


def _objects(s3, bucket: str, prefix: str) -> dict[str, object]:  # type: ignore[no-untyped-def]
    """key -> LastModified of every object under ``prefix``objects/ (re-uploads change it)."""
    pages = s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=f"{prefix}objects/")
    return {o["Key"]: o["LastModified"] for page in pages for o in page.get("Contents", [])}


def test_s3_incremental_backup_list_verify_restore_prune(
    data_stack: Stack, moto_endpoint: str
) -> None:
    s3 = _s3(moto_endpoint)
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    dest, env = f"s3://{bucket}/nightly", _s3_env(moto_endpoint)
    first = _backup_json(
        data_stack, "--to", dest, "--service", "grafana", "--service", "alertmanager",
        "--service", "prometheus", env=env,
    )  # fmt: skip
    after_first = _objects(s3, bucket, "nightly/")
    assert after_first and first["written_bytes"] > 0
    time.sleep(1.1)  # S3 times have a resolution of one second
    second = _backup_json(
        data_stack, "--to", dest, "--service", "grafana", "--service", "prometheus",
        "--sse", "AES256", env=env,
    )  # fmt: skip
    after_second = _objects(s3, bucket, "nightly/")
    # Incremental: nothing uploaded again; only what is new went up.
    assert {k: after_second[k] for k in after_first} == after_first, "an object was re-uploaded"
    assert second["reused_objects"] > 0
    new = set(after_second) - set(after_first)
    sizes = {o["Key"]: o["Size"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"]}
    assert sum(sizes[k] for k in new) == second["written_bytes"]
    keys = set(sizes)
    assert f"nightly/{first['id']}/manifest.json" in keys
    assert f"nightly/{second['id']}/manifest.json" in keys

    listed = json.loads(data_stack.monctl("backup", "list", "--from", dest, "--json", env=env).out)
    assert [b["id"] for b in listed["backups"]] == [second["id"], first["id"]]
    assert listed["repository"]["objects"] == len(after_second)
    verified = data_stack.monctl("backup", "verify", first["id"], "--from", dest, "--json", env=env)
    assert verified.code == 0 and json.loads(verified.out)["ok"] is True, explain(verified)

    marker = sh(data_stack, "grafana", "sha256sum /var/lib/grafana/grafana.db").split()[0]
    wipe(data_stack, "grafana")
    restored = data_stack.monctl(
        "restore", second["id"], "--from", dest, "--service", "grafana", "--yes", env=env
    )
    assert restored.code == 0, explain(restored)
    assert sh(data_stack, "grafana", "sha256sum /var/lib/grafana/grafana.db").split()[0] == marker

    pruned = data_stack.monctl(
        "backup", "prune", "--from", dest, "--keep-last", "1", "--json", env=env
    )
    assert pruned.code == 0 and json.loads(pruned.out)["deleted"] == [first["id"]], explain(pruned)
    keys = {o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])}
    assert not any(first["id"] in k for k in keys) and any(second["id"] in k for k in keys)
    # What only the first backup needed is garbage now (young objects wait out the grace).
    assert json.loads(pruned.out)["objects"]["refused"] is None
    again = data_stack.monctl("backup", "verify", "--all", "--from", dest, env=env)
    assert again.code == 0, explain(again)


class _CuttingProxy:
    """A TCP proxy to moto that resets every connection carrying more than ``limit``
    request bytes: an S3 connection lost in the middle of every large upload."""

    def __init__(self, target_port: int, limit: int) -> None:
        self.target, self.limit = target_port, limit
        self.server = socket.create_server(("127.0.0.1", 0))
        self.port = self.server.getsockname()[1]
        self.cuts = 0
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.server.accept()
            except OSError:
                return
            upstream = socket.create_connection(("127.0.0.1", self.target))
            threading.Thread(target=self._up, args=(client, upstream), daemon=True).start()
            threading.Thread(target=self._down, args=(upstream, client), daemon=True).start()

    def _up(self, client: socket.socket, upstream: socket.socket) -> None:
        sent = 0
        try:
            while data := client.recv(65536):
                sent += len(data)
                if sent > self.limit:
                    self.cuts += 1
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    break
                upstream.sendall(data)
        except OSError:
            pass
        finally:
            client.close()
            upstream.close()

    def _down(self, upstream: socket.socket, client: socket.socket) -> None:
        try:
            while data := upstream.recv(65536):
                client.sendall(data)
        except OSError:
            pass

    def close(self) -> None:
        self.server.close()


def test_s3_connection_lost_mid_upload_leaves_nothing_and_resumes_containers(
    data_stack: Stack, moto_endpoint: str
) -> None:
    s3 = _s3(moto_endpoint)
    bucket = f"b-{uuid.uuid4().hex[:12]}"
    s3.create_bucket(Bucket=bucket)
    # 40 MiB that zstd cannot shrink: a multipart upload of several parts.
    sh(data_stack, "grafana", "head -c 41943040 /dev/urandom > /var/lib/grafana/ballast.bin")
    proxy = _CuttingProxy(int(moto_endpoint.rsplit(":", 1)[1]), limit=2 * 1024 * 1024)
    try:
        env = _s3_env(f"http://127.0.0.1:{proxy.port}")
        result = data_stack.monctl(
            "backup", "--to", f"s3://{bucket}/x", "--service", "prometheus", "--service", "grafana",
            "--json", env=env, timeout=600,
        )  # fmt: skip
    finally:
        proxy.close()
        sh(data_stack, "grafana", "rm -f /var/lib/grafana/ballast.bin")
    assert result.code not in (0, 9), explain(result)
    assert proxy.cuts > 0, "the proxy never cut a connection: nothing was injected"
    assert "Traceback" not in result.err, result.err
    assert json.loads(result.out)["ok"] is False
    # No backup was recorded: no manifest. Objects uploaded before the failure stay for
    # prune's garbage collection (another backup could be writing the same ones).
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket=bucket).get("Contents", [])]
    assert not [k for k in keys if not k.startswith("x/objects/") and ".lease-" not in k], keys
    assert not [k for k in keys if ".lease-" in k], "the failed backup's lease was left behind"
    assert s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []) == [], "unfinished upload"
    assert no_paused(data_stack) == [], "a container was left paused"
    assert snapshots(data_stack) == "", "the TSDB snapshot was left after a failed backup"
    prom = (Path(data_stack.overrides["MONCTL_TEXTFILE_DIR"]) / "monctl_backup.prom").read_text()
    assert 'monctl_backup_last_success{service="grafana"} 0' in prom


def test_s3_wrong_credentials_are_named_clearly(
    data_stack: Stack, moto_endpoint: str, moto_auth: Callable[[bool], None]
) -> None:
    moto_auth(True)  # moto checks credentials against its IAM: any key is unknown
    env = _s3_env(moto_endpoint, key="AKIAWRONGWRONGWRONG1")
    result = data_stack.monctl("backup", "--to", "s3://nope/x", "--service", "grafana", env=env)
    assert result.code == 8, explain(result)
    assert "credential" in result.err.lower(), result.err
    assert "secret-AKIAWRONG" not in result.err + result.out
    assert "Traceback" not in result.err, result.err
    assert no_paused(data_stack) == []
