"""Writing files to disk: past the page cache, and flushed together (Linux).

A backup's objects (``storage.staging``) and a direct restore's stage
(``runtime.host_volume``) are written as files whose durability only matters
together: each file's writeback is started as it is closed (``start_writeback``:
the disk works while the next is written) and the whole file system flushed once
at the end (``syncfs``: one journal commit, not an fsync per file) — the two
calls Python's ``os`` lacks, through libc.

A backup's objects are not read again soon, and a restore's staged data is read
by the service only after the swap, so ``DirectWriter`` writes both past the page
cache (O_DIRECT) in whole aligned blocks: gigabytes written do not push the host's
cache (the database's pages) out, and the kernel neither copies them nor finds fresh
pages for them. On the 2-core VM of bench/README.md, whose fresh memory is slow to
touch, a first backup of 1 GiB took 1.9-2.9 s instead of 3.2-4.3 s, and staging a
4 GiB restore 5.5-6.9 s instead of 14-28 s (runs side by side). A file system that
refuses O_DIRECT (tmpfs before Linux 6.6, some FUSE) gets the same bytes through
the cache.
"""

from __future__ import annotations

import contextlib
import ctypes
import errno
import fcntl
import functools
import mmap
import os
import threading
from collections.abc import Callable
from pathlib import Path

ALIGN = 4096  # O_DIRECT wants offsets, sizes and memory aligned to the logical block
DIRECT_BLOCK = 1024 * 1024  # what one direct write carries (a multiple of ALIGN)
DIRECT_MIN = 64 * 1024  # a file with fewer aligned bytes goes through the cache whole
_O_DIRECT: int = getattr(os, "O_DIRECT", 0)  # Linux


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


class DirectWriter:
    """A new file's bytes, written past the page cache: copied into an aligned buffer
    and written with O_DIRECT a whole ``DIRECT_BLOCK`` at a time, the rest's whole
    ``ALIGN`` blocks by ``finish``. Through the cache go the last partial block, a file
    with fewer aligned bytes than ``direct_min`` (most files: one ordinary write), and
    a file's first page: formats keep their header there, and a service opening its
    files reads it first (Prometheus opens every chunk segment by its header as it
    starts: on 4 GiB restored it was ready 0.6 s after its start instead of 2.3 s).
    The first refusal of O_DIRECT (EINVAL: the file system, or an alignment it wants)
    turns it off for the file and writes the same bytes the ordinary way."""

    def __init__(self, fd: int, direct_min: int = DIRECT_MIN) -> None:
        self.fd = fd
        self.direct_min = direct_min
        self.buffer: mmap.mmap | None = None
        self.filled = 0
        self.direct: bool | None = None  # None: not tried yet
        self.written = 0  # bytes written to the file
        self.written_direct = 0  # of which past the cache

    def write(self, data: bytes | bytearray | memoryview) -> None:
        view = memoryview(data).cast("B")
        while view:
            if self.buffer is None:
                self.buffer = _buffers.take()
            n = min(len(view), DIRECT_BLOCK - self.filled)
            self.buffer[self.filled : self.filled + n] = view[:n]
            self.filled += n
            view = view[n:]
            if self.filled == DIRECT_BLOCK:
                if self.direct is None and self.direct_min <= DIRECT_BLOCK:
                    self._start_direct()
                self._write_buffer(self.filled)

    def finish(self) -> None:
        """Write what is left (see the class) and give the buffer back."""
        if self.buffer is not None:
            if self.direct is None and self.filled - self.filled % ALIGN >= self.direct_min:
                self._start_direct()
            if self.direct:
                self._write_buffer(self.filled - self.filled % ALIGN)
        if self.direct:
            self.direct = False
            _set_direct(self.fd, False)
        if self.buffer is not None and self.filled:
            self._write_buffer(self.filled)
        self.release()

    def release(self) -> None:
        if self.buffer is not None:
            _buffers.give(self.buffer)
            self.buffer = None

    def _start_direct(self) -> None:
        """O_DIRECT from here on; the file's first page first, through the cache."""
        if self.written == 0 and self.filled >= ALIGN:
            self._write_buffer(ALIGN)
        self.direct = _set_direct(self.fd, True)

    def _write_buffer(self, size: int) -> None:
        """The buffer's first ``size`` bytes written; what follows them moves to its start."""
        assert self.buffer is not None
        with memoryview(self.buffer) as whole:
            view = whole[:size]
            while view:
                try:
                    done = os.write(self.fd, view)
                except OSError as e:
                    if e.errno != errno.EINVAL or not self.direct:
                        raise
                    self.direct = False  # refused: the rest through the cache
                    _set_direct(self.fd, False)
                    continue
                if self.direct:
                    self.written_direct += done
                view = view[done:]
        rest = self.filled - size
        if rest:
            self.buffer[:rest] = self.buffer[size : self.filled]
        self.filled = rest
        self.written += size


def _set_direct(fd: int, on: bool) -> bool:
    """Turn O_DIRECT on or off for ``fd``; whether it is on."""
    if not _O_DIRECT:
        return False
    flags = fcntl.fcntl(fd, fcntl.F_GETFL)
    want = flags | _O_DIRECT if on else flags & ~_O_DIRECT
    try:
        fcntl.fcntl(fd, fcntl.F_SETFL, want)
    except OSError:
        return False
    return on


class _Buffers:
    """Aligned buffers (anonymous maps: page-aligned) kept for the next file: a few
    threads write at once, and fresh memory for every file would cost its page faults
    again."""

    KEEP = 4

    def __init__(self) -> None:
        self.free: list[mmap.mmap] = []
        self.lock = threading.Lock()

    def take(self) -> mmap.mmap:
        with self.lock:
            if self.free:
                return self.free.pop()
        return mmap.mmap(-1, DIRECT_BLOCK)

    def give(self, buffer: mmap.mmap) -> None:
        with self.lock:
            if len(self.free) < self.KEEP:
                self.free.append(buffer)
                return
        with contextlib.suppress(BufferError):
            buffer.close()


_buffers = _Buffers()
