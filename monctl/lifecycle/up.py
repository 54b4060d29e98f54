"""``monctl up``: start the stack (or some services) and wait until it is ready.

The runtime (``monctl.runtime``) does the starting; this module decides what to start
(``.env`` and the stack's credentials first), waits with the health check and describes
the outcome (``status.StatusReport``). It reports what it does through ``progress``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from monctl import services as declared
from monctl.errors import ExitCode
from monctl.lifecycle.status import StatusReport, status
from monctl.project import Project, ensure_env
from monctl.result import SILENT, Progress

if TYPE_CHECKING:  # pragma: no cover
    from monctl.runtime import Runtime
    from monctl.services.model import Service


UP_TIMEOUT = 180.0  # seconds to wait until ready (the command's --timeout default)


@dataclass(frozen=True)
class UpRequest:
    """What ``monctl up`` is asked: which services (empty: all), whether to wait until
    they are ready, and how long."""

    project: Project
    runtime: Runtime
    services: tuple[Service, ...] = ()
    timeout: float = UP_TIMEOUT
    wait: bool = True


def perform(request: UpRequest, progress: Progress = SILENT) -> StatusReport:
    """``monctl up``."""
    return up(
        request.project,
        request.runtime,
        request.services,
        timeout=request.timeout,
        wait=request.wait,
        progress=progress,
    )


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
    from monctl.lifecycle.rotate import hand_over
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
        hand_over(project, runtime, progress, stale)

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
