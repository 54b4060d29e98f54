"""Writing objects whose keys are known only once their bytes are (content addresses).

A content-addressed object is named by the hash of what is stored, which is
known only after the last byte has passed; and a backup writes many objects
whose durability only matters together, at the moment its manifest is
written. So a ``Staging`` is a batch: bytes go to a private ``Spool``; the
caller then ``keep``s the spool under its key (or ``drop``s it, when the
object turned out to be in the repository already); ``commit`` makes every
kept object durable and visible. Leaving the batch drops what was not committed.

- ``LocalStaging``: a spool is a partial file under the batch's prefix (same
  filesystem as its final place); ``commit`` flushes the filesystem once
  (``syncfs``: one journal commit for the whole batch instead of an fsync per
  object, which on ext4 costs ~10 ms each), renames every kept spool to its
  key, and flushes again so the renames are durable too. A key only ever names
  complete, durable bytes; a crash leaves partial files, which ``list`` ignores
  and ``clean_partials`` removes.
- ``SpoolStaging`` (S3, or any ``Storage``): a spool is a temporary file (in
  memory up to 8 MiB), ``keep`` uploads it with ``Storage.put`` (atomic:
  one PUT or a multipart upload aborted on failure), ``commit`` has nothing left
  to do. An object uploaded by a batch that fails is not deleted: another
  backup may be writing the same object at the same moment (same key, same
  bytes); the repository's garbage collection removes it if nothing uses it.

Two batches that keep the same key keep the same bytes (the key is their
hash), so neither can spoil the other's object: the last rename or PUT wins
with identical content.
"""

from __future__ import annotations

import contextlib
import errno
import os
import re
import secrets
import tempfile
import threading
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, TYPE_CHECKING

from monctl.adapters.disk import DirectWriter, start_writeback, syncfs
from monctl.errors import StorageError

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage import Spool, Storage

MEMORY_SPOOL = 8 * 1024 * 1024  # SpoolStaging keeps smaller objects in memory
READ_SIZE = 1024 * 1024


class FileSpool:
    """Bytes written to a file that is not yet an object. An OSError while writing
    (a full disk) is raised as ``fail`` makes it: a StorageError naming the place."""

    def __init__(
        self,
        file: IO[bytes],
        path: Path | None = None,
        fail: Callable[[OSError], StorageError] | None = None,
    ) -> None:
        self.file = file
        self.path = path  # LocalStaging: the partial file
        self.size = 0
        self.fail = fail
        self.written_back = False  # its tail written and its writeback started (``done``)
        # A local spool is an object's bytes, not read again soon: past the page cache.
        self.direct = DirectWriter(file.fileno()) if path is not None else None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        try:
            if self.direct is not None:
                self.direct.write(data)
            else:
                self.file.write(data)
        except OSError as e:
            if self.fail is None:
                raise
            raise self.fail(e) from None
        self.size += len(data)

    def write_all(self, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
        """``write`` each piece, in order."""
        for piece in pieces:
            self.write(piece)

    def done(self) -> None:
        """The last byte is written: a local spool's tail goes to the file and its
        writeback starts now, on the writer's thread (``keep`` would do it otherwise)."""
        if self.direct is None or self.written_back:
            return
        try:
            self.direct.finish()
        except OSError as e:
            if self.fail is None:
                raise
            raise self.fail(e) from None
        with contextlib.suppress(OSError):
            start_writeback(self.file.fileno())
        self.written_back = True

    def close(self) -> None:
        if self.direct is not None:
            self.direct.release()
        with contextlib.suppress(OSError):
            self.file.close()


PARTIAL_RE = re.compile(r"\.partial-[0-9a-f]{16}$")  # what clean_partials finds


def partial_name(name: str) -> str:
    """A file that is not an object yet (``PARTIAL_RE``): listings skip it."""
    return f"{name}.partial-{secrets.token_hex(8)}"


def make_dirs_below(root: Path, directory: Path) -> None:
    """Create ``directory`` (and its parents) below ``root``, never ``root`` itself: a
    destination removed or unmounted during a run must fail (ENOENT), not be made
    again on whatever disk holds its mount point."""
    if not root.is_dir():
        raise FileNotFoundError(errno.ENOENT, os.strerror(errno.ENOENT), str(root))
    directory.mkdir(parents=True, exist_ok=True)


def fsync_path(path: Path) -> None:
    """fsync a file or directory (a rename is durable once its directory is); not
    every filesystem allows it on a directory (some NFS): then nothing."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(fd)
    except OSError:
        pass
    finally:
        os.close(fd)


@dataclass
class LocalStaging:
    """Staging in a local directory: partial files under ``<root>/<prefix>``."""

    root: Path
    prefix: str
    error: Callable[[str, OSError], StorageError]
    _open: list[FileSpool] = field(default_factory=list)
    # (spool file, final path, replace): paths only, so the closed file objects (and
    # their buffers, 8 KiB each) go as soon as they are kept, not at the commit.
    _kept: list[tuple[Path, Path, bool]] = field(default_factory=list)
    # The next spool, being created on a thread of its own: creating a file costs
    # the filesystem ~0.5-1 ms, paid while the current one is filled instead.
    _next: Future[FileSpool] | None = None
    _maker: ThreadPoolExecutor | None = None
    _started: bool = False  # the root existed once: it is not made again (make_dirs_below)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def _create(self) -> FileSpool:
        directory = self.root.joinpath(*self.prefix.strip("/").split("/"))
        path = directory / partial_name("spool")
        refused = linked_error(self.root, str(self.root), path)
        if refused is not None:
            raise refused
        if self._started:
            make_dirs_below(self.root, directory)
        else:  # the batch's first spool may make the destination
            directory.mkdir(parents=True, exist_ok=True)
            self._started = True
        return FileSpool(open(path, "xb", buffering=0), path, self._spool_failed)

    def _spool_failed(self, e: OSError) -> StorageError:
        return self.error("cannot write an object", e)

    def spool(self) -> FileSpool:
        with self._lock:  # ingest's workers ask for spools too
            return self._spool()

    def _spool(self) -> FileSpool:
        if self._maker is None:
            self._maker = ThreadPoolExecutor(1, thread_name_prefix="monctl-spool")
        pending, self._next = self._next, self._maker.submit(self._create)
        try:
            spool = pending.result() if pending is not None else self._create()
        except OSError as e:
            raise self.error("cannot write an object", e) from None
        self._open.append(spool)
        return spool

    def _final(self, key: str) -> Path:
        from monctl.adapters.storage import check_key

        final = self.root.joinpath(*check_key(key).split("/"))
        refused = linked_error(self.root, str(self.root), final)
        if refused is not None:
            raise refused
        return final

    def keep(self, spool: Spool, key: str, *, replace: bool = False) -> None:
        assert isinstance(spool, FileSpool)
        final = self._final(key)
        try:
            spool.done()
            spool.file.close()
        except OSError as e:
            self.drop(spool)
            raise self.error(f"cannot write {key}", e) from None
        self._open.remove(spool)
        assert spool.path is not None
        self._kept.append((spool.path, final, replace))

    def drop(self, spool: Spool) -> None:
        assert isinstance(spool, FileSpool)
        spool.close()
        if spool in self._open:
            self._open.remove(spool)
        if spool.path is not None:
            with contextlib.suppress(OSError):
                spool.path.unlink()

    def commit(self) -> None:
        if not self._kept:
            return
        kept, self._kept = self._kept, []
        try:
            flushed = syncfs(self.root)
            if not flushed:
                for path, _, _ in kept:
                    fsync_path(path)
            parents = set()
            for path, final, replace in kept:
                make_dirs_below(self.root, final.parent)
                if final.is_file() and not replace:
                    # The same key holds the same bytes; refresh its time so a
                    # garbage collection running now sees it as just written.
                    path.unlink()
                    os.utime(final)
                else:
                    os.replace(path, final)
                    parents.add(final.parent)
            if not (flushed and syncfs(self.root)):
                for parent in parents:
                    fsync_path(parent)
        except OSError as e:
            for path, _, _ in kept:
                with contextlib.suppress(OSError):
                    path.unlink()
            raise self.error("cannot write the objects", e) from None

    def close(self) -> None:
        """Drop every spool not committed (a failed or interrupted batch)."""
        if self._maker is not None:
            self._maker.shutdown(wait=True)
            if self._next is not None and self._next.exception() is None:
                self._open.append(self._next.result())
            self._next = self._maker = None
        for spool in list(self._open):
            self.drop(spool)
        for path, _, _ in self._kept:
            with contextlib.suppress(OSError):
                path.unlink()
        self._kept = []


def through_link(root: Path, path: Path) -> Path | None:
    """The first directory between ``root`` and ``path`` (both excluded) that is a
    symbolic link, or None. The root may be a link: that is the operator's choice of
    destination; a link inside it (``objects/``, ``retired/``, a backup's folder) would
    lead reads, writes and deletions out of the destination, so none is followed."""
    d = root
    for part in path.relative_to(root).parts[:-1]:
        d = d / part
        if d.is_symlink():
            return d
    return None


def linked_error(root: Path, location: str, path: Path) -> StorageError | None:
    """The error refusing ``path`` when a directory on its way is a link (``through_link``)."""
    link = through_link(root, path)
    if link is None:
        return None
    return StorageError(
        f"{link.relative_to(root).as_posix()} in {location} is a symbolic link: "
        "monctl never follows a link inside the destination",
        hint="replace the link by the directory itself (only the destination itself may be a link)",
    )


def local_staging(
    root: Path, prefix: str, error: Callable[[str, OSError], StorageError]
) -> contextlib.closing[LocalStaging]:
    return contextlib.closing(LocalStaging(root, prefix, error))


class SpoolStaging:
    """Staging through ``Storage.put``: spools are temporary files, uploaded on ``keep``."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage
        self._open: list[FileSpool] = []

    def spool(self) -> FileSpool:
        # An unnamed temporary file: nothing is left behind, even on SIGKILL. Past
        # MEMORY_SPOOL it is on the disk of the temporary directory: full is a storage
        # error there too.
        spool = FileSpool(
            tempfile.SpooledTemporaryFile(max_size=MEMORY_SPOOL),  # noqa: SIM115
            fail=_temporary_failed,
        )
        self._open.append(spool)  # one list operation: safe from ingest's workers
        return spool

    def keep(self, spool: Spool, key: str, *, replace: bool = False) -> None:
        assert isinstance(spool, FileSpool)
        try:
            spool.file.seek(0)

            def chunks() -> Iterator[bytes]:
                while data := spool.file.read(READ_SIZE):
                    yield data

            self.storage.put(key, chunks(), size_hint=spool.size)
        finally:
            self.drop(spool)

    def drop(self, spool: Spool) -> None:
        assert isinstance(spool, FileSpool)
        spool.close()
        if spool in self._open:
            self._open.remove(spool)

    def commit(self) -> None:
        return None

    def close(self) -> None:
        for spool in list(self._open):
            self.drop(spool)


def _temporary_failed(e: OSError) -> StorageError:
    from monctl.adapters.storage.os_errors import storage_error

    return storage_error(
        e,
        tempfile.gettempdir(),
        "cannot spool an object to upload",
        hint="free space there, or point TMPDIR at a disk with room (objects over 8 MiB "
        "wait there for their upload)",
    )


def spool_staging(storage: Storage) -> contextlib.closing[SpoolStaging]:
    return contextlib.closing(SpoolStaging(storage))
