"""``monctl down``: stop and remove the stack's containers (and, asked, its data)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monctl.errors import ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from monctl.project import Project
    from monctl.runtime import Runtime


@dataclass(frozen=True)
class DownReport:
    project: str
    volumes_deleted: bool

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"project": self.project, "volumes_deleted": self.volumes_deleted}


@dataclass(frozen=True)
class DownRequest:
    """What ``monctl down`` is asked (the command has asked the operator first, when
    ``volumes`` deletes data)."""

    project: Project
    runtime: Runtime
    volumes: bool = False


def perform(request: DownRequest) -> DownReport:
    """``monctl down``."""
    return down(request.project, request.runtime, request.volumes)


def down(project: Project, runtime: Runtime, volumes: bool) -> DownReport:
    """Stop and remove the stack's containers; with ``volumes`` also its data."""
    runtime.down(volumes)
    return DownReport(project.name, volumes)
