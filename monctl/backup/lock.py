"""One backup or restore at a time per project.

An exclusive ``fcntl.flock`` on ``<project root>/.monctl/backup.lock``. The
kernel drops the lock when the process ends, however it ends (exception,
Ctrl-C, SIGKILL), so a crashed run never leaves a stale lock behind; the pid
written into the file is only there to tell the next run who holds it.
The file itself is never deleted: unlinking a lock file while another process
waits on it would let two runs hold "the" lock at once.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import time
from collections.abc import Iterator
from pathlib import Path

from monctl.errors import LockHeld
from monctl.project import Project

LOCK_NAME = "backup.lock"


def lock_path(project: Project) -> Path:
    """Where the project's backup/restore lock lives."""
    return project.root / ".monctl" / LOCK_NAME


def _holder(fd: int) -> str:
    try:
        text = os.pread(fd, 200, 0).decode("utf-8", "replace").strip()
    except OSError:
        return "unknown"
    return text or "unknown"


@contextlib.contextmanager
def hold(path: Path, operation: str) -> Iterator[None]:
    """Hold the lock at ``path`` for the length of the block.

    Raise LockHeld, naming the holder's pid and operation, when another
    process holds it already (never waits: cron must not pile runs up).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(
                f"another backup or restore is running ({_holder(fd)})",
                hint=f"wait for it to finish; the lock is {path}",
            ) from None
        os.ftruncate(fd, 0)
        stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
        os.pwrite(fd, f"pid {os.getpid()}, {operation} since {stamp}\n".encode(), 0)
        try:
            yield
        finally:
            # Empty the file first so a later reader never names a finished pid.
            with contextlib.suppress(OSError):
                os.ftruncate(fd, 0)
            fcntl.flock(fd, fcntl.LOCK_UN)
    finally:
        os.close(fd)
