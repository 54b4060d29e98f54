"""``monctl reload``: check a service's configuration, apply it, and confirm it is live.

Given a ``Stack`` (where each service answers, and how to check, restart and
inspect it) and the services to reload, ``reload`` returns a ``ReloadReport``
with one ``Outcome`` per service. It keeps going after a failure; the report's
exit code is the worst one seen (the highest number: a refused configuration,
CONFIG 6, outranks a failed reload, FAILED 1).

Per-service behaviour is the catalogue's ``reload`` strategy, looked up in
``STRATEGIES``:

- ``prometheus-lifecycle`` / ``alertmanager-lifecycle``: the check command runs
  first (``Stack.check``: ``docker exec`` in production, anything in tests); a
  failure stops before the service is touched. Then ``POST /-/reload`` and a
  confirmation read from the service's own metrics (success flag, a success
  timestamp newer than before, Alertmanager's config hash);
- ``grafana-provisioning``: dashboard JSON syntax, then the provisioning API;
- ``promtail-runtime``: ``POST /reload``, or a restart when runtime reload is off;
- ``restart``: no reload API upstream, so restart and wait until ready;
- ``none``: nothing to reload.

This module holds the flow (``Stack``, ``STRATEGIES``, ``reload``,
``from_docker``); the strategies themselves are in ``reload_strategies`` and
the report in ``reload_report``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

from monctl.catalogue import ReloadKind, Service
from monctl.errors import ExitCode, MonctlError
from monctl.ops import reload_strategies as strategies
from monctl.ops.reload_report import Outcome, ReloadReport
from monctl.output import Output
from monctl.project import Project

READY_TIMEOUT = 120.0  # seconds for a restarted service to become ready


@dataclass
class Stack:
    """The running stack as reload needs it; every action is a replaceable function.

    Production builds one from Docker (``from_docker``); the integration tests
    build one around host binaries (``check`` runs host promtool on the same files).
    """

    project: Project
    urls: dict[str, str | None]  # base URL per service name; None: not published
    check: Callable[[Service], tuple[int, str]] | None  # None: --no-validate
    restart: Callable[[Service], None]
    wait_ready: Callable[[Service], str | None]  # None when ready, else why not
    not_running: Callable[[Service], str | None] = lambda s: None  # why it can't be reloaded
    started_env: Callable[[Service], dict[str, str] | None] = lambda s: None
    say: Callable[[str], None] = lambda message: None
    validate: bool = field(init=False)

    def __post_init__(self) -> None:
        self.validate = self.check is not None


Strategy = Callable[[Service, Stack], Outcome]
STRATEGIES: dict[ReloadKind, Strategy] = {
    "prometheus-lifecycle": strategies.lifecycle,
    "alertmanager-lifecycle": strategies.lifecycle,
    "grafana-provisioning": strategies.grafana_provisioning,
    "promtail-runtime": strategies.promtail_runtime,
    "restart": strategies.restart,
    "none": strategies.nothing,
}


def reload(stack: Stack, services: tuple[Service, ...]) -> ReloadReport:
    """Reload each of ``services`` in turn; one failure never stops the others."""
    outcomes: list[Outcome] = []
    for service in services:
        if service.reload != "none":
            reason = stack.not_running(service)
            if reason is not None:
                outcomes.append(
                    Outcome(
                        service.name,
                        "refused",
                        reason,
                        hint=f"start it with `monctl up {service.name}`; "
                        f"`monctl validate {service.name}` checks files without a running stack",
                        exit_code=ExitCode.FAILED,
                    )
                )
                continue
        try:
            outcomes.append(STRATEGIES[service.reload](service, stack))
        except MonctlError as exc:
            outcomes.append(
                Outcome(service.name, "failed", exc.message, hint=exc.hint, exit_code=exc.exit_code)
            )
    return ReloadReport(tuple(outcomes))


def from_docker(
    project: Project, services: tuple[Service, ...], validate: bool, out: Output
) -> Stack:
    """The production ``Stack``: endpoints, checks and restarts through Docker.

    Raise DockerUnavailable when the engine cannot be reached.
    """
    from monctl.adapters.docker import Docker
    from monctl.ops import health
    from monctl.ops.endpoints import discover

    docker = Docker(project.name)
    containers = docker.inspect_all()
    endpoints = discover(project, services, containers)

    def not_running(service: Service) -> str | None:
        info = containers.get(service.name)
        if info is None or info.state != "running":
            state = info.state if info else "no container"
            return (
                f"{service.name} is not running ({state}): nothing to reload, "
                "and its checks run inside it"
            )
        return None

    def check(service: Service) -> tuple[int, str]:
        return docker.exec(service.name, list(service.validate))

    def wait_ready(service: Service) -> str | None:
        report = health.wait(project, (service,), timeout=READY_TIMEOUT, deep=False)
        if report.stack_ok:
            return None
        row = report.services[0] if report.services else None
        return row.detail if row else "not ready"

    return Stack(
        project=project,
        urls={name: e.url for name, e in endpoints.items()},
        check=check if validate else None,
        restart=lambda s: docker.restart(s.name),
        wait_ready=wait_ready,
        not_running=not_running,
        started_env=lambda s: docker.container_env(s.name),
        say=out.info,
    )
