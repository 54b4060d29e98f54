"""The backup/restore lock: a second holder is refused with the first one's pid; the
lock is released on any exit, including an exception or the holder being killed."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from monctl.backup import lock
from monctl.errors import ExitCode, LockHeld

HOLD = (
    "import sys, time\n"
    "from pathlib import Path\n"
    "from monctl.backup import lock\n"
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
