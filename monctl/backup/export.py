"""``monctl backup export``: any backup as one plain tar, for recovery without monctl.

The stream is POSIX pax (ustar headers, a pax extended header only where a name,
link or number does not fit), readable by GNU tar, bsdtar and Python's tarfile.
One top directory per service (``grafana/``, ``loki/``, …) stands for its data
directory and holds every file, directory, symlink and hard link the backup
recorded, in the manifest's order (a directory before what it holds), with the
recorded mode (setuid/setgid dropped, as a restore drops them), owner and time.

Nothing new reads the repository: a format-2 service is assembled as a restore
assembles it (``restore_stream.content``: each object through
``object_reader.open_object``, the pack through ``read_packed``, decrypted with the
identities given), a format-1 archive is read member by member
(``tar_stream.members``) and its stored bytes hashed against the manifest; every
member is judged by ``tar_safety.check_member`` and written by
``tar_stream.header``.

Verified as it streams: an object's hashes are compared when its reader reaches
its end, which raises before the read that follows its last bytes returns. The
stream is therefore passed on one chunk behind (``export_sink.Behind``): the last bytes
of a file reach the output only once its object (or packed file) has checked out,
so not even a cut ``-`` stream carries bytes that failed their check. A mismatch
ends the export with IntegrityError (exit 10); a file output was being written
under a temporary name beside it, which is removed: no partial export is left
(``export_sink.py``).
stdout is cut there; a reader of a stream cut inside a member meets its end
("unexpected EOF"), and where the cut falls between members (which GNU tar would
take for a complete archive) a block follows that no tar reader takes for a
header (``POISON``): ``tar -x`` fails too, not only monctl's exit code.
Before any output is opened, every object the selected services need must be
present with its recorded size (one listing, as ``verify``), and the keys must
open the backup (``keys.check_can_open``).

Memory: one chunk of at most 1 MiB held back, the codec's window, one member's
headers. The export holds a lease on the backup (``monctl/repository/locking.py``), as ``verify``
does, so no prune on any host deletes it meanwhile.
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import tarfile
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monctl.backup.export_sink import POISON as POISON  # what a cut stream ends with
from monctl.backup.export_sink import STDOUT as STDOUT  # `-`: the CLI's name for stdout
from monctl.backup.export_sink import (
    Behind,
    Header,
    OutputError,
    Sink,
    compression_of,
    compressor_of,
)
from monctl.backup.restore_stream import TAR_TYPES, content
from monctl.errors import ExitCode, IntegrityError, StorageError
from monctl.repository import Repository
from monctl.repository.archive import HashingReader, decompress_stream
from monctl.repository.filelist import ServiceFiles
from monctl.repository.manifest import Manifest
from monctl.repository.tar_safety import check_member
from monctl.repository.tar_stream import Member, end_marker, header, members, padding

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.age import Identities
    from monctl.project import Project
    from monctl.repository import RepositoryLike

VERIFY_HINT = "`monctl backup verify ID` names every damaged object and the backups that need it"


@dataclass
class ServiceExport:
    service: str
    files: int = 0
    dirs: int = 0
    symlinks: int = 0
    hardlinks: int = 0
    bytes: int = 0  # of the files' contents

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "files": self.files,
            "dirs": self.dirs,
            "symlinks": self.symlinks,
            "hardlinks": self.hardlinks,
            "bytes": self.bytes,
        }


@dataclass
class ExportReport:
    """What ``monctl backup export`` wrote."""

    backup_id: str
    location: str
    output: str  # the file written, or "-" (stdout)
    compression: str
    services: list[ServiceExport] = field(default_factory=list)
    size: int = 0  # bytes written to the output (compressed, when it is)
    tar_size: int = 0  # bytes of the tar stream
    seconds: float = 0.0

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    @property
    def files(self) -> int:
        return sum(s.files for s in self.services)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.backup_id,
            "location": self.location,
            "output": self.output,
            "compression": self.compression,
            "bytes": self.size,
            "tar_bytes": self.tar_size,
            "files": self.files,
            "seconds": round(self.seconds, 3),
            "services": [s.to_json() for s in self.services],
        }

    def summary(self) -> str:
        from monctl.text import human_size

        where = "stdout" if self.output == STDOUT else self.output
        how = "" if self.compression == "none" else f", {self.compression}"
        return (
            f"backup {self.backup_id} exported to {where}: {self.files} files, "
            f"{human_size(self.size)}{how}, every object verified"
        )


def _wanted(manifest: Manifest, names: Sequence[str]) -> list[str]:
    wanted = list(dict.fromkeys(names)) if names else list(manifest.services)
    unknown = [n for n in wanted if n not in manifest.services]
    if unknown:
        raise StorageError(
            f"backup {manifest.backup_id} holds no archive for {', '.join(unknown)}",
            hint=f"it holds: {', '.join(manifest.services) or 'nothing'}",
        )
    if not wanted:
        raise IntegrityError(f"backup {manifest.backup_id} holds nothing to export")
    return wanted


def _check_present(repo: Repository, manifest: Manifest, wanted: list[str]) -> None:
    """Every object (archive) the export needs is there, of its recorded size."""
    problems = repo.absent(manifest, wanted)
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        raise IntegrityError(
            f"backup {manifest.backup_id} is incomplete: {'; '.join(problems[:3])}{more}; "
            "nothing was exported",
            hint=VERIFY_HINT,
        )


def _top(name: str, manifest: Manifest) -> Member:
    """The service's top directory: owned as a restore makes the data directory (the
    image's user, when this monctl declares the service), timed at the backup."""
    from monctl import services

    declared = next((s for s in services.SERVICES if s.name == name), None)
    uid, gid = (declared.data.uid, declared.data.gid) if declared and declared.data else (0, 0)
    mtime = manifest.started_at.timestamp()
    return Member(name, tarfile.DIRTYPE, 0, 0o755, uid, gid, mtime)


def _counted(member: Member, count: ServiceExport) -> Member:
    if member.isfile():
        count.files += 1
        count.bytes += member.size
    elif member.isdir():
        count.dirs += 1
    elif member.issym():
        count.symlinks += 1
    elif member.islnk():
        count.hardlinks += 1
    return member


def _files(
    repo: Repository,
    name: str,
    files: ServiceFiles,
    top: str,
    identities: Identities | None,
    count: ServiceExport,
) -> Iterator[bytes]:
    """A format-2 service's entries under ``top``, each file's bytes from its object or
    the pack (``restore_stream.content``), every hash checked on the way."""
    with contextlib.ExitStack() as stack:
        pack = None
        if files.pack is not None:
            what = f"the pack of {name}"
            pack = stack.enter_context(repo.open_object(files.pack, what, None, identities))
        for entry in files.files:
            kind = TAR_TYPES.get(entry.kind, tarfile.REGTYPE)
            link = f"{top}/{entry.link}" if entry.kind == "hardlink" else entry.link
            size = entry.size if entry.kind == "file" else 0
            member = Member(
                f"{top}/{entry.path}", kind, size, entry.mode & 0o1777,
                entry.uid, entry.gid, entry.mtime, link,
            )  # fmt: skip
            check_member(member, top)
            yield Header(header(_counted(member, count), pax=True))
            if entry.kind == "file":
                yield from content(repo, entry, pack, identities)
                if pad := padding(entry.size):
                    yield b"\0" * pad
        if pack is not None and pack.read(1):  # the end: the pack's own hashes
            raise IntegrityError(f"the pack of {name} holds more than its files")


def _below(name: str, root: str) -> str:
    """``name`` relative to the archive's data root ("" for the root itself)."""
    norm = posixpath.normpath(name)
    if not root:
        return "" if norm == "." else norm
    return "" if norm == root else norm[len(root) + 1 :]


def _archive(
    repo: Repository, manifest: Manifest, name: str, top: str, count: ServiceExport
) -> Iterator[bytes]:
    """A format-1 archive's members moved under ``top``; its stored bytes hashed on
    the way and compared with the manifest at the end."""
    entry = manifest.archive(name)
    root = posixpath.normpath(entry.data_root) if entry.data_root else ""
    with repo.open_archive(manifest, name) as stored:
        hashing = HashingReader(stored)
        tar = decompress_stream(io.BufferedReader(hashing), manifest.compression)
        for member, body in members(tar):
            check_member(member, entry.data_root)
            rel = _below(member.name, root)
            if not rel:  # the data directory itself: the top directory stands for it
                continue
            link = f"{top}/{_below(member.linkname, root)}" if member.islnk() else member.linkname
            out = Member(
                f"{top}/{rel}", member.type, member.size, member.mode & 0o1777,
                member.uid, member.gid, member.mtime, link,
            )  # fmt: skip
            yield Header(header(_counted(out, count), pax=True))
            while chunk := body.read():
                yield chunk
            if pad := padding(member.size):
                yield b"\0" * pad
        hashing.drain()
    if hashing.size != entry.size or hashing.sha256 != entry.sha256:
        raise IntegrityError(
            f"{entry.archive} does not match its manifest (sha256 {hashing.sha256[:16]}…, "
            f"expected {entry.sha256[:16]}…): it is corrupt"
        )


def _tar(
    repo: Repository,
    manifest: Manifest,
    wanted: list[str],
    identities: Identities | None,
    counts: list[ServiceExport],
) -> Iterator[bytes]:
    """The whole export: every service under its top directory, then the end marker."""
    for name in wanted:
        count = ServiceExport(name)
        counts.append(count)
        top = _top(name, manifest)
        yield Header(header(top, pax=True))
        try:
            if isinstance(manifest.services[name], ServiceFiles):
                yield from _files(repo, name, manifest.files(name), top.name, identities, count)
            else:
                yield from _archive(repo, manifest, name, top.name, count)
        except IntegrityError as e:
            raise IntegrityError(f"{name}: {e.message}", hint=e.hint or VERIFY_HINT) from None
    yield Header(end_marker())


@dataclass(frozen=True)
class ExportRequest:
    """What ``monctl backup export`` is asked (built by the command from its options and
    ``.env``); ``output`` None: ``monctl-<id>.tar`` in the working directory."""

    project: Project
    destination: str | None
    backup_id: str
    services: tuple[str, ...] = ()
    identity: tuple[str, ...] = ()  # key files as given; read by Repository.open_keyed
    output: str | None = None


def perform(
    request: ExportRequest, on_bytes: Callable[[str, int], None] | None = None
) -> ExportReport:
    """Keys, destination, ``latest`` resolved, then ``run``; ``on_bytes(id, n)``."""
    repo, identities = Repository.open_keyed(request.project, request.destination, request.identity)
    backup_id = repo.resolve(request.backup_id)
    return run(
        repo,
        backup_id,
        request.services,
        output=request.output or f"monctl-{backup_id}.tar",
        identities=identities,
        on_bytes=(lambda n: on_bytes(backup_id, n)) if on_bytes is not None else None,
    )


def run(
    repo: RepositoryLike,
    backup_id: str,
    names: Sequence[str] = (),
    *,
    output: str,
    identities: Identities | None = None,
    on_bytes: Callable[[int], None] | None = None,
) -> ExportReport:
    """Write backup ``backup_id`` (its services ``names``, default all) to ``output``
    (a file, or "-": stdout) as one tar, compressed as its name says.

    Raise StorageError when there is no such backup (or no such service in it), the
    destination fails or the backup disappears meanwhile; IntegrityError (nothing
    left at ``output``; stdout: cut) when the manifest is invalid, an object is
    missing or does not check out, or the keys cannot open an encrypted backup;
    OutputError (a StorageError) when the output cannot be written.
    ``on_bytes(n)``: n more bytes of the tar stream were written (progress).
    """
    repo = Repository.of(repo)
    started = time.monotonic()
    manifest = repo.manifest(backup_id)
    wanted = _wanted(manifest, names)
    repo.check_can_open(manifest, wanted, identities)
    report = ExportReport(backup_id, repo.location, output, compression_of(output))
    with repo.lease(backup_id, "export", required=False):
        _check_present(repo, manifest, wanted)
        tar = Behind(_tar(repo, manifest, wanted, identities, report.services))
        sink = Sink(output)
        try:
            compressor = compressor_of(report.compression)
            for chunk in tar:
                report.tar_size += len(chunk)
                sink.write(compressor.compress(chunk) if compressor else chunk)
                if on_bytes is not None:
                    on_bytes(len(chunk))
            if compressor is not None:
                sink.write(compressor.flush())
            sink.commit()
        except OutputError:
            sink.discard()  # the output failed: nothing more is written to it
            raise
        except StorageError:
            sink.discard(tar.at_boundary)
            if repo.gone(backup_id):
                raise StorageError(
                    f"backup {backup_id} disappeared from {repo.location} while it was "
                    "exported (deleted by a prune, on this host or another?)",
                    hint="`monctl backup list` shows what is there now",
                ) from None
            raise
        except BaseException:
            sink.discard(tar.at_boundary)
            raise
    report.size = sink.size
    report.seconds = time.monotonic() - started
    return report
