"""What a restore may extract: the safety and completeness checks of a backup's tar stream.

``Checker`` judges each member of a stream (read by ``tar_stream.members``)
and refuses anything a restore must not extract: absolute names, "..",
members outside the data directory, device files, and links that could lead
out of it. ``check_tar`` runs it over a whole stream (``verify``); ``restore``
runs the same checker on the very stream it extracts.

Links, the rule chosen: a symlink's target must be relative and may not
contain ".." at all, and a hard link's target must be a name inside the data
directory (no "..", not absolute). Judging each name on its own is not enough
when links may climb: ``b -> .`` then ``a -> b/..`` leaves the directory in
two steps that each look harmless. With no ".." anywhere — in member names or
link targets — every step of resolving any path only descends or stays, so
no chain of links, in any order, can reach outside the data directory; no
data directory of the stack holds such a link. (Resolving each member against
the links created before it would also catch the example, but not a link made
dangerous by a later one.)
"""

from __future__ import annotations

import posixpath
from dataclasses import dataclass
from typing import Any, BinaryIO

from monctl.errors import IntegrityError
from monctl.repository.tar_stream import Member, members, show


@dataclass(frozen=True)
class TarCheck:
    """What ``check_tar`` saw in an archive."""

    members: int
    files: int
    dirs: int
    links: int
    bytes: int  # sum of regular file sizes

    def to_json(self) -> dict[str, Any]:
        return {
            "members": self.members,
            "files": self.files,
            "dirs": self.dirs,
            "links": self.links,
            "bytes": self.bytes,
        }


def _root(data_root: str) -> str:
    stripped = data_root.strip("/")
    return posixpath.normpath(stripped) if stripped else ""


def _inside(root: str, path: str) -> bool:
    """True when the normalized relative ``path`` is ``root`` or below it."""
    if path.startswith("/") or path == ".." or path.startswith("../"):
        return False
    return not root or path == root or path.startswith(root + "/")


def check_member(member: Member, data_root: str = "") -> None:
    """Raise IntegrityError unless ``member`` is safe to extract under ``data_root``.

    Safe: a regular file, directory, symlink or hard link; a relative name with
    no ".." component, at or below ``data_root`` (a relative directory name such
    as "prometheus"; "" allows any relative name); a symlink with a relative
    target free of ".."; a hard link to a name inside ``data_root``.
    """
    root = _root(data_root)
    name = member.name
    what = f"archive member {show(name)}"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise IntegrityError(f"{what} has an absolute path")
    if ".." in name.split("/"):
        raise IntegrityError(f"{what} contains '..'")
    if "\0" in name:
        raise IntegrityError(f"{what} contains a NUL byte")
    norm = posixpath.normpath(name) if name else ""
    if norm in ("", "."):
        if root or not member.isdir():
            raise IntegrityError(f"{what} has no name, or names the extraction directory itself")
    elif not _inside(root, norm):
        raise IntegrityError(f"{what} lies outside the data directory {show(data_root)}")
    if member.isdev() or not (
        member.isfile() or member.isdir() or member.issym() or member.islnk()
    ):
        raise IntegrityError(f"{what} is a device file or special file")
    if member.issym() or member.islnk():
        target = member.linkname
        if not target or target.startswith("/") or "\0" in target:
            raise IntegrityError(f"{what} links to the absolute or empty path {show(target)}")
        if ".." in target.split("/"):
            raise IntegrityError(f"{what} links through '..' ({show(target)})")
        # Hard link targets are member names, relative to the archive root.
        if member.islnk() and not _inside(root, posixpath.normpath(target)):
            raise IntegrityError(f"{what} links outside the data directory ({show(target)})")


class Counter:
    """Counts what passes, for the report."""

    def __init__(self) -> None:
        self.members = self.files = self.dirs = self.links = self.bytes = 0

    def add(self, member: Member) -> None:
        self.members += 1
        if member.isfile():
            self.files += 1
            self.bytes += member.size
        elif member.isdir():
            self.dirs += 1
        else:
            self.links += 1

    def result(self) -> TarCheck:
        return TarCheck(self.members, self.files, self.dirs, self.links, self.bytes)


def check_tar(fileobj: BinaryIO, data_root: str = "") -> TarCheck:
    """Read the whole uncompressed tar stream ``fileobj`` and check every member.

    Raise IntegrityError naming the first unsafe member (see ``check_member``),
    or when the tar is malformed or truncated (see ``tar_stream.members``).
    Return the counts. Memory stays bounded whatever the archive holds.
    """
    counter = Counter()
    for member, data in members(fileobj):
        check_member(member, data_root)
        counter.add(member)
        while data.read():
            pass
    return counter.result()
