"""What ``monctl backup verify ID`` found: per service, and for the backup as a whole."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from monctl.errors import ExitCode, IntegrityError
from monctl.repository.tar_safety import TarCheck


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
