"""What a restore drill (``monctl backup test``) reports: per service, and for the run."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monctl.errors import ExitCode
from monctl.services.answers import Check

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
