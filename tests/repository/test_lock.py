"""The backup/restore lock: a second holder is refused with the first one's pid; the
lock is released on any exit, including an exception or the holder being killed."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from monctl.errors import ConfigError, ExitCode, LockHeld
from monctl.repository import locking as lock

HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from monctl.repository import locking as lock\n"
    "with lock.hold(Path(sys.argv[1]), 'backup'):\n"
    "    print('held', flush=True)\n"
    "    time.sleep(60)\n"
)


def _holder(path: Path) -> subprocess.Popen[str]:
    proc = subprocess.Popen(
        [sys.executable, "-c", HOLD, str(path)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None and proc.stdout.readline().strip() == "held"
    return proc


def test_second_holder_is_refused_naming_the_first(tmp_path: Path) -> None:
    path = tmp_path / ".monctl" / "backup.lock"
    proc = _holder(path)
    try:
        with pytest.raises(LockHeld) as caught, lock.hold(path, "restore"):
            pytest.fail("the lock was granted twice")
        assert f"pid {proc.pid}" in caught.value.message
        assert caught.value.exit_code == ExitCode.LOCKED == 9
    finally:
        proc.kill()
        proc.wait()
    # Killed holder (no clean-up ran): the kernel released the lock.
    with lock.hold(path, "backup"):
        assert "pid " in path.read_text()


def test_released_after_an_exception(tmp_path: Path) -> None:
    path = tmp_path / "l"
    with pytest.raises(RuntimeError), lock.hold(path, "backup"):
        raise RuntimeError("boom")
    with lock.hold(path, "backup"):
        pass
    assert path.read_text() == "", "a finished holder is still named in the lock file"


def test_the_lock_lives_under_the_project(tmp_path: Path) -> None:
    from monctl.project import Project

    assert lock.lock_path(Project(root=tmp_path)) == tmp_path / ".monctl" / "backup.lock"


def test_a_symlink_at_the_lock_path_is_refused_and_its_target_untouched(tmp_path: Path) -> None:
    precious = tmp_path / "precious.db"
    precious.write_text("do not truncate me")
    path = tmp_path / ".monctl" / "backup.lock"
    path.parent.mkdir()
    path.symlink_to(precious)
    with pytest.raises(ConfigError, match="not a regular file") as caught, lock.hold(path, "x"):
        pytest.fail("a lock was taken through a symlink")
    assert caught.value.exit_code == ExitCode.CONFIG and caught.value.hint
    assert precious.read_text() == "do not truncate me"


def test_a_lock_that_is_a_directory_or_a_fifo_is_refused(tmp_path: Path) -> None:
    as_dir = tmp_path / "a" / "backup.lock"
    as_dir.mkdir(parents=True)
    with pytest.raises(ConfigError, match="not a regular file"), lock.hold(as_dir, "x"):
        pytest.fail("a directory was taken for a lock")
    fifo = tmp_path / "b" / "backup.lock"
    fifo.parent.mkdir()
    os.mkfifo(fifo)
    with pytest.raises(ConfigError, match="not a regular file"), lock.hold(fifo, "x"):
        pytest.fail("a FIFO was taken for a lock")


def test_a_lock_directory_that_is_a_file_is_a_message(tmp_path: Path) -> None:
    (tmp_path / ".monctl").write_text("a file where the directory should be")
    path = tmp_path / ".monctl" / "backup.lock"
    with pytest.raises(ConfigError, match="is not a directory"), lock.hold(path, "x"):
        pytest.fail("unreachable")


def test_prune_takes_the_lock_so_it_never_runs_beside_a_restore(tmp_path: Path) -> None:
    """A prune during a restore once deleted the backup being restored."""
    from click.testing import CliRunner

    from monctl.cli import cli

    root = tmp_path / "stack"
    (root / "compose").mkdir(parents=True)
    (root / "compose" / "docker-compose.monitoring.yml").write_text("services: {}\n")
    (root / "backups").mkdir()
    proc = _holder(root / ".monctl" / "backup.lock")  # a restore, holding the lock
    try:
        argv = ["--project-dir", str(root), "backup", "prune", "--keep-last", "1", "--json"]
        result = CliRunner().invoke(cli, argv)
    finally:
        proc.kill()
        proc.wait()
    assert isinstance(result.exception, LockHeld), result.output
    assert f"pid {proc.pid}" in result.exception.message
