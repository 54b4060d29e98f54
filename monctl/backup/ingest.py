"""One service's data into the repository: tar streams in, a format-2 file list out.

``Ingest`` reads tar streams from the engine member by member (``tar_stream``,
every member checked by ``tar_safety`` as it passes) and turns each into a
``FileEntry``. A file's bytes go

- to an object of its own when it lies in an immutable unit, matches the
  declaration's ``objects`` globs, or is large (``SHARED_SIZE``): hashed piece
  by piece as it streams (``monctl/repository/index.py``); when the repository already holds the
  same plaintext (``index.Index``), nothing is written and the existing object
  is referenced; otherwise it is encoded (``objects``) into a spool of the
  backup's staging batch and kept under its hash;
- else to the service's pack: one object per backup and service holding the
  other files' bytes back to back (small or changing files).

``plan`` decides, from the declaration's listing, which immutable units the
repository holds unchanged (reused without being read) and which must be
read, and whether one whole read costs less than one request per unit.
"""

from __future__ import annotations

import fnmatch
import hashlib
import os
import posixpath
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

from monctl.errors import IntegrityError
from monctl.repository.filelist import FileEntry, Stats
from monctl.repository.index import IN_MEMORY, Index, ObjectStore
from monctl.repository.objects import Blob, Encoder
from monctl.repository.tar_safety import check_member
from monctl.repository.tar_stream import Member, members
from monctl.result import SILENT, Progress
from monctl.services.model import Layout

if TYPE_CHECKING:  # pragma: no cover
    from monctl.backup.ingest_workers import Workers
    from monctl.repository.index import Staging

# A file this large is an object of its own whatever the declaration says: unchanged, it is
# shared between backups (a plugin, an index file); changed, it costs what packing it would.
SHARED_SIZE = 1024 * 1024
# One more archive request costs about as much as transferring this many bytes
# (~60 ms per request against ~400 MB/s on the reference machine, bench/README.md).
# MONCTL_BACKUP_REQUEST_BYTES overrides it (an engine far away: more; 0: every unit
# that must be read is asked for on its own, however small).
REQUEST_BYTES = 24 * 1024 * 1024


def request_bytes() -> int:
    value = os.environ.get("MONCTL_BACKUP_REQUEST_BYTES", "")
    return int(value) if value.isdigit() else REQUEST_BYTES


_S_IFMT, _S_IFDIR, _S_IFREG = 0o170000, 0o040000, 0o100000


class Readable(Protocol):
    """A member's data: a tar stream's (``tar_stream.Data``) or a host file's."""

    def pieces(self) -> Iterator[bytes | memoryview]: ...


class Opened(Protocol):
    """A file open on its own, to be read on a worker (``host_read.OpenFile``)."""

    def pieces(self) -> Iterator[bytes | memoryview]: ...

    def close(self) -> None: ...


@runtime_checkable
class Detachable(Readable, Protocol):
    """A host read's file (``host_read.HostData``): it can be opened now and read later,
    on a worker, once the walk has moved on; a tar member's data cannot."""

    def detach(self) -> Opened: ...


def _entry_of(name: str, member: Member, kind: str, **extra: Any) -> FileEntry:
    """``member``'s file-list entry under ``name`` (mode bits and time as stored)."""
    mode, mtime = member.mode & 0o7777, max(0, int(member.mtime))
    return FileEntry(name, kind, mode, member.uid, member.gid, mtime, **extra)


@dataclass(frozen=True)
class Listed:
    kind: str  # "file", "dir", other
    size: int
    mtime: int


def parse_listing(output: str, path: str) -> dict[str, Listed] | None:
    """``<mode hex> <size> <mtime> <path>`` lines as {relative path: Listed}; None
    when any line does not parse or lies outside ``path`` (then read everything)."""
    found: dict[str, Listed] = {}
    prefix = path.rstrip("/") + "/"
    for line in output.splitlines():
        parts = line.split(" ", 3)
        if len(parts) != 4 or not parts[3].startswith(prefix):
            return None
        try:
            mode, size, mtime = int(parts[0], 16), int(parts[1]), int(parts[2])
        except ValueError:
            return None
        kind = {_S_IFDIR: "dir", _S_IFREG: "file"}.get(mode & _S_IFMT, "other")
        found[parts[3][len(prefix) :]] = Listed(kind, size, mtime)
    return found


@dataclass
class Plan:
    reuse: dict[str, list[FileEntry]]  # unit -> its entries, from the repository
    read: list[str]  # top-level names to read one by one
    whole: bool  # read everything in one stream instead (skipping reused units)

    def note(self) -> str | None:
        """What the plan saved, for the report (None when nothing was reused)."""
        if not self.reuse:
            return None
        how = "in one request" if self.whole else "one request each"
        unread = "skipped in the stream" if self.whole else "not read"
        return f"{len(self.reuse)} unit(s) reused ({unread}), {len(self.read)} read ({how})"


def plan(
    listed: dict[str, Listed] | None,
    layout: Layout,
    known: dict[str, list[FileEntry]],
    index: Index,
    full: bool,
) -> Plan:
    """Which units to reuse, which names to read, and how (see the module doc)."""
    if listed is None or not layout.units or full:
        return Plan({}, [], True)
    unit_re = re.compile(layout.units)
    tops: dict[str, dict[str, Listed]] = {}
    for rel, info in listed.items():
        tops.setdefault(rel.split("/", 1)[0], {})[rel] = info
    reuse: dict[str, list[FileEntry]] = {}
    read: list[str] = []
    reused_bytes = 0
    for top in sorted(tops):
        entries = known.get(top)
        if unit_re.fullmatch(top) and entries and _unchanged(entries, tops[top], index):
            reuse[top] = entries
            reused_bytes += sum(e.size for e in entries)
        else:
            read.append(top)
    return Plan(reuse, read, whole=reused_bytes <= len(read) * request_bytes())


def _unchanged(entries: list[FileEntry], listed: dict[str, Listed], index: Index) -> bool:
    """The unit's recorded entries match the listing exactly, and their objects exist."""
    if {e.path for e in entries} != set(listed):
        return False
    for e in entries:
        info = listed[e.path]
        if e.kind == "dir":
            if info.kind != "dir":
                return False
        elif e.kind != "file" or info.kind != "file":
            return False  # links in a unit: read it again rather than guess
        elif (info.size, info.mtime) != (e.size, e.mtime) or (
            e.size and (e.blob is None or not index.present_blob(e.blob))
        ):
            return False
    return True


@dataclass
class Ingest:
    """Entries, objects and the pack of one service, as its streams are read."""

    service: str
    layout: Layout
    staging: Staging
    index: Index
    mode: str  # auto, zstd, gzip, none
    full: bool = False
    progress: Progress = SILENT
    recipients: tuple[str, ...] = ()  # age public keys: every object encrypted to them
    tops: dict[str, list[FileEntry]] = field(default_factory=dict)
    read_bytes: int = 0
    store: ObjectStore = field(init=False)
    _pack: Encoder | None = None
    _unit_re: re.Pattern[str] | None = None
    _files: set[str] = field(default_factory=set)  # file paths read: hard link targets
    _shared: dict[str, int] = field(default_factory=dict)  # reused units' objects
    _workers: Workers | None = None  # files read on threads of their own (a host read)

    def __post_init__(self) -> None:
        self._unit_re = re.compile(self.layout.units) if self.layout.units else None
        self.store = ObjectStore(self.staging, self.index, self.mode, self.full, self.recipients)

    # -- streams -----------------------------------------------------------------
    def _counted(self, chunks: Iterable[bytes]) -> Iterator[bytes]:
        for chunk in chunks:
            self.read_bytes += len(chunk)
            self.progress.moved(self.service, len(chunk))
            yield chunk

    def add_stream(self, chunks: Iterable[bytes], root: str, *, keep_root: bool,
                   skip: frozenset[str] = frozenset()) -> None:  # fmt: skip
        """Every member of a tar stream whose top entry is ``root``: the data
        directory itself (``keep_root`` false: names are made relative to it) or a
        top-level name below it (a unit: names keep it). Members under a top-level
        name in ``skip`` (units reused from the repository) are passed over."""
        self.add_members(members(self._counted(chunks)), root, keep_root=keep_root, skip=skip)

    def count(self, n: int) -> None:
        """``n`` bytes read (a host read's files: ``host_read``)."""
        self.read_bytes += n
        self.progress.moved(self.service, n)

    def add_members(self, pairs: Iterable[tuple[Member, Readable | None]], root: str, *,
                    keep_root: bool, skip: frozenset[str] = frozenset()) -> None:  # fmt: skip
        """``add_stream`` of members already apart: a tar stream's, or ``host_read``'s
        (whose data has ``pieces()`` as a tar member's has)."""
        try:
            for member, data in pairs:
                self._add(member, data, root, keep_root, skip)
            if self._workers is not None:
                self._workers.drain(self)
        except BaseException:
            if self._workers is not None:  # no worker reads on once the data is let go
                self._workers.stop()
            raise

    def _add(self, member: Member, data: Readable | None, root: str, keep_root: bool,
             skip: frozenset[str]) -> None:  # fmt: skip
        check_member(member, root)
        strip = len(root) + 1
        name = posixpath.normpath(member.name)
        if not keep_root:
            if name == root:
                return  # the data directory itself: restore makes it
            name = name[strip:]
        if name.split("/", 1)[0] in skip:
            return
        link = member.linkname
        if member.islnk():
            link = posixpath.normpath(link)
            link = link if keep_root else link[strip:]
            if link not in self._files:
                raise IntegrityError(
                    f"{self.service}: hard link {name[:120]!r} points at no file read before it"
                )
        slot = self.tops.setdefault(name.split("/", 1)[0], [])
        if member.isfile() and isinstance(data, Detachable) and self._is_object(name, member):
            self._parallel().submit(self, name, member, data.detach(), slot)
        else:
            slot.append(self._entry(name, member, data, link))
        if member.isfile():
            self._files.add(name)

    def reuse(self, top: str, entries: list[FileEntry]) -> None:
        self.tops[top] = list(entries)
        for e in entries:
            if e.blob is not None:
                self._shared[e.blob.ref.id] = e.blob.ref.stored

    # -- members -----------------------------------------------------------------
    def _entry(self, name: str, member: Member, data: Readable | None, link: str) -> FileEntry:
        def entry(kind: str, **extra: Any) -> FileEntry:
            return _entry_of(name, member, kind, **extra)

        if member.isdir():
            return entry("dir")
        if member.issym():
            return entry("symlink", link=member.linkname)
        if member.islnk():
            return entry("hardlink", link=link)
        assert data is not None  # a file's member always has its data
        if self._is_object(name, member):
            compressed = self._compressed(name)
            store = self.store.whole if member.size <= IN_MEMORY else self.store.stream
            blob = store(data.pieces(), compressed)
            return self.object_entry(name, member, blob)
        return entry("file", size=member.size, sha256=self._packed(data))

    @staticmethod
    def object_entry(name: str, member: Member, blob: Blob) -> FileEntry:
        return _entry_of(name, member, "file", size=blob.size, sha256=blob.sha256, blob=blob)

    def _is_object(self, name: str, member: Member) -> bool:
        """A file stored as an object of its own (else packed)."""
        return member.size >= SHARED_SIZE or bool(member.size and self._as_object(name))

    def _compressed(self, name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, g) for g in self.layout.compressed)

    def _parallel(self) -> Workers:
        if self._workers is None:
            from monctl.backup.ingest_workers import Workers

            self._workers = Workers()
        return self._workers

    def _as_object(self, path: str) -> bool:
        top, _, rest = path.partition("/")
        if rest and self._unit_re is not None and self._unit_re.fullmatch(top):
            return True
        return any(fnmatch.fnmatchcase(path, g) for g in self.layout.objects)

    def _packed(self, data: Readable) -> str:
        sha = hashlib.sha256()
        for piece in data.pieces():
            if self._pack is None:
                codec = "zstd" if self.mode == "auto" else self.mode
                self._pack = Encoder(codec, self.staging.spool(), self.recipients)
            sha.update(piece)
            self._pack.write(piece)
        return sha.hexdigest()

    # -- the result --------------------------------------------------------------
    def abort(self) -> None:
        """The read failed: stop the pack's encoder (its age thread, if one runs) and
        the workers (each closes its file)."""
        if self._workers is not None:
            self._workers.stop()
        if self._pack is not None:
            self._pack.abort()

    def finish(self) -> tuple[tuple[FileEntry, ...], Blob | None, Stats]:
        """The entries (top-level names in order), the pack, the figures."""
        store = self.store
        pack: Blob | None = None
        if self._pack is not None:
            blob = self._pack.finish()
            known = None if self.full else self.index.known(blob.sha256, blob.size)
            if known is not None:  # the same small files as last time
                self.staging.drop(self._pack.spool)
                store.reused[known.ref.id] = known.ref.stored
                pack = known
            else:
                pack = store.keep(self._pack.spool, blob)
        if self._workers is not None:
            self._workers.stop()  # drained by every add_members: nothing is pending
        files = tuple(e for top in sorted(self.tops) for e in self.tops[top])
        if len(files) != len({e.path for e in files}):
            raise IntegrityError(f"{self.service}: the data was read twice in part")
        reused = {**self._shared, **store.reused}
        reused = {k: v for k, v in reused.items() if not self.index.written(k)}
        stats = Stats(
            read_bytes=self.read_bytes,
            written_bytes=store.written,
            new_objects=store.new_objects,
            reused_objects=len(reused),
            reused_bytes=sum(reused.values()),
        )
        return files, pack, stats
