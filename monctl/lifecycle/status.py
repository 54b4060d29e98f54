"""``monctl status``: one row per declared service, as the runtime reports it (and the
report ``up`` ends with)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monctl import services as declared
from monctl.errors import ExitCode
from monctl.health.report import AfterHealth

if TYPE_CHECKING:  # pragma: no cover
    from monctl.health.report import HealthReport
    from monctl.project import Project
    from monctl.runtime import Runtime, ServiceState
    from monctl.services.model import Service


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # running, paused, exited, restarting, created, dead, missing
    health: str | None
    uptime_seconds: float | None
    image: str | None
    version: str | None
    urls: tuple[str, ...]
    tasks: str | None = None  # Swarm: "running/desired"
    problems: tuple[str, ...] = ()  # Swarm: nodes where a task is missing or failing

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "health": self.health,
            "uptime_seconds": None if self.uptime_seconds is None else round(self.uptime_seconds),
            "image": self.image,
            "version": self.version,
            "urls": list(self.urls),
            "tasks": self.tasks,
            "problems": list(self.problems),
        }


@dataclass(frozen=True)
class StatusReport(AfterHealth):
    project: str
    runtime: str
    services: tuple[ServiceStatus, ...]
    notes: tuple[str, ...] = ()
    health: HealthReport | None = None
    code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return self.with_health(
            {
                "project": self.project,
                "runtime": self.runtime,
                "services": [s.to_json() for s in self.services],
                "notes": list(self.notes),
            }
        )


def service_status(runtime: Runtime, service: Service, state: ServiceState | None) -> ServiceStatus:
    if state is None:
        return ServiceStatus(service.name, "missing", None, None, None, None, ())
    tasks = None if state.desired is None else f"{state.running or 0}/{state.desired}"
    problems = tuple(
        f"task on node {t.node}: {t.state}" + (f" ({t.error})" if t.error else "")
        for t in state.nodes
        if t.state != "running"
    )
    return ServiceStatus(
        name=service.name,
        state=state.state,
        health=state.health,
        uptime_seconds=state.uptime_seconds(datetime.now(UTC)),
        image=state.image,
        version=state.version,
        urls=tuple(runtime.host_urls(service, state)),
        tasks=tasks,
        problems=problems,
    )


@dataclass(frozen=True)
class StatusRequest:
    """What ``monctl status`` is asked: the project, and the runtime it runs on."""

    project: Project
    runtime: Runtime


def perform(request: StatusRequest) -> StatusReport:
    """``monctl status``."""
    return status(request.project, request.runtime)


def status(project: Project, runtime: Runtime) -> StatusReport:
    """One row per declared service. Raise DockerUnavailable when Docker can't be reached."""
    states = runtime.states()
    rows = tuple(service_status(runtime, s, states.get(s.name)) for s in declared.SERVICES)
    return StatusReport(project.name, runtime.kind, rows)
