"""Reading several files of a service at once (``Ingest``, a host read).

The engine's tar stream comes one member after another; a host read
(``host_read``) can open each file as it is listed and hand it to a thread
(``host_read.OpenFile``). A worker reads, hashes and encodes a file into a
spool of its own and starts its writeback (``ObjectStore.prepare``; a small
file the repository holds already is only hashed); everything shared (the
index, the staging's keeps, the counts, the entries' order) is done on the
caller's thread as each file is collected, in order (``ObjectStore.settled``).
Reading, hashing and writing release the GIL (bench/README.md: what two
workers gain on two cores).
"""

from __future__ import annotations

import threading
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from typing import TYPE_CHECKING

from monctl.repository.filelist import FileEntry
from monctl.repository.index import IN_MEMORY, Prepared

if TYPE_CHECKING:  # pragma: no cover
    from monctl.backup.ingest import Ingest, Opened
    from monctl.repository.tar_stream import Member


class Workers:
    """Files stored as objects, ``WORKERS`` at a time (see the module's docstring)."""

    WORKERS = 2
    # Files submitted and not yet collected: a deep queue keeps both workers busy while
    # the caller's thread packs small files (4 in flight kept one busy on average), and
    # bounds the open descriptors and the bytes held (a small file is held whole, up to
    # 4 MiB; a larger one passes 1 MiB at a time).
    IN_FLIGHT = 16
    IN_FLIGHT_BYTES = 32 * 1024 * 1024

    def __init__(self) -> None:
        self.pool = ThreadPoolExecutor(self.WORKERS, thread_name_prefix="monctl-ingest")
        self.pending: deque[
            tuple[Future[Prepared], Callable[[Prepared], FileEntry], list[FileEntry], int]
        ]
        self.pending = deque()
        self.stopped = threading.Event()
        self.held = 0  # bytes of the files in flight (at most IN_MEMORY each)

    def submit(
        self, ingest: Ingest, name: str, member: Member, file: Opened, slot: list[FileEntry]
    ) -> None:
        """Store ``file`` (open, its own reader) as ``name``'s object; its entry goes to
        ``slot`` at the place it has now."""
        held = min(member.size, IN_MEMORY)
        while self.pending and (
            len(self.pending) >= self.IN_FLIGHT or self.held + held > self.IN_FLIGHT_BYTES
        ):
            self.collect(ingest)
        self.held += held
        compressed = ingest._compressed(name)
        store = ingest.store
        stopped = self.stopped

        def pieces() -> Iterator[bytes | memoryview]:
            for piece in file.pieces():
                if stopped.is_set():
                    raise _Stopped
                yield piece

        def work() -> Prepared:
            try:
                if stopped.is_set():
                    raise _Stopped
                return store.prepare(pieces(), member.size, compressed)
            finally:
                file.close()

        def settle(prepared: Prepared) -> FileEntry:
            self.held -= held
            blob = store.settled(prepared, compressed)
            ingest.count(member.size)
            return ingest.object_entry(name, member, blob)

        slot.append(_PENDING)
        self.pending.append((self.pool.submit(work), settle, slot, len(slot) - 1))

    def collect(self, ingest: Ingest) -> None:
        future, settle, slot, index = self.pending.popleft()
        try:
            slot[index] = settle(future.result())  # the file's failure, raised here
        except BaseException:
            self.stop()
            raise

    def drain(self, ingest: Ingest) -> None:
        while self.pending:
            self.collect(ingest)

    def stop(self) -> None:
        """Stop every worker and wait for them (each closes its file)."""
        self.stopped.set()
        self.pool.shutdown(wait=True)
        self.pending.clear()


class _Stopped(Exception):
    """Another file failed, or a signal came: this one stops where it is."""


_PENDING = FileEntry("", "file", 0, 0, 0, 0)  # a slot whose file a worker still reads
