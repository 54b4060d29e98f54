"""What a destination holds: every backup, complete or not, newest first.

Only directories named by a backup id (``manifest.BACKUP_ID_RE``) are monctl's;
anything else under the destination is never read or listed. A backup is
complete when its manifest exists and is valid; one whose manifest is missing is
incomplete (failed, or still running), one whose manifest is malformed is
invalid. Neither is offered for restore; one poisoned backup never stops the
listing of the others. Read through ``monctl.repository.Repository.backups``.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from monctl.adapters.storage import Storage
from monctl.errors import IntegrityError, StorageError
from monctl.repository import locking
from monctl.repository.filelist import ServiceFiles, Stats
from monctl.repository.manifest import (
    Incomplete,
    Manifest,
    NewerFormat,
    is_backup_id,
    parse_backup_id,
    read_manifest,
)


@dataclass(frozen=True)
class BackupEntry:
    backup_id: str
    complete: bool  # has a valid manifest
    manifest: Manifest | None  # format 2: without the file lists (``summary``)
    created: datetime  # from the id (UTC start time)
    own_size: int  # bytes stored under the id (format 1: the archives; 2: the manifest)
    problem: str | None = None  # why it is not complete ("no manifest", what is malformed)
    leases: tuple[str, ...] = ()  # lease objects under the id (read by prune)
    needs: int = 0  # format 2: stored bytes of the distinct objects it references
    newer_format: bool = False  # its manifest is of a format newer than this monctl reads
    incomplete: bool = False  # it has no manifest (failed, or still running)

    @property
    def state(self) -> str:
        if self.complete:
            return "complete"
        return "incomplete" if self.incomplete else "invalid"

    @property
    def total_size(self) -> int:
        """Stored bytes the backup needs: its own, plus the objects it references
        (shared with other backups: the sizes of several backups do not add up)."""
        return self.own_size + self.needs

    @property
    def stats(self) -> dict[str, Stats]:
        m = self.manifest
        if m is None:
            return {}
        return {n: d.stats for n, d in m.services.items() if isinstance(d, ServiceFiles)}

    @property
    def written(self) -> int | None:
        """Bytes this backup added to the repository (format 2)."""
        stats = self.stats
        return sum(s.written_bytes for s in stats.values()) if stats else None

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "id": self.backup_id,
            "complete": self.complete,
            "state": self.state,
            "created": self.created.isoformat(),
            "format_version": m.format_version if m else None,
            "total_size": self.total_size,
            "written_bytes": self.written,
            "read_bytes": sum(s.read_bytes for s in self.stats.values()) if self.stats else None,
            "reused_objects": (
                sum(s.reused_objects for s in self.stats.values()) if self.stats else None
            ),
            "services": sorted(m.services) if m else [],
            "service_stats": {n: s.to_json() for n, s in self.stats.items()},
            "compression": m.compression if m else None,
            "encrypted_to": list(m.recipients) if m else [],
            "finished_at": m.finished_at.isoformat() if m else None,
            "problem": self.problem,
        }


def summary(manifest: Manifest) -> Manifest:
    """A format-2 manifest without its file lists: what listing and retention need, in
    a few hundred bytes (a Loki with many chunks lists hundreds of thousands of files,
    times every backup kept). Read the manifest again for the files."""
    services = {
        name: dataclasses.replace(data, files=(), pack=None)
        if isinstance(data, ServiceFiles)
        else data
        for name, data in manifest.services.items()
    }
    return dataclasses.replace(manifest, services=services)


def list_backups(storage: Storage) -> list[BackupEntry]:
    """Every monctl backup in ``storage``, newest first.

    Raise StorageError when the destination cannot be read. A manifest that
    cannot be read or parsed makes its backup invalid (with the reason in
    ``problem``), never the listing fail.
    """
    entries = []
    for name in storage.children(""):
        if not is_backup_id(name):
            continue
        objects = storage.list_objects(f"{name}/")
        manifest: Manifest | None = None
        problem: str | None = None
        needs = 0
        newer = incomplete = False
        try:
            manifest = read_manifest(storage, name)
            if manifest.format_version >= 2:
                needs, manifest = manifest.total_size, summary(manifest)
        except IntegrityError as e:
            # The kind of failure, never its words: a manifest may say anything.
            incomplete = isinstance(e, Incomplete)
            problem = "no manifest" if incomplete else e.message
            newer = isinstance(e, NewerFormat)
        except StorageError as e:
            problem = e.message
        entries.append(
            BackupEntry(
                backup_id=name,
                complete=manifest is not None,
                manifest=manifest,
                created=parse_backup_id(name),
                own_size=sum(o.size for o in objects),
                problem=problem,
                leases=tuple(o.key for o in objects if locking.is_lease(o.key)),
                needs=needs,
                newer_format=newer,
                incomplete=incomplete,
            )
        )
    entries.sort(key=lambda e: e.created, reverse=True)
    return entries
