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
from typing import TYPE_CHECKING, Any

from monctl.adapters.age import NoMatchingIdentity
from monctl.backup.verify import Checked, ServiceCheck, verify_archive, verify_files
from monctl.errors import ExitCode, IntegrityError, StorageError
from monctl.repository import Repository, gc

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.age import Identities
    from monctl.repository import RepositoryLike


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
    # Encrypted backups whose contents were not checked (no identity, or not theirs):
    # their stored bytes were.
    sealed: list[str] = field(default_factory=list)
    deep: bool = False  # --deep: a backup whose contents were not checked fails

    @property
    def ok(self) -> bool:
        return all(b.ok for b in self.backups) and not (self.deep and self.sealed)

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
            "contents_not_checked": self.sealed,
            "backups": [b.to_json() for b in self.backups],
        }


def verify_all(
    repo: RepositoryLike,
    on_bytes: Callable[[int], None] | None = None,
    identities: Identities | None = None,
    deep: bool = False,
) -> RepositoryCheck:
    """Check every backup in ``repo`` (see the module doc). StorageError when
    the destination fails; problems of backups and objects are in the report.
    Encrypted backups: what their objects decrypt to when ``identities`` open them
    (a backup they cannot open is reported as such), else their stored bytes;
    with ``deep``, a backup whose contents could not be checked fails the run."""
    repo = Repository.of(repo)
    report = RepositoryCheck(repo.location, deep=deep)

    def counted(n: int) -> None:
        report.read_bytes += n
        if on_bytes is not None:
            on_bytes(n)

    present = repo.objects()
    report.objects = len(present)
    checked: Checked = {}
    used: set[str] = set()
    for entry in reversed(repo.backups()):  # oldest first
        if entry.manifest is None:
            state = entry.state
            report.backups.append(BackupCheck(entry.backup_id, state, problem=entry.problem))
            continue
        with repo.lease(entry.backup_id, "verify", required=False):
            try:
                manifest = repo.manifest(entry.backup_id)  # with its file lists
                used |= gc.referenced(manifest)
                keyed = identities
                if manifest.recipients and identities is not None:
                    try:
                        repo.check_can_open(manifest, manifest.services, identities)
                    except NoMatchingIdentity as e:
                        report.sealed.append(f"{entry.backup_id}: {e.message}")
                        keyed = None  # its stored bytes, then
                elif manifest.recipients:
                    report.sealed.append(entry.backup_id)
                checks = tuple(
                    verify_archive(repo, manifest, name, counted)
                    if manifest.format_version == 1
                    else verify_files(repo, manifest, name, present, checked, counted, keyed)
                    for name in manifest.services
                )
            except (IntegrityError, StorageError) as e:
                if repo.has_manifest(entry.backup_id):
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
