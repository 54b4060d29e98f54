"""``monctl backup prune``: delete old backups of a destination (listing is ``listing.py``,
verify ``verify.py``).

Prune is retention (which backups go, ``retention.py``) followed by garbage
collection (which objects no kept backup needs, ``gc.py``).

Only directories named by a backup id (``manifest.BACKUP_ID_RE``) are monctl's;
anything else under the destination is never read, listed or deleted. A
backup is complete when its manifest exists and is valid; one whose manifest
is missing is incomplete (failed, or still running), one whose manifest is
malformed is invalid. Neither is offered for restore; one poisoned backup
never stops the listing or the pruning of the others. What prune keeps and
why is ``retention.py``; prune runs under the project lock and honours the
destination-side leases of ``monctl/repository/locking.py``.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

from monctl.errors import ExitCode, StorageError
from monctl.repository import Repository, project_lock
from monctl.repository.catalog import BackupEntry as BackupEntry  # re-exported: tests, verbs
from monctl.repository.gc import GcReport
from monctl.repository.retention import Decision, Policy, decide

if TYPE_CHECKING:  # pragma: no cover
    from monctl.project import Project
    from monctl.repository import RepositoryLike


@dataclass(frozen=True)
class PruneRequest:
    """What ``monctl backup prune`` is asked: the destination (None: the project's),
    the retention rules, and whether only to say what would go."""

    project: Project
    destination: str | None
    policy: Policy
    dry_run: bool = False


def perform(request: PruneRequest) -> PruneReport:
    """``monctl backup prune``: open the destination, take the project's lock, prune."""
    repo = Repository.open(request.project, request.destination)
    with project_lock(request.project, "prune"):
        return prune(repo, request.policy, request.dry_run)


@dataclass
class PruneReport:
    """Report of ``monctl backup prune`` (and retention after ``monctl backup``)."""

    location: str
    dry_run: bool
    entries: list[BackupEntry]
    decisions: list[Decision]
    deleted: list[str] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)  # unfinished uploads removed
    collected: GcReport | None = None  # the objects swept after the backups

    @property
    def kept(self) -> list[str]:
        return [d.backup_id for d in self.decisions if d.backup_id not in self.deleted]

    @property
    def freed(self) -> int:
        gone = self._doomed() if self.dry_run else self.deleted
        own = sum(e.own_size for e in self.entries if e.backup_id in gone)
        return own + (self.collected.freed if self.collected else 0)

    @property
    def exit_code(self) -> ExitCode:
        return (
            ExitCode.STORAGE
            if self.errors or (self.collected and self.collected.errors)
            else ExitCode.OK
        )

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
            "objects": self.collected.to_json() if self.collected else None,
            "errors": self.errors + (self.collected.errors if self.collected else []),
        }


def prune(
    repo: RepositoryLike,
    policy: Policy,
    dry_run: bool = False,
    *,
    now: datetime | None = None,
) -> PruneReport:
    """Apply retention (``retention.decide``) to the backups in ``repo``.

    The caller holds the project lock. Deletes each doomed backup's whole
    directory (archives, manifest, partial objects, unfinished uploads), the
    manifest FIRST so a half-deleted backup reads as incomplete, never as
    complete-but-broken; the next prune finishes it. Keeps going past a failed
    deletion; the report's ``errors`` lists them (exit 8). With ``dry_run``
    nothing is deleted. Raise ValueError for an empty or negative policy.
    """
    repo = Repository.of(repo)
    now = now or datetime.now(UTC)
    entries = repo.backups()
    by_id = {e.backup_id: e for e in entries}

    def leased(backup_id: str) -> str | None:
        held = repo.leases_held(backup_id, by_id[backup_id].leases, now.timestamp())
        return "; ".join(h.describe() for h in held) or None

    decisions = decide(entries, policy, now, leased)
    report = PruneReport(repo.location, dry_run, entries, decisions)
    doomed = frozenset(d.backup_id for d in decisions if not d.keep)
    if dry_run:
        report.collected = repo.collect(dry_run=True, ignore=doomed)
        return report
    for decision in decisions:
        if decision.keep:
            continue
        # A lease taken since the decision (a restore that just started) still wins:
        # the backup's keys are listed again, not taken from the listing above.
        if repo.leases_held(decision.backup_id, None, time.time()):
            continue
        manifest = by_id[decision.backup_id].manifest
        try:
            # Format 2 on: the whole manifest is read again, and its retired record lists
            # every object it needs.
            retire = manifest is not None and manifest.format_version >= 2
            repo.delete_backup(decision.backup_id, retire=retire)
            report.deleted.append(decision.backup_id)
        except StorageError as e:
            report.errors.append(f"could not delete backup {decision.backup_id}: {e.message}")
    for backup_id in report.kept:
        # Uploads that died without being aborted (a killed run, an endpoint that
        # stayed down) cost storage; an hour's grace spares one still running.
        try:
            report.cleaned.extend(repo.clean_partials(backup_id, timedelta(hours=1)))
        except StorageError as e:
            report.errors.append(f"could not clean unfinished uploads of {backup_id}: {e.message}")
    try:
        report.collected = repo.collect()
    except StorageError as e:
        report.errors.append(f"could not collect unreferenced objects: {e.message}")
    return report
