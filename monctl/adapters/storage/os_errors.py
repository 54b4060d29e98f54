"""OS errors where backup bytes are written or read, as the storage errors they are (exit 8).

A full disk is the most common way a nightly backup fails, and a filesystem
says so with an ``OSError`` that would otherwise end in a traceback. Every
place that writes or reads backup bytes on a filesystem (a local destination
and its spools, the temporary files of an S3 upload, ``backup export``'s
output file) turns it into ``storage_error``: one message naming the place
and the cause in words, with a hint for what to do. No space left says how
much is free there now (``OutOfSpace``; the backup adds roughly how much it
still needed). stdlib only: cheap to import from any command.
"""

from __future__ import annotations

import errno
import os
from pathlib import Path

from monctl.errors import OutOfSpace, StorageError

_NO_SPACE = (errno.ENOSPC, errno.EDQUOT)

# errno -> (the cause in words, what to do). The hint names the options an operator
# has at 3 a.m.: make room, prune, or send the backup elsewhere.
CAUSES: dict[int, tuple[str, str]] = {
    errno.ENOSPC: (
        "no space left on device",
        "free space there, delete old backups (`monctl backup prune --keep-last N`), "
        "or use another destination (--to)",
    ),
    errno.EDQUOT: (
        "disk quota exceeded",
        "raise the quota, delete old backups (`monctl backup prune --keep-last N`), "
        "or use another destination (--to)",
    ),
    errno.EROFS: (
        "read-only file system",
        "remount it read-write (a disk with errors is often remounted read-only: check "
        "dmesg), or use another destination (--to)",
    ),
    errno.EACCES: (
        "permission denied",
        "check the directory's owner and permissions for the user monctl runs as",
    ),
    errno.EPERM: (
        "operation not permitted",
        "check the directory's owner, permissions and attributes for the user monctl runs as",
    ),
    errno.EIO: (
        "input/output error",
        "the disk or the network filesystem failed: check dmesg and the disk's health, "
        "or use another destination (--to)",
    ),
    errno.ENOENT: (
        "it is gone (removed or unmounted during the run?)",
        "check that the disk is mounted and the directory exists, then run again",
    ),
    errno.ENOTDIR: (
        "a path component is not a directory",
        "check the path: a file stands where a directory should be",
    ),
    errno.EFBIG: (
        "file too large for this filesystem",
        "use a filesystem without a small file size limit (not FAT32), or another destination",
    ),
    errno.ESTALE: (
        "stale network file handle",
        "the network filesystem was remounted or the server restarted: run again",
    ),
    errno.ENOTCONN: (
        "the network filesystem is disconnected",
        "check the mount and the server, then run again",
    ),
}


def free_bytes(path: str | os.PathLike[str]) -> int | None:
    """Bytes free to an unprivileged writer on the filesystem holding ``path`` (or its
    nearest existing parent); None when that cannot be told."""
    here = Path(path)
    for candidate in (here, *here.parents):
        try:
            st = os.statvfs(candidate)
        except OSError:
            continue
        return st.f_bavail * st.f_frsize
    return None


def cause(exc: OSError) -> str:
    """The cause of ``exc`` in words ("no space left on device")."""
    known = CAUSES.get(exc.errno or 0)
    if known:
        return known[0]
    text = exc.strerror or str(exc) or type(exc).__name__
    return text[:1].lower() + text[1:]


def storage_error(
    exc: OSError, place: str | os.PathLike[str], doing: str, hint: str | None = None
) -> StorageError:
    """``exc``, raised while ``doing`` ("cannot write objects/…") in ``place`` (a
    destination, a staging or temporary directory, an output file), as a StorageError:
    "<doing> in <place>: <cause>", and a hint. No space: ``OutOfSpace``, which says how
    much is free there now. ``hint`` replaces the cause's own."""
    from monctl.text import human_size

    shown = str(place)
    why = cause(exc)
    hint = hint or CAUSES.get(exc.errno or 0, ("", None))[1]
    if exc.errno in _NO_SPACE:
        free = free_bytes(place)
        if free is not None:
            why += f" ({human_size(free)} free)"
        return OutOfSpace(f"{doing} in {shown}: {why}", hint=hint, place=shown, free=free)
    return StorageError(f"{doing} in {shown}: {why}", hint=hint)
