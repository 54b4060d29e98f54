"""What the backup verbs report: a backup run (``BackupReport``, one ``ServiceResult`` per
service, and its node-exporter textfile metrics), a verify (``VerifyReport``, per service
and for the backup as a whole) and a restore drill (``DrillReport``). The verbs fill them
in and return them; the CLI draws them (``monctl/cli/render/``) or emits their JSON.

``create.run`` fills in a ``BackupReport`` as it goes (warnings, the retention result);
``publish_metrics`` turns the same report into textfile metrics after every run, failed or
not. Kept apart from the verbs so their flow reads without the reporting.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monctl.backup import prune as pruning
from monctl.errors import ExitCode, IntegrityError
from monctl.monitoring import textfile
from monctl.project import Project
from monctl.repository.filelist import Stats
from monctl.repository.tar_safety import TarCheck
from monctl.result import Failure
from monctl.services.answers import Check
from monctl.services.model import Service


@dataclass(frozen=True)
class ServiceResult:
    service: str
    status: str  # ok, failed, discarded (ok, but the run failed), not started
    size: int = 0  # stored bytes of the objects the service's backup references
    raw_size: int = 0  # bytes of its files
    seconds: float = 0.0
    strategy: str = ""
    notes: tuple[str, ...] = ()
    error: str | None = None
    stats: Stats = field(default_factory=Stats)  # read from the engine, written, reused
    files: int = 0

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "status": self.status,
            "bytes": self.size,
            "raw_bytes": self.raw_size,
            "files": self.files,
            **self.stats.to_json(),
            "seconds": round(self.seconds, 3),
            "strategy": self.strategy,
            "notes": list(self.notes),
            "error": self.error,
        }


@dataclass
class BackupReport:
    backup_id: str
    location: str
    compression: str
    started_at: datetime
    finished_at: datetime | None = None
    services: list[ServiceResult] = field(default_factory=list)
    error: Failure | None = None  # why the backup failed; None when complete
    prune: pruning.PruneReport | None = None
    prune_error: Failure | None = None
    warnings: list[str] = field(default_factory=list)
    full: bool = False
    repository_bytes: int | None = None  # every object in the repository, after the run
    recipients: tuple[str, ...] = ()  # age public keys it is encrypted to (none: not)

    @property
    def ok(self) -> bool:
        return self.error is None

    @property
    def exit_code(self) -> ExitCode:
        """The backup's failure, else retention's, else STORAGE when a prune deletion failed."""
        if self.error is not None:
            return self.error.exit_code
        if self.prune_error is not None:
            return self.prune_error.exit_code
        if self.prune is not None:
            return self.prune.exit_code
        return ExitCode.OK

    @property
    def duration(self) -> float:
        end = self.finished_at or datetime.now(UTC)
        return (end - self.started_at).total_seconds()

    def to_json(self) -> dict[str, Any]:
        error = self.error or self.prune_error
        return {
            "id": self.backup_id,
            "location": self.location,
            "compression": self.compression,
            "started_at": self.started_at.isoformat(),
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
            "duration_seconds": round(self.duration, 3),
            "full": self.full,
            "encrypted_to": list(self.recipients),
            "bytes": sum(s.size for s in self.services if s.status == "ok"),
            "read_bytes": sum(s.stats.read_bytes for s in self.services),
            "written_bytes": sum(s.stats.written_bytes for s in self.services),
            "reused_objects": sum(s.stats.reused_objects for s in self.services),
            "repository_bytes": self.repository_bytes,
            "services": [s.to_json() for s in self.services],
            "prune": self.prune.to_json() if self.prune else None,
            "warnings": self.warnings,
            "error": error.to_json() if error else None,
        }


def publish_metrics(project: Project, report: BackupReport, services: tuple[Service, ...]) -> None:
    """Write the textfile metrics; a failure here is a warning, never a failed backup."""
    now = time.time()
    by_name = {r.service: r for r in report.services}
    attempts = []
    for s in services:
        r = by_name.get(s.name)
        ok = report.ok and r is not None and r.status == "ok"
        attempts.append(
            textfile.Attempt(
                service=s.name,
                finished_at=now,
                success=ok,
                duration_seconds=r.seconds if r else 0.0,
                size_bytes=r.size if ok and r else None,
                written_bytes=r.stats.written_bytes if ok and r else None,
                reused_bytes=r.stats.reused_bytes if ok and r else None,
            )
        )
    try:
        textfile.publish(textfile.textfile_dir(project), attempts)
    except OSError as exc:
        report.warnings.append(f"could not write the backup metrics: {exc}")


# What ``monctl backup verify ID`` found.


@dataclass(frozen=True)
class ServiceCheck:
    service: str
    ok: bool
    size: int  # bytes read from the destination
    sha256: str  # of the bytes read
    tar: TarCheck | None
    error: str | None = None
    bad_objects: tuple[str, ...] = ()  # format 2: ids of objects missing or damaged

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "ok": self.ok,
            "size": self.size,
            "sha256": self.sha256 or None,
            "tar": self.tar.to_json() if self.tar else None,
            "error": self.error,
            "bad_objects": list(self.bad_objects),
        }


@dataclass(frozen=True)
class VerifyReport:
    """Report of ``monctl backup verify``."""

    location: str
    backup_id: str
    checks: list[ServiceCheck] = field(default_factory=list)
    needed_by: dict[str, list[str]] = field(default_factory=dict)  # bad object -> backups
    # False: encrypted and read without an identity: the stored bytes were checked
    # (every object's size, and hash against its name), not what they decrypt to.
    contents_checked: bool = True

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.INTEGRITY

    def failures(self) -> list[ServiceCheck]:
        return [c for c in self.checks if not c.ok]

    def error(self) -> IntegrityError | None:
        """An IntegrityError naming every archive that failed, or None."""
        bad = self.failures()
        if not bad:
            return None
        detail = "; ".join(f"{c.service}: {c.error}" for c in bad)
        hint = "restore from another backup (`monctl backup list`)"
        if self.needed_by:
            needing = "; ".join(
                f"{object_id[:16]}… by {', '.join(ids)}"
                for object_id, ids in self.needed_by.items()
            )
            hint = (
                f"objects needed: {needing}. `monctl backup --full` writes them again from "
                f"the live data (repairing the backups that share them); or {hint}"
            )
        return IntegrityError(f"backup {self.backup_id} failed verification: {detail}", hint=hint)

    def to_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "id": self.backup_id,
            "services": [c.to_json() for c in self.checks],
            "needed_by": self.needed_by,
            "contents_checked": self.contents_checked,
        }


# What a restore drill (``monctl backup test``) reports.


READY = "running, ready"


@dataclass(frozen=True)
class DrillService:
    service: str
    restore: str  # restored, failed
    state: str  # "running, ready", "running, not ready after 180 s (...)", "exited"
    checks: tuple[Check, ...] = ()
    error: str | None = None
    code: ExitCode = ExitCode.FAILED  # when not ok: STORAGE when its staging disk was full

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else max(self.code, ExitCode.FAILED)

    @property
    def ok(self) -> bool:
        return self.restore == "restored" and self.state == READY and all(c.ok for c in self.checks)

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "status": "passed" if self.ok else "failed",
            "restore": self.restore,
            "state": self.state,
            "checks": [{"name": c.name, "ok": c.ok, "detail": c.detail} for c in self.checks],
            "error": self.error,
        }


@dataclass
class DrillReport:
    backup_id: str
    location: str
    stack: str  # the throwaway project's name
    window: tuple[float, float] = (0.0, 0.0)  # the backup's time range, Unix seconds
    services: list[DrillService] = field(default_factory=list)
    leftovers: list[str] = field(default_factory=list)  # what removing the stack could not
    stale: list[str] = field(default_factory=list)  # earlier drills' stacks removed first
    notes: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return bool(self.services) and all(s.ok for s in self.services) and not self.leftovers

    @property
    def exit_code(self) -> ExitCode:
        """The worst of the services' (a full staging disk: STORAGE), else FAILED."""
        if self.ok:
            return ExitCode.OK
        return max([ExitCode.FAILED, *(s.exit_code for s in self.services)])

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.backup_id,
            "location": self.location,
            "stack": self.stack,
            "window": {"start": self.window[0], "end": self.window[1]},
            "services": [s.to_json() for s in self.services],
            "removed": not self.leftovers,
            "leftovers": self.leftovers,
            "stale_removed": self.stale,
            "notes": self.notes,
        }
