"""``monctl backup verify --all``: the whole repository, every backup and every object it needs.

Each complete backup is verified as ``verify ID`` does (format 1: its
archives; format 2: its pack and objects), but an object shared by many
backups is read once. The report names every missing or damaged object
with all the backups that need it, the backups that cannot be read at all,
and how many objects nothing references (garbage the next prune removes).
Incomplete backups (no manifest: failed, or still running) are listed, not
judged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monctl.adapters.storage import Storage
from monctl.backup import gc, index, lease
from monctl.backup.manifest import read_manifest
from monctl.backup.repository import list_backups
from monctl.backup.verify import Checked, ServiceCheck, verify_archive, verify_files
from monctl.errors import ExitCode, IntegrityError, StorageError
from monctl.output import Output, human_size, styled


@dataclass(frozen=True)
class BackupCheck:
    backup_id: str
    state: str  # complete, incomplete, invalid, disappeared
    checks: tuple[ServiceCheck, ...] = ()
    problem: str | None = None

    @property
    def ok(self) -> bool:
        return self.state in ("complete", "incomplete", "disappeared") and all(
            c.ok for c in self.checks
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.backup_id,
            "state": self.state,
            "ok": self.ok,
            "problem": self.problem,
            "services": [c.to_json() for c in self.checks],
        }


@dataclass
class RepositoryCheck:
    """Report of ``monctl backup verify --all``."""

    location: str
    backups: list[BackupCheck] = field(default_factory=list)
    objects: int = 0  # in the repository
    unreferenced: int = 0
    read_bytes: int = 0
    needed_by: dict[str, list[str]] = field(default_factory=dict)  # bad object -> backups

    @property
    def ok(self) -> bool:
        return all(b.ok for b in self.backups)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.INTEGRITY

    def to_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "objects": self.objects,
            "unreferenced_objects": self.unreferenced,
            "read_bytes": self.read_bytes,
            "needed_by": self.needed_by,
            "backups": [b.to_json() for b in self.backups],
        }

    def render(self, out: Output) -> None:
        table = out.table("ID", "STATE", "RESULT", "PROBLEM", title=out.text(self.location))
        for b in self.backups:
            problems = [f"{c.service}: {c.error}" for c in b.checks if not c.ok]
            problem = b.problem or "; ".join(problems)
            table.add_row(
                b.backup_id, b.state, styled("ok" if b.ok else "failed"), out.text(problem)
            )
        out.print(table)
        for object_id, ids in self.needed_by.items():
            out.warn(f"object {object_id} is missing or damaged; needed by {', '.join(ids)}")
        out.info(
            f"{self.objects} objects read once each ({human_size(self.read_bytes)}); "
            f"{self.unreferenced} referenced by no backup (the next prune removes them)"
        )
        if not self.ok:
            bad = [b.backup_id for b in self.backups if not b.ok]
            out.error(
                f"{len(bad)} backup(s) failed verification: {', '.join(bad)}",
                "`monctl backup --full` writes missing or damaged objects again from the live "
                "data; restore only from a backup that verifies",
            )


def verify_all(storage: Storage, on_bytes: Callable[[int], None] | None = None) -> RepositoryCheck:
    """Check every backup in ``storage`` (see the module doc). StorageError when
    the destination fails; problems of backups and objects are in the report."""
    report = RepositoryCheck(storage.location)

    def counted(n: int) -> None:
        report.read_bytes += n
        if on_bytes is not None:
            on_bytes(n)

    present = index.list_objects(storage)
    report.objects = len(present)
    checked: Checked = {}
    used: set[str] = set()
    for entry in reversed(list_backups(storage)):  # oldest first
        if entry.manifest is None:
            state = entry.state
            report.backups.append(BackupCheck(entry.backup_id, state, problem=entry.problem))
            continue
        with lease.holding(storage, entry.backup_id, "verify", required=False):
            try:
                manifest = read_manifest(storage, entry.backup_id)  # with its file lists
                used |= gc.referenced(manifest)
                checks = tuple(
                    verify_archive(storage, manifest, name, counted)
                    if manifest.format_version == 1
                    else verify_files(storage, manifest, name, present, checked, counted)
                    for name in manifest.services
                )
            except (IntegrityError, StorageError) as e:
                if storage.exists(f"{entry.backup_id}/manifest.json"):
                    raise
                report.backups.append(
                    BackupCheck(entry.backup_id, "disappeared", problem=e.message)
                )
                continue
        for check in checks:
            for object_id in check.bad_objects:
                report.needed_by.setdefault(object_id, []).append(entry.backup_id)
        report.backups.append(BackupCheck(entry.backup_id, "complete", checks))
    report.unreferenced = len(set(present) - used)
    return report
