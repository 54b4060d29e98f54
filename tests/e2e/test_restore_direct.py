"""The direct restore on the real engine (monctl as root, the engine local): the data is
written beside the live volume's directory, then swapped in while the service is stopped.

Grafana (a stand-in keeping a real SQLite database) gets an incompressible ballast so
that its staging lasts long enough to be caught. Every test checks that nothing is left
beside the volume's data (``_data.monctl-*``) and that the service runs.
"""

from __future__ import annotations

import fcntl
import json
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.data import explain, fingerprint, inspect, no_paused, sh, volume
from support.engine import Stack, docker

from monctl.adapters.storage.local import LocalStorage
from monctl.repository.manifest import read_manifest
from monctl.repository.objects import object_key

pytestmark = pytest.mark.docker

BALLAST = "/var/lib/grafana/ballast.bin"


def start(stack: Stack, *args: str) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "monctl", "--project-dir", str(stack.root)]
    argv += ["--project-name", stack.project_name, *args]
    return subprocess.Popen(argv, env=stack.process_env(), cwd=stack.root, text=True,
                            stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)  # fmt: skip


def until(
    predicate: Callable[[], bool], what: str, proc: subprocess.Popen[str], timeout: float = 120
) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        if proc.poll() is not None:
            out, err = proc.communicate()
            raise AssertionError(
                f"monctl ended (exit {proc.returncode}) before {what}:\n{out}\n{err}"
            )
        time.sleep(0.005)
    raise AssertionError(f"timed out waiting for {what}")


def lock_is_free(stack: Stack) -> bool:
    with open(stack.root / ".monctl" / "backup.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
    return True


def volume_dir(stack: Stack, service: str) -> Path:
    """The directory holding the volume's ``_data`` on this host."""
    mount = docker("volume", "inspect", "-f", "{{.Mountpoint}}", volume(stack, service)).out
    return Path(mount.strip()).parent


def beside(stack: Stack, service: str, kind: str = "") -> list[str]:
    """What monctl made beside the live data (stages, previous data) that is still there."""
    return sorted(
        p.name
        for p in volume_dir(stack, service).iterdir()
        if p.name.startswith("_data.monctl-" + kind)
    )


def files(stack: Stack, service: str) -> str:
    """``fingerprint`` without the data directory's own line (a restore makes it anew)."""
    lines = fingerprint(stack, service).splitlines()
    return "\n".join(line for line in lines if not line.startswith(". "))


@pytest.fixture
def grafana_backup(data_stack: Stack, tmp_path: Path) -> Iterator[tuple[Path, str, str]]:
    """(repository, backup id, the files at the backup) of Grafana with 200 MiB of ballast;
    the live data then changed after it."""
    sh(data_stack, "grafana", f"head -c 209715200 /dev/urandom > {BALLAST}")
    try:
        dest = tmp_path / "dest"
        done = data_stack.monctl("backup", "--json", "--service", "grafana", "--to", str(dest))
        assert done.code == 0, explain(done)
        at_backup = files(data_stack, "grafana")
        sh(data_stack, "grafana", f"echo changed-after-the-backup > {BALLAST}")
        yield dest, json.loads(done.out)["id"], at_backup
    finally:
        sh(data_stack, "grafana", f"rm -f {BALLAST}")


def test_the_swap_leaves_the_service_ready_with_exactly_the_backups_files(
    data_stack: Stack, grafana_backup: tuple[Path, str, str]
) -> None:
    dest, backup_id, at_backup = grafana_backup
    container_before = inspect(data_stack, "grafana", "{{.Id}}")
    started = inspect(data_stack, "grafana", "{{.State.StartedAt}}")
    result = data_stack.monctl("restore", backup_id, "--from", str(dest), "--yes", "--json")
    assert result.code == 0, explain(result)
    [service] = json.loads(result.out)["services"]
    assert (service["status"], service["state"]) == ("restored", "running, ready"), service
    # Names, owners, modes, sizes, times and contents: the backup's.
    assert files(data_stack, "grafana") == at_backup
    # Stopped and started, not recreated (the engine path recreates it): the direct path ran.
    assert inspect(data_stack, "grafana", "{{.Id}}") == container_before
    assert inspect(data_stack, "grafana", "{{.State.StartedAt}}") != started
    assert beside(data_stack, "grafana") == []
    staging = [v for v in docker("volume", "ls", "-q").out.split() if "-monctl-restore-" in v]
    assert staging == []


def test_a_corrupt_object_found_mid_stream_leaves_the_live_data_and_the_service(
    data_stack: Stack, grafana_backup: tuple[Path, str, str]
) -> None:
    """Same size, so only reading it finds it: the object is checked as it is written."""
    dest, backup_id, _ = grafana_backup
    blobs = read_manifest(LocalStorage(dest), backup_id).files("grafana").blobs()
    target = dest / object_key(max(blobs, key=lambda b: b.ref.stored).ref.id)
    data = bytearray(target.read_bytes())
    data[len(data) * 3 // 4] ^= 0xFF
    target.write_bytes(bytes(data))
    before = fingerprint(data_stack, "grafana")
    started = inspect(data_stack, "grafana", "{{.State.StartedAt}}")
    result = data_stack.monctl("restore", backup_id, "--from", str(dest), "--yes", "--json")
    assert result.code == 10, explain(result)
    [service] = json.loads(result.out)["services"]
    assert service["status"] == "failed" and service["exit_code"] == 10, service
    assert fingerprint(data_stack, "grafana") == before, "the live data changed"
    assert inspect(data_stack, "grafana", "{{.State.StartedAt}}") == started, "grafana restarted"
    assert inspect(data_stack, "grafana", "{{.State.Status}}") == "running"
    assert beside(data_stack, "grafana") == [], "the stage was left"


SIGNALS = [(signal.SIGTERM, 143), (signal.SIGINT, 130), (signal.SIGHUP, 129)]


@pytest.mark.parametrize(("signum", "code"), SIGNALS, ids=lambda x: str(x))
def test_a_signal_while_staging_leaves_the_live_data_and_no_stage(
    data_stack: Stack, grafana_backup: tuple[Path, str, str], signum: int, code: int
) -> None:
    dest, backup_id, _ = grafana_backup
    before = fingerprint(data_stack, "grafana")
    started = inspect(data_stack, "grafana", "{{.State.StartedAt}}")
    proc = start(data_stack, "restore", backup_id, "--from", str(dest), "--yes")
    try:
        until(lambda: bool(beside(data_stack, "grafana", "restore")), "the stage", proc)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, f"exit {proc.returncode}\n{err}"
    assert "Traceback" not in err, err
    assert beside(data_stack, "grafana") == [], "the stage was left"
    assert fingerprint(data_stack, "grafana") == before, "the live data changed"
    assert inspect(data_stack, "grafana", "{{.State.StartedAt}}") == started
    assert inspect(data_stack, "grafana", "{{.State.Status}}") == "running"
    assert lock_is_free(data_stack)
    assert no_paused(data_stack) == []


@pytest.mark.parametrize(("signum", "code"), SIGNALS, ids=lambda x: str(x))
def test_a_signal_at_the_swap_leaves_the_new_data_whole_and_the_service_running(
    data_stack: Stack, grafana_backup: tuple[Path, str, str], signum: int, code: int
) -> None:
    """The signal lands during the swap (held until the service is started again) or
    while the restore waits for it to be ready: the backup's data, whole, and running."""
    dest, backup_id, at_backup = grafana_backup
    proc = start(data_stack, "restore", backup_id, "--from", str(dest), "--yes")
    try:
        until(lambda: bool(beside(data_stack, "grafana", "previous")), "the swap", proc, 300)
        proc.send_signal(signum)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode in (code, 0), f"exit {proc.returncode}\n{err}"
    assert "Traceback" not in err, err
    assert files(data_stack, "grafana") == at_backup, "not the backup's data, whole"
    assert inspect(data_stack, "grafana", "{{.State.Status}}") == "running"
    assert beside(data_stack, "grafana") == [], "the previous data was left"
    assert lock_is_free(data_stack)
