"""Locking: one run at a time on a host (the project lock), and "this backup is in
use" seen by every host (a destination-side lease).

The project lock
================
One backup, restore or prune at a time per project.

An exclusive ``fcntl.flock`` on ``<project root>/.monctl/backup.lock``. The
kernel drops the lock when the process ends, however it ends (exception,
Ctrl-C, SIGKILL), so a crashed run never leaves a stale lock behind; the pid
written into the file is only there to tell the next run who holds it.
The file itself is never deleted: unlinking a lock file while another process
waits on it would let two runs hold "the" lock at once.

The path is opened with O_NOFOLLOW and must be a regular file: a symlink
planted there must not make monctl truncate the file it points to.

Leases
======
A destination-side lease: "this backup is in use", seen by every host that prunes.

The project lock (above) keeps one backup, restore or prune at a time on
one host. A destination can be shared by several hosts (an S3 bucket), and a
prune elsewhere must not delete the backup being restored or written here. So
whoever uses a backup puts a small lease object beside it,
``<id>/.lease-<token>.json`` (operation, host, pid, start, expiry), and removes
it when done; ``prune`` skips every backup that holds a lease that has not
expired. A lease left by a killed process expires by itself (``TTL``).

Leases are best effort for readers: ``verify`` with read-only credentials
cannot write one, says so, and relies on noticing a backup that disappears
under it instead.
"""

from __future__ import annotations

import contextlib
import errno
import fcntl
import json
import math
import os
import secrets
import socket
import stat
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monctl import signals
from monctl.errors import ConfigError, LockHeld, StorageError
from monctl.project import Project
from monctl.repository import parsing

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage import Storage

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


# Leases

PREFIX = ".lease-"
TTL = 24 * 3600.0  # longer than any backup or restore should take
MAX_LEASE_BYTES = 4096


@dataclass(frozen=True)
class Lease:
    operation: str
    host: str
    pid: int
    expires: float
    started: float = 0.0  # when it was taken (the garbage collection's grace starts there)

    def describe(self) -> str:
        until = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(self.expires))
        return f"{self.operation} by pid {self.pid} on {self.host} (lease until {until})"


def is_lease(key: str) -> bool:
    return key.rsplit("/", 1)[-1].startswith(PREFIX)


@contextlib.contextmanager
def holding(
    storage: Storage, backup_id: str, operation: str, *, required: bool = True
) -> Iterator[str | None]:
    """Hold a lease on ``backup_id`` for the block; yields its key (None when it
    could not be written and ``required`` is false). Always removed afterwards."""
    key = f"{backup_id}/{PREFIX}{secrets.token_hex(8)}.json"
    body = {
        "operation": operation,
        "host": socket.gethostname()[:100],
        "pid": os.getpid(),
        "started": time.time(),
        "expires": time.time() + TTL,
    }
    data = json.dumps(body).encode()
    written = False
    try:
        try:
            with signals.deferred():  # written, and known to be: removed below, always
                storage.put(key, [data], size_hint=len(data))
                written = True
        except StorageError:
            if required:
                raise
        yield key if written else None
    finally:
        if written:
            with contextlib.suppress(StorageError):
                storage.delete([key])


# The latest time a lease (or a retired record) may name: the end of year 9999, the
# last one that ``time.gmtime`` and ``datetime`` can show. A number read from the
# destination is bounded before it is used: 1e300 or 1e400 (which JSON reads as
# infinity) would overflow every conversion after it.
MAX_TIME = 253402300799.0
MAX_PID = 2**32


def number(doc: Any, key: str, high: float, default: float | None = None) -> float:
    """``doc[key]``: a finite number from 0 to ``high`` (ValueError, TypeError or KeyError
    otherwise); ``default`` when the key is absent and a default is given."""
    if default is not None and key not in doc:
        return default
    value = doc[key]
    if not isinstance(value, int | float) or isinstance(value, bool):
        raise TypeError(f"{key} is not a number")
    if not (math.isfinite(value) and 0 <= value <= high):
        raise ValueError(f"{key} is out of range")
    return float(value)


def _parse(data: bytes) -> Lease | None:
    try:
        doc: Any = parsing.loads(data)
        if not isinstance(doc, dict):
            return None
        return Lease(
            str(doc["operation"])[:40],
            str(doc["host"])[:100],
            int(number(doc, "pid", MAX_PID)),
            number(doc, "expires", MAX_TIME),
            number(doc, "started", MAX_TIME, 0.0),
        )
    except (ValueError, TypeError, KeyError, RecursionError):
        return None


def active(storage: Storage, keys: list[str], now: float | None = None) -> list[Lease]:
    """The leases among ``keys`` that have not expired. A lease that cannot be read
    counts as active (prune then names it): better to keep a backup than to delete
    one in use; removing such an object by hand releases it."""
    now = time.time() if now is None else now
    found: list[Lease] = []
    for key in keys:
        if not is_lease(key):
            continue
        try:
            with storage.open(key) as f:
                lease = _parse(f.read(MAX_LEASE_BYTES + 1)[:MAX_LEASE_BYTES])
        except StorageError:
            continue  # gone since the listing: released
        if lease is None:  # unreadable: could be anything, a backup started long ago too
            lease = Lease("unknown (unreadable lease)", "?", 0, now + 1, 0.0)
        if lease.expires > now:
            found.append(lease)
    return found
