"""monctl backup test (the restore drill) on the real engine with the test images.

A good backup passes every check; a backup whose Grafana database is garbage (its
manifest re-hashed, so `backup verify` passes) fails the drill for Grafana only; and
the throwaway stack, its volumes and networks are gone afterwards in both cases and
after SIGTERM, while the production stack (``data_stack``) is never touched.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest
import zstandard
from support import wait_for
from support.data import explain, fingerprint, http_json, inspect, prom_query
from support.engine import Stack, docker
from support.ping_server import RecordingServer

pytestmark = pytest.mark.docker

DRILL_LABEL = "org.monctl.drill"
DATA = ("prometheus", "alertmanager", "grafana", "loki")
CHECK_UUID = "5e7a1c0d-0b1e-4d2f-9a3c-8f6e5d4c3b2a"  # the heartbeat check's secret


def drill_leftovers(stack: Stack) -> list[str]:
    """Containers, volumes and networks of any throwaway copy of ``stack``."""
    found = []
    for kind in ("ps -a", "volume ls", "network ls"):
        args = kind.split()
        labelled = docker(*args, "-q", "--filter", f"label={DRILL_LABEL}={stack.project_name}")
        found += [f"{kind}: {x}" for x in labelled.out.split()]
        names = docker(*args, "--format", "{{.Names}}" if kind == "ps -a" else "{{.Name}}")
        prefix = f"{stack.project_name}-drill-"
        found += [f"{kind}: {n}" for n in names.out.split() if n.startswith(prefix)]
    # The copy's override file and its own .env (with its own credentials).
    files = (stack.root / ".monctl").glob(f"{stack.project_name}-drill-*")
    found += [f"file: {p.name}" for p in files]
    return found


def production(stack: Stack) -> dict[str, str]:
    """When each production container started: a drill must restart none of them."""
    return {s: inspect(stack, s, "{{.State.StartedAt}} {{.State.Status}}") for s in DATA}


@pytest.fixture(scope="module")
def good_backup(data_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A backup of the four services, each holding something the drill can find."""
    stack = data_stack
    wait_for(lambda: prom_query(stack, "up", time.time()), 60, "Prometheus' first scrape")
    line = f"drill-marker-{uuid.uuid4().hex}"
    push = {"streams": [{"stream": {"job": "drill"}, "values": [[str(time.time_ns()), line]]}]}
    http_json(f"{stack.url('loki')}/loki/api/v1/push", "POST", push)
    dest = tmp_path_factory.mktemp("drill-dest")
    result = stack.monctl("backup", "--json", "--to", str(dest), timeout=600)
    assert result.code == 0, explain(result)
    doc = json.loads(result.out)
    manifest = json.loads((dest / doc["id"] / "manifest.json").read_text())
    assert manifest["services"]["grafana"]["facts"]["dashboards"], "no dashboards recorded"
    # What Prometheus and Loki held, for the drill to compare with (issue 17, item 10):
    assert manifest["services"]["prometheus"]["facts"]["series"], "no series recorded"
    streams = manifest["services"]["loki"]["facts"]["streams"]
    assert any(s["lines"] >= 1 for s in streams), streams
    return dest / doc["id"]


def drill(
    stack: Stack, backup: Path, *extra: str, name: str = "", env: dict[str, str] | None = None
) -> tuple[int, dict, str]:
    args = ["backup", "test", name or backup.name, "--from", str(backup.parent), "--json"]
    result = stack.monctl(*args, *extra, env=env, timeout=900)
    assert "Traceback" not in result.err, result.err
    return result.code, json.loads(result.out), result.err


def test_a_good_backup_passes_and_the_throwaway_stack_is_gone(
    data_stack: Stack, good_backup: Path
) -> None:
    before = production(data_stack)
    grafana_before = fingerprint(data_stack, "grafana")

    with RecordingServer() as check:  # the drill's heartbeat, healthchecks-style
        ping = {"MONCTL_RESTORE_PING_URL": f"{check.url}/ping/{CHECK_UUID}"}
        code, doc, err = drill(data_stack, good_backup, name="latest", env=ping)
    assert check.paths() == [f"/ping/{CHECK_UUID}/start", f"/ping/{CHECK_UUID}"], err
    assert "grafana  passed" in check.received[1].body
    assert CHECK_UUID not in err

    assert code == 0, err + json.dumps(doc, indent=2)
    assert doc["ok"] is True and doc["removed"] is True and doc["leftovers"] == []
    services = {s["service"]: s for s in doc["services"]}
    assert set(services) == set(DATA)
    for s in services.values():
        assert s["status"] == "passed" and s["state"] == "running, ready", s
        assert s["checks"] and all(c["ok"] for c in s["checks"]), s
    dashboards = next(c for c in services["grafana"]["checks"] if c["name"] == "dashboards")
    assert "every one of the" in dashboards["detail"]
    (query,) = services["prometheus"]["checks"]
    assert "series the backup recorded" in query["detail"], query
    (query,) = services["loki"]["checks"]
    assert "every line of the" in query["detail"], query
    assert doc["stack"].startswith(f"{data_stack.project_name}-drill-")
    assert drill_leftovers(data_stack) == []
    assert production(data_stack) == before, "the drill restarted a production service"
    assert fingerprint(data_stack, "grafana") == grafana_before
    metrics = (Path(data_stack.overrides["MONCTL_TEXTFILE_DIR"]) / "monctl_backup.prom").read_text()
    for name in DATA:
        assert f'monctl_backup_last_drill_success_timestamp_seconds{{service="{name}"}}' in metrics


def _decode(stored: bytes, codec: str) -> bytes:
    if codec == "zstd":
        return zstandard.ZstdDecompressor().stream_reader(io.BytesIO(stored)).read()
    if codec == "gzip":
        return gzip.decompress(stored)
    return stored


def _put_object(repo: Path, plaintext: bytes) -> dict[str, object]:
    """Store ``plaintext`` as it is (codec none) and return its blob fields."""
    object_id = hashlib.sha256(plaintext).hexdigest()
    path = repo / "objects" / object_id[:2] / object_id
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(plaintext)
    return {"object": object_id, "stored": len(plaintext), "codec": "none",
            "size": len(plaintext), "sha256": object_id}  # fmt: skip


def _garbage_grafana_db(repo: Path, backup_id: str) -> None:
    """Replace grafana.db in a format-2 backup by random bytes of the same size, with
    the manifest re-hashed, so that `backup verify` finds nothing wrong. The database is
    an object of its own or lies in Grafana's pack; either is rewritten."""
    manifest_path = repo / backup_id / "manifest.json"
    manifest = json.loads(manifest_path.read_text())
    grafana = manifest["services"]["grafana"]
    offset, target = 0, None
    for entry in grafana["files"]:
        if entry["type"] != "file":
            continue
        if entry["path"].endswith("grafana.db"):
            target = entry
            break
        if "object" not in entry:
            offset += entry["size"]
    assert target is not None and target["size"] > 0, "Grafana's backup holds no grafana.db"
    garbage = os.urandom(target["size"])
    if "object" in target:
        target.update(_put_object(repo, garbage))
    else:
        pack = grafana["pack"]
        stored = (repo / "objects" / pack["object"][:2] / pack["object"]).read_bytes()
        raw = bytearray(_decode(stored, pack["codec"]))
        raw[offset : offset + len(garbage)] = garbage
        pack.update(_put_object(repo, bytes(raw)))
        target["sha256"] = hashlib.sha256(garbage).hexdigest()
    manifest_path.write_text(json.dumps(manifest, indent=2))


def test_a_garbage_grafana_database_fails_the_drill_for_grafana_only(
    data_stack: Stack, good_backup: Path, tmp_path: Path
) -> None:
    repo = tmp_path / "dest"
    copy = repo / good_backup.name
    shutil.copytree(good_backup, copy)
    shutil.copytree(good_backup.parent / "objects", repo / "objects")
    _garbage_grafana_db(repo, copy.name)
    verified = data_stack.monctl("backup", "verify", copy.name, "--from", str(copy.parent))
    assert verified.code == 0, explain(verified)  # intact, as far as hashes can tell
    before = production(data_stack)

    with RecordingServer() as check:
        ping = {"MONCTL_RESTORE_PING_URL": f"{check.url}/{CHECK_UUID}"}
        code, doc, err = drill(data_stack, copy, "--timeout", "60", env=ping)

    assert code == 1, err + json.dumps(doc, indent=2)
    assert check.paths() == [f"/{CHECK_UUID}/start", f"/{CHECK_UUID}/fail"]
    assert "grafana  failed" in check.received[1].body
    status = {s["service"]: s["status"] for s in doc["services"]}
    assert status == {
        "prometheus": "passed",
        "alertmanager": "passed",
        "grafana": "failed",
        "loki": "passed",
    }, doc
    grafana = next(s for s in doc["services"] if s["service"] == "grafana")
    assert grafana["state"] != "running, ready", grafana
    assert doc["removed"] is True and drill_leftovers(data_stack) == []
    assert production(data_stack) == before


def test_sigterm_during_a_drill_still_removes_everything(
    data_stack: Stack, good_backup: Path
) -> None:
    argv = [sys.executable, "-m", "monctl", "--project-dir", str(data_stack.root)]
    argv += ["--project-name", data_stack.project_name, "backup", "test", good_backup.name]
    argv += ["--from", str(good_backup.parent), "--json"]
    proc = subprocess.Popen(
        argv,
        cwd=data_stack.root,
        env=data_stack.process_env(),
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        deadline = time.monotonic() + 240
        while time.monotonic() < deadline and proc.poll() is None:
            running = docker(
                "ps", "-q", "--filter", f"label={DRILL_LABEL}={data_stack.project_name}"
            ).out.split()
            if running:  # the throwaway stack is up: stop the drill now
                break
            time.sleep(0.5)
        if proc.poll() is not None:
            pytest.fail(f"the drill ended before its stack was seen:\n{proc.communicate()}")
        proc.send_signal(signal.SIGTERM)
        out, err = proc.communicate(timeout=300)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    assert proc.returncode == 143, err  # SIGTERM: stopped after the clean-up
    assert "Traceback" not in err, err
    assert json.loads(out)["exit_code"] == 143
    assert drill_leftovers(data_stack) == [], err
    assert all(inspect(data_stack, s, "{{.State.Status}}") == "running" for s in DATA)
