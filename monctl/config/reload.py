"""``monctl reload``: check a service's configuration, apply it, and confirm it is live.

Given the project, its runtime and the services to reload, ``reload`` returns
a ``ReloadReport`` with one ``Outcome`` per service. It keeps going after a
failure; the report's exit code is the worst one seen (the highest number: a
refused configuration, CONFIG 6, outranks a failed reload, FAILED 1).

How a service reloads is its declaration's ``reload`` (``monctl.services``):
an HTTP reload confirmed by metrics or by its answer, a provisioning API, a
restart, or nothing. Before anything is touched, the service's checks run
(``Context.refusal``): tools marked ``gates_reload`` inside the running
container, host checks on the files; a failure leaves the running
configuration in place. The kinds themselves are in ``reload_kinds``.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monctl.config.reload_report import Outcome, ReloadReport
from monctl.errors import ExitCode, MonctlError
from monctl.result import SILENT, Progress
from monctl.services.model import HostCheck, Service, ToolCheck

if TYPE_CHECKING:  # pragma: no cover
    from monctl.project import Project
    from monctl.runtime import Runtime, ServiceState

READY_TIMEOUT = 120.0  # seconds for a restarted service to become ready


@dataclass
class Context:
    """What a reload kind needs: the project, its runtime, and the checks to run first."""

    project: Project
    runtime: Runtime
    validate: bool
    progress: Progress = SILENT
    states: dict[str, ServiceState] = field(default_factory=dict)
    ready_timeout: float = READY_TIMEOUT

    def url(self, service: Service) -> str:
        from monctl.errors import OperationFailed
        from monctl.health.endpoints import discover

        endpoint = discover(self.project, self.runtime, (service,), self.states)[service.name]
        if not endpoint.url:
            raise OperationFailed(
                f"{service.name} publishes no port monctl can reach",
                hint=f"check {service.port_var} in .env, or set {service.url_var}",
            )
        return endpoint.url

    def refusal(self, service: Service) -> Outcome | None:
        """Run the service's checks before it is touched; an Outcome when they fail."""
        if not self.validate:
            return None
        from monctl.config.validate import tool_argv

        root = self.project.root
        for check in service.checks_for(self.project.runtime):
            if not isinstance(check, ToolCheck) or not check.gates_reload:
                continue
            files = sorted(root.glob(check.files))
            argv = tool_argv(check, service, files, root, "docker")
            where = "inside the container" if self.runtime.live_config else "in its image"
            self.progress.note(
                f"{service.name}: checking the configuration with {check.program} ({where})"
            )
            with self.runtime.check_runner(service) as run:
                code, output = run(service, argv)
            if code != 0:
                return Outcome(
                    service.name,
                    "refused",
                    f"{check.program} found errors; {service.title} was not touched "
                    "(its running configuration stays)",
                    lines(output),
                    f"fix the file named above, then run `monctl reload {service.name}` again",
                    ExitCode.CONFIG,
                )
        for host in service.checks:
            if not isinstance(host, HostCheck):
                continue
            problems, _ = host.run(root)
            if problems:
                return Outcome(
                    service.name,
                    "refused",
                    f"{host.name} invalid; {service.title} was not touched",
                    tuple(p.describe() for p in problems),
                    "fix the file and line named above, then reload again",
                    ExitCode.CONFIG,
                )
        return None

    def ready_or_why(self, service: Service) -> str | None:
        from monctl.health.check import ready_or_why

        return ready_or_why(self.project, self.runtime, service, self.ready_timeout)


def lines(text: str, limit: int = 40) -> tuple[str, ...]:
    """A tool's or a service's own words, secrets masked, at most ``limit`` lines."""
    from monctl.redaction import redact

    found = [line.rstrip() for line in redact(text).strip().splitlines() if line.strip()]
    return tuple(found[:limit])


def _not_running(service: Service, state: ServiceState | None) -> Outcome | None:
    if state is not None and state.state == "running":
        return None
    shown = state.state if state else "no container"
    return Outcome(
        service.name,
        "refused",
        f"{service.name} is not running ({shown}): nothing to reload, and its checks run inside it",
        hint=f"start it with `monctl up {service.name}`; "
        f"`monctl validate {service.name}` checks files without a running stack",
        exit_code=ExitCode.FAILED,
    )


def reload(
    project: Project,
    runtime: Runtime,
    services: tuple[Service, ...],
    *,
    validate: bool = True,
    progress: Progress = SILENT,
    ready_timeout: float = READY_TIMEOUT,
) -> ReloadReport:
    """Reload each of ``services`` in turn; one failure never stops the others.

    Raise DockerUnavailable when the engine cannot be reached.
    """
    from monctl.config import reload_kinds
    from monctl.services.model import NoReload

    ctx = Context(project, runtime, validate, progress, runtime.states(), ready_timeout)
    outcomes: list[Outcome] = []
    for service in services:
        if not isinstance(service.reload, NoReload):
            refused = _not_running(service, ctx.states.get(service.name))
            if refused is not None:
                outcomes.append(refused)
                continue
        try:
            outcomes.append(reload_kinds.apply(service, ctx))
        except MonctlError as exc:
            outcomes.append(
                Outcome(service.name, "failed", exc.message, hint=exc.hint, exit_code=exc.exit_code)
            )
    return ReloadReport(tuple(outcomes))
