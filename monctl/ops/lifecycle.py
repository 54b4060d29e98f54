"""Starting, stopping and describing the stack: the operations behind up, down and status."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monctl import catalogue
from monctl.adapters import compose, ports
from monctl.adapters.docker import ContainerInfo, Docker
from monctl.catalogue import Service
from monctl.errors import ExitCode, PortInUse
from monctl.ops import textfile
from monctl.ops.endpoints import published_urls
from monctl.output import Output, status_line, styled
from monctl.project import Project, ensure_env

if TYPE_CHECKING:  # pragma: no cover
    from monctl.ops.health import HealthReport

# Notification channels and the .env variable that switches each on. An empty
# value means "not configured": reported, never fatal (a fresh checkout must start).
CHANNELS: dict[str, str] = {
    "slack": "SLACK_WEBHOOK_URL",
    "pagerduty": "PAGERDUTY_ROUTING_KEY",
    "email": "SMTP_PASSWORD",
}
APP_NETWORK_VAR = "APP_NETWORK_NAME"
DEFAULT_APP_NETWORK = "residency-scheduler_app-network"


@dataclass(frozen=True)
class ServiceStatus:
    name: str
    state: str  # running, paused, exited, restarting, created, dead, missing
    health: str | None
    uptime_seconds: float | None
    image: str | None
    version: str | None
    urls: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "health": self.health,
            "uptime_seconds": None if self.uptime_seconds is None else round(self.uptime_seconds),
            "image": self.image,
            "version": self.version,
            "urls": list(self.urls),
        }


@dataclass(frozen=True)
class StatusReport:
    project: str
    services: tuple[ServiceStatus, ...]
    notes: tuple[str, ...] = ()
    health: HealthReport | None = None

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "project": self.project,
            "services": [s.to_json() for s in self.services],
        }
        if self.notes:
            doc["notes"] = list(self.notes)
        if self.health is not None:
            doc["health"] = self.health.to_json()
        return doc

    def render(self, out: Output) -> None:
        table = out.table("service", "state", "health", "uptime", "image", "version", "url")
        for s in self.services:
            table.add_row(
                s.name,
                styled(s.state),
                styled(s.health or "-"),
                _duration(s.uptime_seconds),
                s.image or "-",
                s.version or "-",
                "\n".join(s.urls) or "-",
            )
        out.print(table)
        for note in self.notes:
            out.print(note)


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"


def service_status(service: Service, info: ContainerInfo | None) -> ServiceStatus:
    if info is None:
        return ServiceStatus(service.name, "missing", None, None, None, None, ())
    return ServiceStatus(
        name=service.name,
        state=info.state,
        health=info.health,
        uptime_seconds=info.uptime_seconds(datetime.now(UTC)),
        image=info.image,
        version=info.version,
        urls=tuple(published_urls(info, service)),
    )


def status(project: Project, docker: Docker | None = None) -> StatusReport:
    """One row per catalogue service. Raise DockerUnavailable when Docker can't be reached."""
    docker = docker or Docker(project.name)
    containers = docker.inspect_all()
    rows = tuple(service_status(s, containers.get(s.name)) for s in catalogue.SERVICES)
    return StatusReport(project.name, rows)


def channel_notes(project: Project) -> list[str]:
    """One line per notification channel that is not configured yet."""
    return [
        f"{name}: not configured (set {var} in .env to enable it)"
        for name, var in CHANNELS.items()
        if not project.setting(var)
    ]


@dataclass
class UpResult:
    report: StatusReport
    exit_code: ExitCode
    created: list[str] = field(default_factory=list)


def _check_ports(project: Project, services: tuple[Service, ...], running: dict[str, Any]) -> None:
    """Fail before compose does, with the port and who holds it. Ports already
    held by this project's own running containers are of course fine."""
    for service in services:
        info = running.get(service.name)
        if info is not None and info.state == "running":
            continue
        port = project.host_port(service)
        if not ports.is_free(project.bind_address, port):
            raise PortInUse(port, project.bind_address, ports.who_listens(port), service.name)


def up(
    project: Project,
    services: tuple[Service, ...],
    *,
    timeout: float,
    wait: bool,
    out: Output,
) -> UpResult:
    """Start ``services`` (all when empty) and wait until they are ready.

    Exit code OK only when the stack's own services are ready in time; a missing
    application (backend or database) is reported in the notes, not fatal.
    """
    written = ensure_env(project)
    if written is not None:
        out.info(f"created {written} (mode 0600) with freshly generated secrets")
    compose.compose_command()  # a clear error now rather than a confusing one later
    compose.config_check(project)
    docker = Docker(project.name)

    selected = services or catalogue.SERVICES
    # Ports first: a refused start should leave nothing behind, not even a network.
    _check_ports(project, selected, docker.inspect_all())

    # node-exporter mounts this directory; made here, it belongs to the operator
    # who runs `monctl backup`, not to root (what Docker would create).
    textfile.textfile_dir(project).mkdir(parents=True, exist_ok=True)

    network = project.setting(APP_NETWORK_VAR, DEFAULT_APP_NETWORK)
    created = []
    if not docker.network_exists(network):
        docker.create_network(network)
        created.append(network)
        out.info(f"created the application network {network} (the application is not running yet)")

    out.info(f"starting {', '.join(s.name for s in selected)} …")
    compose.up(project, [s.name for s in services])

    notes = channel_notes(project)
    health_report = None
    code = ExitCode.OK
    if wait:
        from monctl.ops import health

        with status_line(out, "waiting for the stack to be ready…") as show:
            health_report = health.wait(
                project,
                selected,
                timeout=timeout,
                deep=True,
                progress=health.progress_line(show, timeout),
            )
        if not health_report.stack_ok:
            code = ExitCode.UNHEALTHY
            notes.append(f"not ready within {timeout:.0f}s: see `monctl health` for details")
        if not health_report.targets_ok:
            notes.append(
                "the application is not reachable yet (backend or database down): "
                "reported, not fatal — start it and check with `monctl health`"
            )
    report = status(project, docker)
    report = StatusReport(report.project, report.services, tuple(notes), health_report)
    return UpResult(report, code, created)


def volumes(project: Project) -> list[str]:
    """The Docker volumes of this project (what `down --volumes` would delete)."""
    return Docker(project.name).project_volumes()


def down(project: Project, volumes: bool) -> None:
    """Stop and remove the stack's containers; with ``volumes`` also its data."""
    compose.down(project, volumes)
