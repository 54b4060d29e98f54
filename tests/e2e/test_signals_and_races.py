"""Signals in the middle of a backup or a restore, and an archive swapped under a restore,
on the real engine: nothing is left paused, stopped, half-written or locked.

SIGTERM is what `systemctl stop` (and a timer unit's stop) sends, SIGHUP what a closed
terminal sends. Grafana (a stand-in keeping a real SQLite database) gets an
incompressible ballast so that its copy lasts long enough to be caught paused.
"""

from __future__ import annotations

import fcntl
import json
import os
import select
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support.data import container, explain, fingerprint, inspect, no_paused, sh, volume
from support.engine import Stack, docker

from monctl.adapters.storage.local import LocalStorage
from monctl.repository.manifest import read_manifest
from monctl.repository.objects import object_key

pytestmark = pytest.mark.docker

BALLAST = "/var/lib/grafana/ballast.bin"


@pytest.fixture
def ballast(data_stack: Stack) -> Iterator[None]:
    """300 MiB that no compressor shrinks: a copy long enough to be interrupted."""
    sh(data_stack, "grafana", f"head -c 314572800 /dev/urandom > {BALLAST}")
    try:
        yield
    finally:
        sh(data_stack, "grafana", f"rm -f {BALLAST}")


def start(stack: Stack, *args: str, env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    argv = [sys.executable, "-m", "monctl", "--project-dir", str(stack.root)]
    argv += ["--project-name", stack.project_name, *args]
    return subprocess.Popen(
        argv,
        env=stack.process_env(env),
        cwd=stack.root,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


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
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def lock_is_free(stack: Stack) -> bool:
    with open(stack.root / ".monctl" / "backup.lock", "a+") as f:
        try:
            fcntl.flock(f, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False
        fcntl.flock(f, fcntl.LOCK_UN)
    return True


def leftovers(dest: Path) -> list[str]:
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())


@pytest.mark.parametrize(("signum", "code"), [(signal.SIGTERM, 143), (signal.SIGHUP, 129)])
def test_a_signal_while_grafana_is_paused_resumes_it_and_leaves_nothing(
    data_stack: Stack, ballast: None, tmp_path: Path, signum: int, code: int
) -> None:
    dest = tmp_path / "dest"
    # The engine's own event, not polling: the signal lands while Grafana is paused.
    events = subprocess.Popen(
        ["docker", "events", "--filter", f"container={container(data_stack, 'grafana')}",
         "--filter", "event=pause", "--format", "{{.Status}}"],
        stdout=subprocess.PIPE, text=True,
    )  # fmt: skip
    proc = start(data_stack, "backup", "--service", "grafana", "--compression", "gzip",
                 "--to", str(dest))  # fmt: skip
    try:
        assert events.stdout is not None and events.stdout.readline().strip() == "pause"
        # Freeze monctl where it is, so the signal is certain to land while Grafana is
        # paused (on a loaded machine the copy could otherwise end first).
        proc.send_signal(signal.SIGSTOP)
        # `docker ps`, not inspect: inspect waits for the container's lock, which the
        # engine holds while the archive is read — the whole pause, since the objects
        # are written as the stream arrives.
        grafana = container(data_stack, "grafana")
        state = docker("ps", "-a", "--filter", f"id={grafana}", "--format", "{{.State}}")
        assert state.out.strip() == "paused", (
            f"{state}: the copy ended before monctl could be stopped: too little ballast"
        )
        proc.send_signal(signum)
        proc.send_signal(signal.SIGCONT)
        _, err = proc.communicate(timeout=120)
    finally:
        events.kill()
        events.wait()
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == code, f"exit {proc.returncode}\n{err}"
    assert f"stopped by {signal.Signals(signum).name}" in err and "Traceback" not in err, err
    assert no_paused(data_stack) == [], "grafana was left paused"
    assert leftovers(dest) == [], "a partial archive (or a lease) was left at the destination"
    assert lock_is_free(data_stack)
    textfile = Path(data_stack.overrides["MONCTL_TEXTFILE_DIR"]) / "monctl_backup.prom"
    assert 'monctl_backup_last_success{service="grafana"} 0' in textfile.read_text()
    # And the next backup runs as if nothing had happened.
    again = data_stack.monctl("backup", "-q", "--service", "grafana", "--to", str(dest))
    assert again.code == 0, explain(again)


def test_sigterm_during_a_restore_leaves_the_live_data_and_no_staging_volume(
    data_stack: Stack, ballast: None, tmp_path: Path
) -> None:
    dest = tmp_path / "dest"
    done = data_stack.monctl("backup", "--json", "--service", "grafana", "--to", str(dest))
    assert done.code == 0, explain(done)
    backup_id = json.loads(done.out)["id"]
    sh(data_stack, "grafana", f"echo changed-after-the-backup > {BALLAST}")
    before = fingerprint(data_stack, "grafana")
    started = inspect(data_stack, "grafana", "{{.State.StartedAt}}")

    def staging() -> list[str]:
        names = docker("volume", "ls", "-q").out.split()
        return [v for v in names if v.startswith(volume(data_stack, "grafana") + "-monctl-restore")]

    # The engine path (a remote engine's): the direct one is tests/e2e/test_restore_direct.py.
    engine = {"MONCTL_RESTORE_VIA": "engine"}
    proc = start(data_stack, "restore", backup_id, "--from", str(dest), "--yes", env=engine)
    try:
        until(lambda: bool(staging()), "the staging volume", proc)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, f"exit {proc.returncode}\n{err}"
    assert staging() == [], "the staging volume was left behind"
    assert fingerprint(data_stack, "grafana") == before, "the live data changed"
    assert inspect(data_stack, "grafana", "{{.State.StartedAt}}") == started
    assert inspect(data_stack, "grafana", "{{.State.Status}}") == "running"
    assert lock_is_free(data_stack)
    assert not list(dest.rglob(".lease-*")), "the restore's lease was left behind"


def _prompted(proc: subprocess.Popen[str], timeout: float = 120) -> str:
    """stderr up to the confirmation question (click prints it without a newline)."""
    assert proc.stderr is not None
    seen = b""
    deadline = time.monotonic() + timeout
    fd = proc.stderr.fileno()
    while b"[y/N]" not in seen:
        assert time.monotonic() < deadline, f"no question asked: {seen.decode()}"
        ready, _, _ = select.select([fd], [], [], 1)
        if ready:
            chunk = os.read(fd, 4096)
            assert chunk, f"monctl ended before asking: {seen.decode()}"
            seen += chunk
    return seen.decode()


def test_an_object_swapped_while_the_operator_confirms_is_not_extracted(
    data_stack: Stack, tmp_path: Path
) -> None:
    """Verify-then-read: an object verified is replaced before it is read again. The
    stream that is extracted is hashed as it passes, so the restore of that service stops
    before its data is swapped in (exit 10)."""
    dest = tmp_path / "dest"
    done = data_stack.monctl("backup", "--json", "--service", "grafana", "--to", str(dest))
    assert done.code == 0, explain(done)
    backup_id = json.loads(done.out)["id"]
    files = read_manifest(LocalStorage(dest), backup_id).files("grafana")
    target = dest / object_key(max(files.blobs(), key=lambda b: b.ref.stored).ref.id)
    before = fingerprint(data_stack, "grafana")
    started = inspect(data_stack, "grafana", "{{.State.StartedAt}}")

    proc = start(data_stack, "restore", backup_id, "--from", str(dest))
    try:
        question = _prompted(proc)
        assert "grafana_data" in question
        swapped = bytearray(target.read_bytes())
        swapped[: len(b"evil")] = b"evil"
        target.write_bytes(bytes(swapped))
        out, err = proc.communicate("y\n", timeout=180)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 10, f"exit {proc.returncode}\n{out}\n{err}"
    assert "Traceback" not in err
    assert fingerprint(data_stack, "grafana") == before, "the live data changed"
    assert inspect(data_stack, "grafana", "{{.State.StartedAt}}") == started, "grafana restarted"
    assert "corrupt" in out or "does not" in out  # caught as it was extracted
