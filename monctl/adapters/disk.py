"""Flushing to disk: the two Linux calls Python's ``os`` lacks (through libc).

A backup's objects (``storage.staging``) and a direct restore's stage
(``runtime.host_volume``) are written as files whose durability only matters
together: each file's writeback is started as it is closed (``start_writeback``:
the disk works while the next is written) and the whole file system flushed once
at the end (``syncfs``: one journal commit, not an fsync per file).
"""

from __future__ import annotations

import ctypes
import functools
import os
from collections.abc import Callable
from pathlib import Path


@functools.cache  # once per function: start_writeback runs for every file
def _libc(name: str) -> Callable[..., int] | None:
    """A libc function (Linux), or None where there is none."""
    try:
        fn: Callable[..., int] = getattr(ctypes.CDLL(None, use_errno=True), name)
    except (OSError, AttributeError):
        return None
    return fn


def start_writeback(fd: int) -> None:
    """sync_file_range WRITE: the file's dirty pages are queued for the disk now; it
    does not wait (a later ``syncfs`` does). Nothing where there is no such call."""
    fn = _libc("sync_file_range")
    if fn is not None:
        fn(fd, ctypes.c_int64(0), ctypes.c_int64(0), 2)  # SYNC_FILE_RANGE_WRITE


def syncfs(path: Path) -> bool:
    """Flush the whole file system holding ``path`` (Linux); False when not possible."""
    fn = _libc("syncfs")
    if fn is None:
        return False
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False
    try:
        return bool(fn(fd) == 0)
    finally:
        os.close(fd)
