"""Writing a format-2 service's files into an empty host directory (``restore_direct``).

Each file is written as its object is read, decrypted and decompressed; each
object's hashes (stored bytes, plaintext size and sha256) are checked at its
end and the pack's file by file (``restore_stream.content``), so what is
written is what was checked — a failure raises IntegrityError and the caller
removes the directory. Every name is judged by ``tar_safety`` as the engine
path judges it, and created only inside a directory this writer made (so no
path ever passes through a link) with O_EXCL and O_NOFOLLOW; owners are the
image's user, modes (no setuid/setgid) and times the backup's — what the
engine path's tar stream (``restore_stream.assembled``) extracts.
"""

from __future__ import annotations

import collections
import contextlib
import functools
import hashlib
import os
import posixpath
import tarfile
import threading
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

from monctl.adapters.disk import DIRECT_BLOCK, DirectWriter, start_writeback
from monctl.backup.restore_stream import TAR_TYPES, content
from monctl.errors import IntegrityError
from monctl.repository import Repository
from monctl.repository.filelist import FileEntry, ServiceFiles
from monctl.repository.objects import READ_SIZE, Blob
from monctl.repository.tar_safety import TarCheck, check_member
from monctl.repository.tar_stream import Member

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.age import Identities
    from monctl.repository import RepositoryLike
    from monctl.services.model import DataVolume

DIR_MODE = 0o755  # the data directory itself, as the engine path makes it
WORKERS = 2
IN_FLIGHT = 4  # files submitted and not yet collected (open descriptors)
# A staged file of a megabyte or more is written past the page cache (``DirectWriter``):
# staging 4 GiB took 5.5-6.9 s instead of 14-28 s through it (the kernel finding 4 GiB of
# fresh pages beside the live data's), 13 runs side by side. Smaller files (a TSDB block's
# index and meta.json, what the service reads as it starts) go through it: the service
# starts on them from memory.
DIRECT_MIN = DIRECT_BLOCK
FILE_FLAGS = os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC


def tar_check(files: ServiceFiles) -> TarCheck:
    return TarCheck(
        members=len(files.files),
        files=sum(e.kind == "file" for e in files.files),
        dirs=sum(e.kind == "dir" for e in files.files),
        links=sum(e.kind in ("symlink", "hardlink") for e in files.files),
        bytes=files.raw_size,
    )


class _Writer:
    """Creates a service's entries under an empty directory, never through a link."""

    def __init__(self, root: Path, data: DataVolume) -> None:
        self.root = root
        self.data = data
        self.dirs: set[str] = {""}  # made here: the only parents an entry may have
        self.files: set[str] = set()  # regular files made here: what hard links may name
        self.times: list[tuple[str, int]] = []

    def path(self, name: str) -> str:
        parent = posixpath.dirname(name)
        if parent not in self.dirs or name in self.dirs or name in self.files:
            raise IntegrityError(f"the backup's file list names {name!r} out of order")
        return os.path.join(self.root, name)

    def directory(self, name: str, mode: int, mtime: int) -> None:
        path = self.path(name)
        os.mkdir(path, 0o700)
        os.chown(path, self.data.uid, self.data.gid, follow_symlinks=False)
        os.chmod(path, mode, follow_symlinks=False)
        self.dirs.add(name)
        self.times.append((path, mtime))

    def create(self, name: str) -> int:
        """A new file ``name`` (never through a link, never an existing one), open."""
        fd = os.open(self.path(name), FILE_FLAGS, 0o600)
        self.files.add(name)
        return fd

    def fill(
        self, fd: int, mode: int, mtime: int, chunks: Iterator[bytes], stop: threading.Event
    ) -> None:
        """Write ``chunks`` into ``fd``, then its owner, mode and time; close it."""
        writer = DirectWriter(fd, DIRECT_MIN)
        try:
            for chunk in chunks:
                if stop.is_set():
                    raise _Stopped
                writer.write(chunk)
            writer.finish()
            os.fchown(fd, self.data.uid, self.data.gid)
            os.fchmod(fd, mode)
            os.utime(fd, (mtime, mtime))
            start_writeback(fd)
        finally:
            writer.release()
            os.close(fd)

    def copy(self, fd: int, repo: Repository, entry: FileEntry, stop: threading.Event) -> None:
        """An object stored as it is (no codec, not encrypted) in a local repository:
        read, hashed as it is written (what the stage holds is what was checked, even if
        the object changes meanwhile); owner, mode, time; close ``fd``."""
        blob = entry.blob
        assert blob is not None
        try:
            with repo.open_stored(blob.ref) as stored:
                copied, sha = _copy_hashed(stored.fileno(), fd, blob.ref.stored + 1, stop)
            what = f"the object of {entry.path}"
            if copied > blob.ref.stored:
                raise IntegrityError(f"{what} holds more than the {blob.ref.stored} bytes recorded")
            if copied != blob.ref.stored or sha != blob.ref.id:
                raise IntegrityError(f"{what} is corrupt: its stored bytes hash to "
                                     f"{sha[:16]}… ({copied} bytes), not to its name")  # fmt: skip
            if copied != blob.size or sha != blob.sha256:
                raise IntegrityError(f"{what} does not decode to the content recorded "
                                     f"({copied} bytes, sha256 {sha[:16]}…)")  # fmt: skip
            os.fchown(fd, self.data.uid, self.data.gid)
            os.fchmod(fd, entry.mode & 0o1777)
            os.utime(fd, (entry.mtime, entry.mtime))
            start_writeback(fd)
        finally:
            os.close(fd)

    def symlink(self, name: str, target: str, mtime: int) -> None:
        path = self.path(name)
        os.symlink(target, path)
        os.chown(path, self.data.uid, self.data.gid, follow_symlinks=False)
        os.utime(path, (mtime, mtime), follow_symlinks=False)

    def hardlink(self, name: str, target: str) -> None:
        if target not in self.files:
            raise IntegrityError(f"hard link {name!r} names {target!r}, not a file before it")
        os.link(os.path.join(self.root, target), self.path(name), follow_symlinks=False)
        self.files.add(name)

    def finish(self) -> None:
        for path, mtime in reversed(self.times):  # after their contents changed them
            os.utime(path, (mtime, mtime), follow_symlinks=False)
        os.chown(self.root, self.data.uid, self.data.gid)
        os.chmod(self.root, DIR_MODE)


def _copyable(repo: Repository, blob: Blob) -> bool:
    """An object whose stored bytes are the file's (no codec, not encrypted), in a local
    repository: read by its descriptor and hashed once, as it is written."""
    plain = blob.ref.codec == "none" and not blob.ref.encrypted and blob.ref.hash == "sha256"
    return plain and repo.is_local


def _copy_hashed(src: int, dst: int, most: int, stop: threading.Event) -> tuple[int, str]:
    """Up to ``most`` bytes of ``src`` written to ``dst`` (``DirectWriter``), hashed as
    they pass: (bytes written, their sha256)."""
    sha = hashlib.sha256()
    writer = DirectWriter(dst, DIRECT_MIN)
    done = 0
    try:
        while done < most and (data := os.read(src, min(READ_SIZE, most - done))):
            if stop.is_set():
                raise _Stopped
            sha.update(data)
            writer.write(data)
            done += len(data)
        writer.finish()
    finally:
        writer.release()
    return done, sha.hexdigest()


class _Stopped(Exception):
    """Another file failed (or a signal came): this one stops where it is."""


class _Parallel:
    """Files with an object of their own, read, checked and written ``WORKERS`` at a time
    (hashing and writing release the GIL: two cores, twice the rate); progress is told
    from the caller's thread, as each is collected, in order."""

    def __init__(self, on_bytes: Callable[[int], None] | None) -> None:
        self.pool = ThreadPoolExecutor(WORKERS, thread_name_prefix="monctl-restore")
        self.pending: collections.deque[tuple[Future[None], int]] = collections.deque()
        self.stop = threading.Event()
        self.on_bytes = on_bytes

    def make_room(self) -> None:
        while len(self.pending) >= IN_FLIGHT:
            self.collect()

    def submit(self, job: Callable[[], None], stored: int) -> None:
        self.pending.append((self.pool.submit(job), stored))

    def collect(self) -> None:
        future, stored = self.pending.popleft()
        future.result()  # the file's failure, raised here
        if self.on_bytes is not None:
            self.on_bytes(stored)

    def close(self, failed: bool) -> None:
        """Wait for every file still being written (stopped first when ``failed``)."""
        if failed:
            self.stop.set()
        self.pool.shutdown(wait=True, cancel_futures=failed)


def write(
    repo: RepositoryLike,
    files: ServiceFiles,
    data: DataVolume,
    root: Path,
    identities: Identities | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> None:
    """Every entry of ``files`` under the empty directory ``root``, each object checked
    as it is read (IntegrityError when any is not what the manifest records: the caller
    removes ``root``, once this returned: no file is written after). The same names,
    kinds, modes and owner as ``assembled``."""
    repo = Repository.of(repo)  # given a Repository, or a bare Storage (tests, benches)
    base = posixpath.basename(data.path.rstrip("/"))
    out = _Writer(root, data)
    parallel = _Parallel(on_bytes)
    failed = True
    try:
        with contextlib.ExitStack() as stack:
            pack: BinaryIO | None = None
            if files.pack is not None:
                pack = stack.enter_context(
                    repo.open_object(files.pack, "the pack", on_bytes, identities)
                )
            for entry in files.files:
                _one(repo, entry, base, out, pack, parallel, identities, on_bytes)
            if pack is not None and pack.read(1):  # the end: the pack's own hashes
                raise IntegrityError("the pack holds more than its files")
        while parallel.pending:
            parallel.collect()
        failed = False
    finally:
        parallel.close(failed)
    out.finish()


def _one(
    repo: Repository,
    entry: FileEntry,
    base: str,
    out: _Writer,
    pack: BinaryIO | None,
    parallel: _Parallel,
    identities: Identities | None,
    on_bytes: Callable[[int], None] | None,
) -> None:
    kind = TAR_TYPES.get(entry.kind, tarfile.REGTYPE)
    link = f"{base}/{entry.link}" if entry.kind == "hardlink" else entry.link
    size = entry.size if entry.kind == "file" else 0
    mode = entry.mode & 0o1777
    member = Member(f"{base}/{entry.path}", kind, size, mode, 0, 0, entry.mtime, link)
    check_member(member, base)
    name = posixpath.normpath(entry.path)
    if entry.kind == "dir":
        out.directory(name, mode, entry.mtime)
    elif entry.kind == "symlink":
        out.symlink(name, entry.link, entry.mtime)
    elif entry.kind == "hardlink":
        out.hardlink(name, posixpath.normpath(entry.link))
    elif entry.blob is not None:  # its own object: written beside the others
        parallel.make_room()  # before the file is opened: it is always handed on
        fd = out.create(name)
        job: Callable[[], None]
        if _copyable(repo, entry.blob):
            job = functools.partial(out.copy, fd, repo, entry, parallel.stop)
        else:
            chunks = content(repo, entry, None, identities)
            job = functools.partial(out.fill, fd, mode, entry.mtime, chunks, parallel.stop)
        parallel.submit(job, entry.blob.ref.stored)
    else:  # from the pack, in order
        fd = out.create(name)
        chunks = content(repo, entry, pack, identities, on_bytes)
        out.fill(fd, mode, entry.mtime, chunks, parallel.stop)
