"""What ``monctl backup`` reports: per-service results, the run's report, and its metrics.

``create.run`` fills in a ``BackupReport`` as it goes (one ``ServiceResult``
per service, warnings, the retention result) and returns it; the CLI emits it
as a table or JSON. ``publish_metrics`` turns the same report into
node-exporter textfile metrics after every run, failed or not. Kept apart from
``create`` so the flow reads without the presentation.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from monctl.backup import prune as pruning
from monctl.errors import ExitCode
from monctl.monitoring import textfile
from monctl.project import Project
from monctl.repository.filelist import Stats
from monctl.result import Failure
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
