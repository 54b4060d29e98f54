"""Starting, stopping and describing the stack: the operations behind up, down and status.

Each returns a result with its exit code (``monctl.result``); none draws
anything: ``up`` reports what it does through ``progress``. The runtime
(``monctl.runtime``) does the starting and stopping; this module decides what
to start, waits for it with the health check, and describes the outcome.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monctl import services as declared
from monctl.errors import ExitCode
from monctl.health.report import AfterHealth
from monctl.project import Project, ensure_env
from monctl.result import SILENT, Progress

if TYPE_CHECKING:  # pragma: no cover
    from monctl.health.report import HealthReport
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


def status(project: Project, runtime: Runtime) -> StatusReport:
    """One row per declared service. Raise DockerUnavailable when Docker can't be reached."""
    states = runtime.states()
    rows = tuple(service_status(runtime, s, states.get(s.name)) for s in declared.SERVICES)
    return StatusReport(project.name, runtime.kind, rows)


def unset_secrets(project: Project) -> list[str]:
    """One line per start secret (a notification channel) that is not set yet."""
    return [
        f"{secret.channel}: not configured (set {secret.var} in .env to enable it)"
        for service in declared.SERVICES
        for secret in service.start_secrets
        if not project.setting(secret.var)
    ]


def up(
    project: Project,
    runtime: Runtime,
    services: tuple[Service, ...],
    *,
    timeout: float,
    wait: bool,
    progress: Progress = SILENT,
) -> StatusReport:
    """Start ``services`` (all when empty) and wait until they are ready.

    Exit code OK only when the stack's own services are ready in time; a missing
    application (backend or database) is reported in the notes, not fatal.
    """
    from monctl import credentials
    from monctl.monitoring import textfile

    written = ensure_env(project)
    if written is not None:
        progress.note(f"created {written} (mode 0600) with freshly generated secrets")
    # The stack's credentials (a stack from before them gets them here); never printed.
    changed = credentials.ensure(project)
    for done in changed:
        progress.note(done)
    # node-exporter mounts this directory; made here, it belongs to the operator
    # who runs `monctl backup`, not to root (what Docker would create).
    textfile.textfile_dir(project).mkdir(parents=True, exist_ok=True)
    selected = services or tuple(declared.SERVICES)
    progress.note(f"starting {', '.join(s.name for s in selected)} …")
    # Compose copies a secret into a container when it creates it: the holders that
    # `compose up` leaves as they were keep the old credentials. (Swarm names its
    # secrets by their content: a changed one rolls the service by itself.)
    before: dict[str, str] = {}
    if changed and runtime.kind == "compose":
        before = {n: s.id for n, s in runtime.states().items() if n in credentials.HOLDERS}
    runtime.up(services, progress)
    if before:
        after = runtime.states()
        stale = tuple(n for n, i in before.items() if n in after and after[n].id == i)
        credentials.hand_over(project, runtime, progress, stale)

    notes = unset_secrets(project)
    health_report = None
    code = ExitCode.OK
    if wait:
        from monctl.health import check

        # Deep checks judge the whole stack (Prometheus' view of every target): for
        # some services only, the stack is partial by request, so their readiness is
        # what `up` waits for.
        health_report = check.wait(
            project, runtime, selected, timeout=timeout, deep=not services, progress=progress
        )
        if not health_report.stack_ok:
            code = ExitCode.UNHEALTHY
            notes.append(f"not ready within {timeout:.0f}s: see `monctl health` for details")
        if not health_report.targets_ok:
            notes.append(
                "the application is not reachable yet (backend or database down): "
                "reported, not fatal — start it and check with `monctl health`"
            )
    report = status(project, runtime)
    return StatusReport(
        report.project, report.runtime, report.services, tuple(notes), health_report, code
    )


@dataclass(frozen=True)
class DownReport:
    project: str
    volumes_deleted: bool

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"project": self.project, "volumes_deleted": self.volumes_deleted}


def down(project: Project, runtime: Runtime, volumes: bool) -> DownReport:
    """Stop and remove the stack's containers; with ``volumes`` also its data."""
    runtime.down(volumes)
    return DownReport(project.name, volumes)
