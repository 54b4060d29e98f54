"""What a restore may extract: the safety and completeness checks of a backup's tar stream.

``check_tar`` reads an uncompressed tar stream (usually straight out of
``archive.decompress_stream``) and refuses anything a restore must not
extract: absolute names, "..", members or links outside the data directory,
device files, and a stream that stops before its end-of-archive marker
(tarfile alone would take a cut-off stream for the end). ``verify`` and
``restore`` both run it; it is kept apart from the codecs in ``archive``
because it judges the tar's contents, not its bytes.
"""

from __future__ import annotations

import io
import posixpath
import tarfile
from dataclasses import dataclass
from typing import Any, BinaryIO

from monctl.errors import IntegrityError
from monctl.ops.archive import READ_SIZE


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


def _inside(root: str, path: str) -> bool:
    """True when the normalized relative ``path`` is ``root`` or below it."""
    if path.startswith("/") or path == ".." or path.startswith("../"):
        return False
    return not root or path == root or path.startswith(root + "/")


def check_member(member: tarfile.TarInfo, data_root: str = "") -> None:
    """Raise IntegrityError unless ``member`` is safe to extract under ``data_root``.

    Safe: a regular file, directory, symlink or hard link; a relative name with
    no ".." component, at or below ``data_root`` (a relative directory name such
    as "prometheus"; "" allows any relative name); a link whose target resolves
    to a path at or below ``data_root`` (absolute link targets are refused: they
    would point wherever the restore runs, not into the data).
    """
    root = posixpath.normpath(data_root.strip("/")) if data_root.strip("/") else ""
    name = member.name
    what = f"archive member {name!r}"
    if name.startswith("/") or (len(name) > 1 and name[1] == ":"):
        raise IntegrityError(f"{what} has an absolute path")
    if ".." in name.split("/"):
        raise IntegrityError(f"{what} contains '..'")
    norm = posixpath.normpath(name)
    if norm != "." and not _inside(root, norm):
        raise IntegrityError(f"{what} lies outside the data directory {data_root!r}")
    if member.isdev() or not (
        member.isfile() or member.isdir() or member.issym() or member.islnk()
    ):
        raise IntegrityError(f"{what} is a device file or special file")
    if member.issym() or member.islnk():
        target = member.linkname
        if target.startswith("/"):
            raise IntegrityError(f"{what} links to the absolute path {target!r}")
        # Symlink targets are relative to the link's directory; hard link
        # targets are member names, relative to the archive root.
        base = posixpath.dirname(norm) if member.issym() else ""
        resolved = posixpath.normpath(posixpath.join(base, target))
        if not _inside(root, resolved):
            raise IntegrityError(f"{what} links outside the data directory ({target!r})")


class _TailWatch(io.RawIOBase):
    """Counts the bytes read and where the last non-NUL byte was."""

    def __init__(self, src: BinaryIO) -> None:
        self._src = src
        self.size = 0
        self.data_end = 0  # offset just past the last non-NUL byte

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        data = self._src.read(len(b))
        n = len(data)
        b[:n] = data
        kept = len(data.rstrip(b"\0"))
        if kept:
            self.data_end = self.size + kept
        self.size += n
        return n


def check_tar(fileobj: BinaryIO, data_root: str = "") -> TarCheck:
    """Read the whole uncompressed tar stream ``fileobj`` and check every member.

    Raise IntegrityError naming the first unsafe member (see ``check_member``),
    or when the tar is malformed or truncated: a member cut short, and also a
    stream that stops between members, since tarfile alone would take either
    for the end. The end-of-archive marker (at least two NUL blocks, nothing
    but NULs after it) must be there. Return the counts.
    """
    members = files = dirs = links = total = 0
    watch = _TailWatch(fileobj)
    try:
        with tarfile.open(fileobj=watch, mode="r|") as tar:
            for member in tar:
                check_member(member, data_root)
                members += 1
                if member.isfile():
                    files += 1
                    total += member.size
                elif member.isdir():
                    dirs += 1
                else:
                    links += 1
            end = tar.offset
        # Read on to the end of the stream, so a compressed stream cut short
        # after the tar's last member is caught too.
        buf = bytearray(READ_SIZE)
        while watch.readinto(buf):
            pass
    except tarfile.TarError as e:
        raise IntegrityError(f"the tar stream is malformed or truncated: {e}") from None
    except EOFError as e:
        raise IntegrityError(f"the tar stream is truncated: {e}") from None
    if watch.data_end > end or watch.size - end < 2 * tarfile.BLOCKSIZE:
        raise IntegrityError(
            f"the tar stream is truncated or damaged after {members} member(s): "
            "no end-of-archive marker"
        )
    return TarCheck(members=members, files=files, dirs=dirs, links=links, bytes=total)
