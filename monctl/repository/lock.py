"""One backup, restore or prune at a time per project.

An exclusive ``fcntl.flock`` on ``<project root>/.monctl/backup.lock``. The
kernel drops the lock when the process ends, however it ends (exception,
Ctrl-C, SIGKILL), so a crashed run never leaves a stale lock behind; the pid
written into the file is only there to tell the next run who holds it.
The file itself is never deleted: unlinking a lock file while another process
waits on it would let two runs hold "the" lock at once.

The path is opened with O_NOFOLLOW and must be a regular file: a symlink
planted there must not make monctl truncate the file it points to.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import os
import stat
import time
from collections.abc import Iterator
from pathlib import Path

from monctl.errors import ConfigError, LockHeld
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
    from monctl.text import inert

    return inert(text) or "unknown"


def _open(path: Path) -> int:
    """The lock file's descriptor: a regular file, never through a symlink."""
    refuse = f"the lock file {path} is not a regular file"
    hint = f"remove what is at {path} (monctl creates the lock itself)"
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise ConfigError(
            f"{path.parent} is not a directory (monctl keeps its lock there)",
            hint=f"remove or rename {path.parent}",
        ) from None
    except OSError as exc:
        raise ConfigError(f"cannot create {path.parent}: {exc.strerror}") from None
    flags = os.O_RDWR | os.O_CREAT | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NONBLOCK
    try:
        fd = os.open(path, flags, 0o644)
    except OSError as exc:
        if exc.errno in (errno.ELOOP, errno.EISDIR, errno.ENXIO, errno.EWOULDBLOCK):
            raise ConfigError(refuse + " (a link, a directory or a device)", hint=hint) from None
        raise ConfigError(f"cannot open the lock file {path}: {exc.strerror}", hint=hint) from None
    if not stat.S_ISREG(os.fstat(fd).st_mode):
        os.close(fd)
        raise ConfigError(refuse, hint=hint)
    return fd


@contextlib.contextmanager
def hold(path: Path, operation: str) -> Iterator[None]:
    """Hold the lock at ``path`` for the length of the block.

    Raise LockHeld, naming the holder's pid and operation, when another
    process holds it already (never waits: cron must not pile runs up);
    ConfigError when the path is not (and cannot become) a regular file.
    """
    fd = _open(path)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise LockHeld(
                f"another backup, restore or prune is running ({_holder(fd)})",
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
