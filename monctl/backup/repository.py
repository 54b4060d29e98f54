"""The backups in a destination: list them, and prune old ones (verify is ``verify.py``).

Only directories named by a backup id (``manifest.BACKUP_ID_RE``) are monctl's;
anything else under the destination is never read, listed or deleted. A
backup is complete when its manifest exists and is valid; one whose manifest
is missing is incomplete (failed, or still running), one whose manifest is
malformed is invalid. Neither is offered for restore; one poisoned backup
never stops the listing or the pruning of the others. What prune keeps and
why is ``retention.py``; prune runs under the project lock and honours the
destination-side leases of ``lease.py``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from monctl.adapters.storage import Storage
from monctl.backup import lease
from monctl.backup.manifest import Manifest, is_backup_id, parse_backup_id, read_manifest
from monctl.backup.retention import Decision, Policy, decide
from monctl.errors import ExitCode, IntegrityError, StorageError
from monctl.output import Output, human_size, styled


@dataclass(frozen=True)
class BackupEntry:
    backup_id: str
    complete: bool  # has a valid manifest
    manifest: Manifest | None
    created: datetime  # from the id (UTC start time)
    total_size: int  # bytes stored under the id
    problem: str | None = None  # why it is not complete ("no manifest", what is malformed)
    leases: tuple[str, ...] = ()  # lease objects under the id (read by prune)

    @property
    def state(self) -> str:
        if self.complete:
            return "complete"
        return "incomplete" if self.problem == "no manifest" else "invalid"

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "id": self.backup_id,
            "complete": self.complete,
            "state": self.state,
            "created": self.created.isoformat(),
            "total_size": self.total_size,
            "services": sorted(m.services) if m else [],
            "compression": m.compression if m else None,
            "finished_at": m.finished_at.isoformat() if m else None,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class BackupList:
    """Report of ``monctl backup list``."""

    location: str
    entries: list[BackupEntry]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"location": self.location, "backups": [e.to_json() for e in self.entries]}

    def render(self, out: Output) -> None:
        if not self.entries:
            out.info(f"no backups in {self.location}")
            return
        table = out.table("ID", "STATE", "SERVICES", "SIZE", title=out.text(self.location))
        for e in self.entries:
            services = ", ".join(sorted(e.manifest.services)) if e.manifest else ""
            state = e.state if e.complete else f"{e.state} ({e.problem})"
            table.add_row(e.backup_id, out.text(state), services, human_size(e.total_size))
        out.print(table)


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
        try:
            manifest = read_manifest(storage, name)
        except IntegrityError as e:
            problem = "no manifest" if "no manifest" in e.message else e.message
        except StorageError as e:
            problem = e.message
        entries.append(
            BackupEntry(
                backup_id=name,
                complete=manifest is not None,
                manifest=manifest,
                created=parse_backup_id(name),
                total_size=sum(o.size for o in objects),
                problem=problem,
                leases=tuple(o.key for o in objects if lease.is_lease(o.key)),
            )
        )
    entries.sort(key=lambda e: e.created, reverse=True)
    return entries


@dataclass(frozen=True)
class PruneReport:
    """Report of ``monctl backup prune`` (and retention after ``monctl backup``)."""

    location: str
    dry_run: bool
    entries: list[BackupEntry]
    decisions: list[Decision]
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)  # unfinished uploads removed

    @property
    def kept(self) -> list[str]:
        return [d.backup_id for d in self.decisions if d.backup_id not in self.deleted]

    @property
    def freed(self) -> int:
        return sum(e.total_size for e in self.entries if e.backup_id in self.deleted)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.STORAGE if self.errors else ExitCode.OK

    def _doomed(self) -> list[str]:
        return [d.backup_id for d in self.decisions if not d.keep]

    def to_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "dry_run": self.dry_run,
            "kept": self.kept,
            "deleted": self._doomed() if self.dry_run else self.deleted,
            "freed_bytes": self.freed,
            "decisions": [
                {"id": d.backup_id, "keep": d.keep, "reason": d.reason} for d in self.decisions
            ],
            "cleaned_partials": self.cleaned,
            "errors": self.errors,
        }

    def render(self, out: Output) -> None:
        verb = "would delete" if self.dry_run else "deleted"
        by_id = {e.backup_id: e for e in self.entries}
        table = out.table("ID", "STATE", "SIZE", "ACTION", "WHY", title=out.text(self.location))
        for d in self.decisions:
            e = by_id[d.backup_id]
            gone = d.backup_id in self.deleted or (self.dry_run and not d.keep)
            action = verb if gone else ("keep" if d.keep else "delete failed")
            table.add_row(
                e.backup_id, e.state, human_size(e.total_size), styled(action), out.text(d.reason)
            )
        out.print(table)
        doomed = self._doomed() if self.dry_run else self.deleted
        freed = sum(by_id[i].total_size for i in doomed)
        out.info(f"{verb} {len(doomed)} backup(s), {human_size(freed)}")
        for err in self.errors:
            out.warn(err)


def prune(
    storage: Storage,
    policy: Policy,
    dry_run: bool = False,
    *,
    now: datetime | None = None,
) -> PruneReport:
    """Apply retention (``retention.decide``) to the backups in ``storage``.

    The caller holds the project lock. Deletes each doomed backup's whole
    directory (archives, manifest, partial objects, unfinished uploads), the
    manifest FIRST so a half-deleted backup reads as incomplete, never as
    complete-but-broken; the next prune finishes it. Keeps going past a failed
    deletion; the report's ``errors`` lists them (exit 8). With ``dry_run``
    nothing is deleted. Raise ValueError for an empty or negative policy.
    """
    now = now or datetime.now(UTC)
    entries = list_backups(storage)
    by_id = {e.backup_id: e for e in entries}

    def leased(backup_id: str) -> str | None:
        held = lease.active(storage, list(by_id[backup_id].leases), now.timestamp())
        return "; ".join(h.describe() for h in held) or None

    decisions = decide(entries, policy, now, leased)
    report = PruneReport(storage.location, dry_run, entries, decisions)
    if dry_run:
        return report
    for decision in decisions:
        if decision.keep:
            continue
        # A lease taken since the decision (a restore that just started) still wins.
        if leased(decision.backup_id):
            continue
        try:
            storage.delete_prefix(f"{decision.backup_id}/")
            report.deleted.append(decision.backup_id)
        except StorageError as e:
            report.errors.append(f"could not delete backup {decision.backup_id}: {e.message}")
    for backup_id in report.kept:
        # Uploads that died without being aborted (a killed run, an endpoint that
        # stayed down) cost storage; an hour's grace spares one still running.
        try:
            report.cleaned.extend(storage.clean_partials(f"{backup_id}/", timedelta(hours=1)))
        except StorageError as e:
            report.errors.append(f"could not clean unfinished uploads of {backup_id}: {e.message}")
    return report
