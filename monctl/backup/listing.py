"""``monctl backup list``: the backups in a destination, newest first, and what the
repository holds in all (each backup read by ``monctl/repository/catalog.py``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monctl.errors import ExitCode
from monctl.repository import Repository
from monctl.repository.catalog import BackupEntry as BackupEntry  # re-exported: tests, verbs
from monctl.repository.catalog import list_backups as list_backups

if TYPE_CHECKING:  # pragma: no cover
    from monctl.project import Project


@dataclass(frozen=True)
class ListRequest:
    """What ``monctl backup list`` is asked: the destination (None: the project's)."""

    project: Project
    destination: str | None


def perform(request: ListRequest) -> BackupList:
    """``monctl backup list``: open the destination and list it."""
    return list_repository(Repository.open(request.project, request.destination))


@dataclass(frozen=True)
class BackupList:
    """Report of ``monctl backup list``."""

    location: str
    entries: list[BackupEntry]
    objects: dict[str, int] = field(default_factory=dict)  # the repository's: id -> bytes

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    @property
    def repository_bytes(self) -> int:
        """Everything stored: the shared objects and what lies under each backup id."""
        return sum(self.objects.values()) + sum(e.own_size for e in self.entries)

    def to_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "repository": {"objects": len(self.objects), "bytes": self.repository_bytes},
            "backups": [e.to_json() for e in self.entries],
        }


def list_repository(repository: Repository) -> BackupList:
    """``monctl backup list``: the backups, and what the repository holds in all."""
    return BackupList(repository.location, repository.backups(), repository.objects())
