"""The tar streams a restore extracts: every member checked again as it is made.

``assembled``: a format-2 service from its objects and pack (each object's
hashes checked at its end, ``object_reader.open_object``; decrypted with the
identities given when the backup is encrypted); ``archive_stream``: a format-1
archive as it was, its stored bytes hashed on the way; ``extracted``: a tar
moved under the data directory and owned by the image's user.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import tarfile
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, BinaryIO

from monctl.errors import IntegrityError
from monctl.repository import Repository
from monctl.repository.archive import HashingReader, decompress_stream
from monctl.repository.filelist import FileEntry, ServiceFiles
from monctl.repository.manifest import Manifest
from monctl.repository.object_reader import read_packed
from monctl.repository.objects import READ_SIZE
from monctl.repository.tar_safety import check_member
from monctl.repository.tar_stream import Member, end_marker, header, members, padding
from monctl.services.model import DataVolume, Service

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.age import Identities
    from monctl.repository import RepositoryLike


def extracted(tar: BinaryIO, data_root: str, data: DataVolume) -> Iterator[bytes]:
    """The tar stream as it is extracted: every member checked again, moved from
    ``data_root`` to the basename of the data path, owned by the image's user.

    The root directory comes first with that owner, so the volume's own root
    belongs to the service even when the archive does not name it.
    """
    base = posixpath.basename(data.path.rstrip("/"))
    root = Member(base, b"5", 0, 0o755, data.uid, data.gid, time.time())
    yield header(root)
    for member, body in members(tar):
        check_member(member, data_root)
        name = base + posixpath.normpath(member.name)[len(posixpath.normpath(data_root)) :]
        link = member.linkname
        if member.islnk():
            link = base + posixpath.normpath(link)[len(posixpath.normpath(data_root)) :]
        mode = member.mode & 0o1777  # no setuid/setgid bits from an archive
        yield header(
            Member(name, member.type, member.size, mode, data.uid, data.gid, member.mtime, link)
        )
        while chunk := body.read():
            yield chunk
        if pad := padding(member.size):  # never an empty piece: it would end a chunked body
            yield b"\0" * pad
    yield end_marker()


TAR_TYPES = {"dir": tarfile.DIRTYPE, "symlink": tarfile.SYMTYPE, "hardlink": tarfile.LNKTYPE}


def assembled(
    repo: RepositoryLike,
    files: ServiceFiles,
    data: DataVolume,
    identities: Identities | None = None,
) -> Iterator[bytes]:
    """A format-2 service as the tar stream a restore extracts: the data path's
    basename first (owned by the image's user), then every entry in order with
    that owner, each file's bytes from its object or the pack. Every member is
    checked again as it is made; any object or packed file that does not hash
    as recorded raises IntegrityError before the stream ends."""
    repo = Repository.of(repo)
    base = posixpath.basename(data.path.rstrip("/"))
    yield header(Member(base, tarfile.DIRTYPE, 0, 0o755, data.uid, data.gid, time.time()))
    with contextlib.ExitStack() as stack:
        pack = None
        if files.pack is not None:
            pack = stack.enter_context(repo.open_object(files.pack, "the pack", None, identities))
        for entry in files.files:
            name = f"{base}/{entry.path}"
            kind = TAR_TYPES.get(entry.kind, tarfile.REGTYPE)
            link = f"{base}/{entry.link}" if entry.kind == "hardlink" else entry.link
            member = Member(
                name, kind, entry.size if entry.kind == "file" else 0,
                entry.mode & 0o1777, data.uid, data.gid, entry.mtime, link,
            )  # fmt: skip
            check_member(member, base)
            yield header(member)
            if entry.kind == "file":
                yield from content(repo, entry, pack, identities)
                if pad := padding(entry.size):
                    yield b"\0" * pad
        if pack is not None and pack.read(1):  # the end: the pack's own hashes
            raise IntegrityError("the pack holds more than its files")
    yield end_marker()


def content(
    repo: RepositoryLike,
    entry: FileEntry,
    pack: BinaryIO | None,
    identities: Identities | None,
    on_bytes: Callable[[int], None] | None = None,
) -> Iterator[bytes]:
    """The plaintext of file ``entry`` from its object (``on_bytes``: its stored bytes
    as they are read) or the next bytes of the ``pack``; checked at the end of each."""
    repo = Repository.of(repo)  # every reader is given a Repository or a bare Storage
    if entry.blob is not None:
        what = f"the object of {entry.path}"
        with repo.open_object(entry.blob, what, on_bytes, identities) as plain:
            while data := plain.read(READ_SIZE):
                yield data
        return
    yield from read_packed(pack if pack is not None else io.BytesIO(), entry, "the pack")


def archive_stream(repo: RepositoryLike, manifest: Manifest, service: Service) -> Iterator[bytes]:
    """Format 1: the archive as restore extracts it (``extracted``), its stored bytes
    hashed on the way and compared with the manifest at the end."""
    repo = Repository.of(repo)
    assert service.data is not None
    entry = manifest.archive(service.name)
    with repo.open_archive(manifest, service.name) as stored:
        hashing = HashingReader(stored)
        tar = decompress_stream(io.BufferedReader(hashing), manifest.compression)
        yield from extracted(tar, entry.data_root, service.data)
        hashing.drain()
    if hashing.size != entry.size or hashing.sha256 != entry.sha256:
        raise IntegrityError(
            f"{entry.archive} changed since it was verified (sha256 "
            f"{hashing.sha256[:16]}…, the manifest says {entry.sha256[:16]}…); "
            "the live data was not touched"
        )
