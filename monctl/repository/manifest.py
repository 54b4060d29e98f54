"""Backup ids, the layout of a backup in its destination, and its manifest.

Layout under the destination root (docs/repository-format.md)::

    objects/<xx>/<sha256>           format 2: file contents, stored once (objects.py)
    <backup_id>/manifest.json       written LAST: its presence marks a complete backup
    <backup_id>/<service><ext>      format 1 only: one archive per service (archive.EXTENSIONS)

Format 1 (monctl before incremental backups): each service is one compressed
tar archive beside the manifest (``ServiceEntry``). Format 2: each service is
a list of files whose bytes are objects shared between backups
(``filelist.ServiceFiles``). Both are read; only format 2 is written.

A backup id is the UTC start time, "YYYYMMDDTHHMMSSZ" (20261126T020000Z).
Names under the destination that are not backup ids are not monctl's and are
never touched.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monctl.errors import IntegrityError, StorageError
from monctl.repository.archive import EXTENSIONS
from monctl.repository.filelist import ServiceFiles
from monctl.repository.objects import Blob

if TYPE_CHECKING:
    from monctl.adapters.storage import Storage

# Read: every version up to FORMAT_VERSION. Written: 2, or 3 when an object's id is not a
# sha256 (BLAKE3 ids of encrypted objects: ``written_version``), so that a monctl from
# before them says "newer than this monctl reads" instead of calling the objects corrupt.
FORMAT_VERSION = 3
MANIFEST_NAME = "manifest.json"
# ASCII digits only, and nothing after the Z (``$`` would let a trailing newline in).
BACKUP_ID_RE = re.compile(r"\A([0-9]{4})([0-9]{2})([0-9]{2})T([0-9]{2})([0-9]{2})([0-9]{2})Z\Z")
_ID_FORMAT = "%Y%m%dT%H%M%SZ"
# A format-1 manifest is a few KiB; a format-2 one lists every file (~250 bytes
# each): 64 MiB holds ~250,000. Refuse to read anything absurd into memory.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024


def new_backup_id(now: datetime | None = None) -> str:
    """The backup id for a backup started at ``now`` (default: the current time).

    Aware datetimes are converted to UTC; naive ones are taken as UTC.
    """
    now = now or datetime.now(UTC)
    if now.tzinfo is not None:
        now = now.astimezone(UTC)
    return now.strftime(_ID_FORMAT)


def is_backup_id(s: str) -> bool:
    """True when ``s`` names a monctl backup (a valid date and time, too)."""
    try:
        parse_backup_id(s)
    except ValueError:
        return False
    return True


def parse_backup_id(s: str) -> datetime:
    """The aware UTC start time named by backup id ``s``; ValueError if it is not one."""
    match = BACKUP_ID_RE.match(s)
    if match is None:
        raise ValueError(f"not a backup id (YYYYMMDDTHHMMSSZ): {s!r}")
    # Not strptime: its first call costs ~30 ms of imports, in every command that lists.
    year, month, day, hour, minute, second = (int(part) for part in match.groups())
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def archive_name(service: str, compression: str) -> str:
    """The archive's file name inside its backup directory, e.g. "prometheus.tar.zst"."""
    return f"{service}{EXTENSIONS[compression]}"


def archive_key(backup_id: str, service: str, compression: str) -> str:
    return f"{backup_id}/{archive_name(service, compression)}"


def manifest_key(backup_id: str) -> str:
    return f"{backup_id}/{MANIFEST_NAME}"


@dataclass(frozen=True)
class ServiceEntry:
    """One service's archive in a backup."""

    archive: str  # file name inside the backup directory ("prometheus.tar.zst")
    image: str  # image reference the service ran ("prom/prometheus:v2.42.0")
    version: str | None  # the version the service reported, if it did
    size: int  # stored (compressed) bytes
    raw_size: int  # bytes of the tar stream
    sha256: str  # of the stored bytes
    strategy: str  # how it was made consistent ("snapshot", "pause", "flush-pause")
    data_root: str = ""  # top directory of the members in the tar ("" = any); see check_tar
    # What the service held, for a restore drill to compare with (Drill.record):
    # e.g. Grafana's dashboard uids. Empty for services that record nothing.
    facts: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "archive": self.archive,
            "image": self.image,
            "version": self.version,
            "size": self.size,
            "raw_size": self.raw_size,
            "sha256": self.sha256,
            "strategy": self.strategy,
            "data_root": self.data_root,
        }
        if self.facts:
            doc["facts"] = self.facts
        return doc


ServiceData = ServiceEntry | ServiceFiles  # format 1 | format 2


@dataclass(frozen=True)
class Manifest:
    """What a complete backup holds. ``to_json``/``from_json`` round-trip exactly.

    ``compression``: format 1, the codec of every archive; format 2, what was
    asked (``auto`` or a forced codec; each object records its own).
    """

    backup_id: str
    monctl_version: str
    started_at: datetime
    finished_at: datetime
    compression: str
    services: dict[str, ServiceData] = field(default_factory=dict)
    format_version: int = 2  # create.py writes written_version(services)
    # age recipients (public keys) every object is encrypted to; () = not encrypted.
    recipients: tuple[str, ...] = ()

    def blobs(self) -> Iterator[Blob]:
        """Format 2: every stored content the backup needs, service by service."""
        for entry in self.services.values():
            if isinstance(entry, ServiceFiles):
                yield from entry.blobs()

    def object_ids(self) -> set[str]:
        """Format 2: the objects the backup references (garbage collection, verify)."""
        return {b.ref.id for b in self.blobs()}

    @property
    def total_size(self) -> int:
        """Stored bytes the backup needs (format 2: its distinct objects, shared or not)."""
        if self.format_version == 1:
            return sum(e.size for e in self.services.values() if isinstance(e, ServiceEntry))
        return sum({b.ref.id: b.ref.stored for b in self.blobs()}.values())

    def archive(self, service: str) -> ServiceEntry:
        """Format 1: the archive of ``service``."""
        entry = self.services[service]
        assert isinstance(entry, ServiceEntry), "format 1 only"
        return entry

    def files(self, service: str) -> ServiceFiles:
        """Format 2: the files of ``service``."""
        entry = self.services[service]
        assert isinstance(entry, ServiceFiles), "format 2 only"
        return entry

    def key_of(self, service: str) -> str:
        """The storage key of ``service``'s archive (format 1)."""
        return f"{self.backup_id}/{self.archive(service).archive}"

    def _head(self) -> dict[str, Any]:
        return {
            "format_version": self.format_version,
            "backup_id": self.backup_id,
            "monctl_version": self.monctl_version,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat(),
            "compression": self.compression,
            **({"encryption": {"scheme": "age", "recipients": list(self.recipients)}}
               if self.recipients else {}),
        }  # fmt: skip

    def to_json(self) -> dict[str, Any]:
        services = {name: e.to_json() for name, e in self.services.items()}
        return {**self._head(), "services": services}

    def dumps(self) -> bytes:
        return b"".join(self.chunks())

    def chunks(self) -> Iterator[bytes]:
        """The manifest as JSON, in pieces: a format-2 file list can hold hundreds of
        thousands of files, so it is written out a file at a time, never built whole
        (the same document as ``to_json``, one file per line)."""
        if self.format_version == 1:
            yield (json.dumps(self.to_json(), indent=2) + "\n").encode()
            return
        text = json.dumps({**self._head(), "services": {}}, indent=2)
        yield text[: text.rindex("{}")].encode() + b"{"
        for i, (name, entry) in enumerate(self.services.items()):
            assert isinstance(entry, ServiceFiles)
            head = json.dumps(entry.to_json(files=False))[:-1]  # open: files follow
            yield f'{"," if i else ""}\n{json.dumps(name)}: {head}, "files": ['.encode()
            batch: list[str] = []
            for j, file in enumerate(entry.files):
                batch.append((",\n" if j else "\n") + json.dumps(file.to_json()))
                if len(batch) >= 256:
                    yield "".join(batch).encode()
                    batch = []
            yield ("".join(batch) + "\n]}").encode()
        yield b"\n}\n}\n"

    @classmethod
    def from_json(cls, data: str | bytes | Mapping[str, Any]) -> Manifest:
        """Parse and validate a manifest; raise IntegrityError saying what is wrong."""
        from monctl.repository import parsing  # it builds this class

        try:
            obj = parsing.loads(data) if isinstance(data, str | bytes) else data
        except (ValueError, UnicodeDecodeError) as e:
            raise IntegrityError(f"the manifest is not valid JSON: {str(e)[:200]}") from None
        except RecursionError:  # "[[[[…" a few KB deep: refused, not a crash
            raise IntegrityError("the manifest is nested too deeply to be one") from None
        try:
            return parsing.manifest_of(obj)
        except (KeyError, TypeError, ValueError) as e:
            raise IntegrityError(f"the manifest is malformed: {str(e)[:300]}") from None


class Incomplete(IntegrityError):
    """A backup that has no manifest (yet): failed, or still running. Told apart from a
    manifest that is there but unreadable by this type, never by the message's words (a
    manifest may quote any text an attacker chose)."""


class NewerFormat(IntegrityError):
    """A manifest of a format newer than this monctl reads: its backup is whole as far as
    anyone knows, so it is never treated as broken (prune keeps it: retention.py)."""


def written_version(services: Mapping[str, ServiceData]) -> int:
    """The format version a new manifest of ``services`` is written with."""
    for entry in services.values():
        if isinstance(entry, ServiceFiles) and any(b.ref.hash != "sha256" for b in entry.blobs()):
            return 3
    return 2


def write_manifest(storage: Storage, manifest: Manifest) -> None:
    """Write the manifest (call it LAST, after every archive or object was put)."""
    storage.put(manifest_key(manifest.backup_id), manifest.chunks())


def read_manifest(storage: Storage, backup_id: str) -> Manifest:
    """The manifest of ``backup_id``.

    Raise StorageError when the destination holds no backup of that id at all,
    IntegrityError when it exists but has no manifest (incomplete: a failed or
    still running backup) or the manifest is malformed or names another id.
    """
    key = manifest_key(backup_id)
    if not storage.exists(key):
        if not storage.list(f"{backup_id}/"):
            raise StorageError(
                f"no backup {backup_id} in {storage.location}",
                hint="`monctl backup list` shows the backups there",
            )
        raise Incomplete(
            f"backup {backup_id} in {storage.location} has no manifest: it is incomplete "
            "(a backup that failed or is still running)",
            hint="choose a complete backup from `monctl backup list`",
        )
    with storage.open(key) as f:
        data = f.read(MAX_MANIFEST_BYTES + 1)
    if len(data) > MAX_MANIFEST_BYTES:
        raise IntegrityError(f"the manifest of backup {backup_id} is implausibly large")
    manifest = Manifest.from_json(data)
    if manifest.backup_id != backup_id:
        raise IntegrityError(f"the manifest in {backup_id}/ belongs to backup {manifest.backup_id}")
    return manifest
