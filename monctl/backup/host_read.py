"""Reading a held service's data straight from its volume's directory on this host.

When the engine is local and monctl root (``runtime.host_volume.locate``: the
same conditions as the direct restore), the data a backup holds consistent —
the snapshot's hard links, or the paused container's files — is a directory
here. ``members`` walks it and yields what the engine's archive (``docker cp``'s
tar stream) of the same path would: the same names (the top entry is the
path's basename), kinds, modes, owners, times, symlink targets, and hard links
to the first name of a file seen before — so ``Ingest`` takes either, and the
file list and objects of a backup are the same whichever way it was read
(``tests/e2e/test_backup_host_read.py`` compares them). What it saves is the
engine's work: its tar writer, its HTTP stream and monctl's tar parsing; and its
files can be opened as they are listed and stored two at a time
(``ingest_workers``). A first backup of 1 GiB took 1.7-2.0 s instead of 3.9-4.2 s
(bench/README.md, restore_bench.py's section).

The directory belongs to the service, so it is read as hostile: every
directory is opened relative to its parent's descriptor with O_NOFOLLOW (no
path passes through a symlink, whatever the service made of it meanwhile),
every file opened the same way and checked to be the very file listed (device
and inode) and to hold at least the bytes listed; depth and name length are
bounded as the tar reader bounds them. Sockets are left out, as the engine's
archive leaves them out; devices and FIFOs are yielded as such, for
``tar_safety`` to refuse as it refuses them from the engine.
"""

from __future__ import annotations

import os
import posixpath
import shutil
import stat
import tarfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

from monctl.errors import IntegrityError, OperationFailed
from monctl.repository.tar_stream import MAX_NAME, READ_SIZE, Member, show

MAX_DEPTH = 256  # far beyond any data directory of the stack; a deeper one is refused
DIR_FLAGS = os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC
FILE_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | os.O_CLOEXEC

_KINDS = {
    stat.S_IFDIR: tarfile.DIRTYPE,
    stat.S_IFREG: tarfile.REGTYPE,
    stat.S_IFLNK: tarfile.SYMTYPE,
    stat.S_IFIFO: tarfile.FIFOTYPE,
    stat.S_IFCHR: tarfile.CHRTYPE,
    stat.S_IFBLK: tarfile.BLKTYPE,
}


@dataclass
class HostData:
    """The data of one regular file of the walk, read when asked."""

    parent: int  # the open directory holding it (valid while the walk is at it)
    entry: str  # its name there
    name: str  # its member name, for messages
    listed: os.stat_result
    counted: Callable[[int], None]

    def pieces(self) -> Iterator[bytes]:
        """Exactly the listed size, in pieces; IntegrityError when the file is not the
        one listed any more or holds fewer bytes (it changed while held: a bug)."""
        for piece in _read(self):
            self.counted(len(piece))
            yield piece

    def detach(self) -> OpenFile:
        """The file opened now and checked, to be read on another thread once the walk
        has moved on (``Ingest`` reads several at once); not counted."""
        return OpenFile(_open(self), self.name, self.listed.st_size)


@dataclass
class OpenFile:
    """A file of the walk, open: ``pieces`` reads it and closes it, ``close`` when not."""

    fd: int
    name: str
    size: int

    def pieces(self) -> Iterator[bytes]:
        try:
            yield from _pieces(self.fd, self.name, self.size)
        finally:
            self.close()

    def close(self) -> None:
        if self.fd >= 0:
            fd, self.fd = self.fd, -1
            os.close(fd)


def _open(file: HostData) -> int:
    """``file`` opened without following a link, checked to be the very file listed."""
    try:
        fd = os.open(file.entry, FILE_FLAGS, dir_fd=file.parent)
    except OSError as exc:
        raise _changed(file.name, exc.strerror or str(exc)) from exc
    now = os.fstat(fd)
    if (now.st_dev, now.st_ino) != (file.listed.st_dev, file.listed.st_ino):
        os.close(fd)
        raise _changed(file.name, "another file took its name")
    return fd


def _read(file: HostData) -> Iterator[bytes]:
    fd = _open(file)
    try:
        yield from _pieces(fd, file.name, file.listed.st_size)
    finally:
        os.close(fd)


def _pieces(fd: int, name: str, size: int) -> Iterator[bytes]:
    """Exactly ``size`` bytes of ``fd``: IntegrityError when it holds fewer."""
    left = size
    while left > 0:
        piece = os.read(fd, min(left, READ_SIZE))
        if not piece:
            raise _changed(name, f"{left} bytes fewer than listed")
        left -= len(piece)
        yield piece


def _changed(name: str, why: str) -> IntegrityError:
    return IntegrityError(f"{show(name)} changed while its service's data was held ({why})")


def members(
    data: Path,
    relative: str,
    top: str,
    counted: Callable[[int], None],
    skip: frozenset[str] = frozenset(),
) -> Iterator[tuple[Member, HostData | None]]:
    """The members of the archive of ``data/relative`` (a directory), each with its
    data (None for anything but a regular file seen for the first time), the top entry
    named ``top`` (the basename of the path in the container, as the engine names it).
    Top-level names in ``skip`` (units reused from the repository) are not walked.

    ``data`` is the volume's ``_data`` as ``host_volume.locate`` found it; ``relative``
    a path below it, each component opened without following a link."""
    fd = _opened(data, relative, "read")
    try:
        yield _member(top, os.fstat(fd)), None
        yield from _walk(fd, top, 1, _Walk(counted, skip))
    finally:
        os.close(fd)


def remove(data: Path, relative: str) -> None:
    """Delete the directory ``data/relative`` (the snapshot a service made, once read),
    never through a link: its parent is opened as ``members`` opens a path, and the tree
    removed below that descriptor (``shutil.rmtree`` with ``dir_fd`` follows no link,
    and refuses a link in the snapshot's place). OSError or MonctlError when it cannot."""
    head, name = posixpath.split(relative.strip("/"))
    if name in ("", ".", ".."):
        raise OperationFailed(
            f"refusing to delete {show(relative)}: not a directory below the volume"
        )
    fd = _opened(data, head, "delete")
    try:
        shutil.rmtree(name, dir_fd=fd)
    finally:
        os.close(fd)


def _opened(data: Path, relative: str, doing: str) -> int:
    """``data/relative`` opened, each component without following a link."""
    parts = [p for p in relative.split("/") if p not in ("", ".")]
    if any(p == ".." for p in parts):
        raise OperationFailed(f"refusing to {doing} {show(relative)}: it leaves the volume")
    try:
        fd = os.open(data, DIR_FLAGS)
    except OSError as exc:
        raise OperationFailed(f"cannot open the volume's directory {data}: {exc.strerror}") from exc
    for part in parts:
        try:
            below = os.open(part, DIR_FLAGS, dir_fd=fd)
        except OSError as exc:  # ELOOP: a symlink where a directory was made
            os.close(fd)
            raise IntegrityError(
                f"refusing to {doing} {show(relative)} in {data}: {exc.strerror} "
                "(a link or no directory where the service made one)"
            ) from exc
        os.close(fd)
        fd = below
    return fd


def _member(name: str, info: os.stat_result, link: str = "") -> Member:
    kind = _KINDS.get(stat.S_IFMT(info.st_mode), b"?")
    size = info.st_size if kind == tarfile.REGTYPE else 0
    mode = stat.S_IMODE(info.st_mode)
    return Member(name, kind, size, mode, info.st_uid, info.st_gid, info.st_mtime, link)


class _Walk:
    """What one walk shares: hard links' first names, what to skip, the count."""

    def __init__(self, counted: Callable[[int], None], skip: frozenset[str]) -> None:
        self.counted = counted
        self.skip = skip
        self.seen: dict[tuple[int, int], str] = {}  # (device, inode) -> its first name

    def first_name(self, name: str, info: os.stat_result) -> str:
        """The name the file was first seen under: ``name``, or an earlier one (then
        this name is a hard link to it, as the engine's archive writes it)."""
        if info.st_nlink < 2:
            return name
        return self.seen.setdefault((info.st_dev, info.st_ino), name)


def _walk(
    fd: int, prefix: str, depth: int, walk: _Walk
) -> Iterator[tuple[Member, HostData | None]]:
    if depth > MAX_DEPTH:
        raise IntegrityError(f"{show(prefix)} lies more than {MAX_DEPTH} directories deep")
    with os.scandir(fd) as listing:  # sorted: the engine's archive walks in this order
        names = sorted(e.name for e in listing if not (depth == 1 and e.name in walk.skip))
    for entry in names:
        name = f"{prefix}/{entry}"
        if len(name.encode("utf-8", "surrogateescape")) > MAX_NAME:
            raise IntegrityError(f"{show(name)} is longer than {MAX_NAME} bytes")
        try:
            info = os.stat(entry, dir_fd=fd, follow_symlinks=False)
        except FileNotFoundError as exc:
            raise _changed(name, "removed while listed") from exc
        kind = stat.S_IFMT(info.st_mode)
        member = _member(name, info)
        if kind == stat.S_IFSOCK:
            continue  # the engine's archive leaves sockets out too
        if kind == stat.S_IFLNK:
            yield replace(member, linkname=os.readlink(entry, dir_fd=fd)), None
        elif kind == stat.S_IFREG and (first := walk.first_name(name, info)) != name:
            yield replace(member, type=tarfile.LNKTYPE, size=0, linkname=first), None
        elif kind == stat.S_IFREG:
            yield member, HostData(fd, entry, name, info, walk.counted)
        elif kind == stat.S_IFDIR:
            yield from _directory(fd, entry, member, info, depth, walk)
        else:
            yield member, None  # a device or FIFO: tar_safety refuses it


def _directory(
    fd: int, entry: str, member: Member, info: os.stat_result, depth: int, walk: _Walk
) -> Iterator[tuple[Member, HostData | None]]:
    try:
        below = os.open(entry, DIR_FLAGS, dir_fd=fd)
    except OSError as exc:
        raise _changed(member.name, exc.strerror or str(exc)) from exc
    try:
        now = os.fstat(below)
        if (now.st_dev, now.st_ino) != (info.st_dev, info.st_ino):
            raise _changed(member.name, "another directory took its name")
        yield member, None
        yield from _walk(below, member.name, depth + 1, walk)
    finally:
        os.close(below)
