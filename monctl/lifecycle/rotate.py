"""``monctl credentials rotate``: a new password for the stack's user, handed to the
running services (``hand_over``, which ``up`` uses too when ``.env``'s credentials
changed), then waited for. What the credentials are and where they live is
``monctl/credentials.py``."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monctl import credentials
from monctl.errors import ExitCode
from monctl.health.report import AfterHealth

if TYPE_CHECKING:  # pragma: no cover
    from monctl.health.report import HealthReport
    from monctl.project import Project
    from monctl.result import Progress
    from monctl.runtime import Runtime


def hand_over(
    project: Project,
    runtime: Runtime,
    progress: Progress,
    names: tuple[str, ...] = credentials.HOLDERS,
) -> tuple[str, ...]:
    """Give the running holders among ``names`` the credentials now in ``.env``: compose
    creates their containers again (a secret is copied in at creation); Swarm rolls
    them onto the new secrets. Return the services handed over."""
    from monctl import services as declared

    states = runtime.states()
    present = tuple(s for s in declared.SERVICES if s.name in names and s.name in states)
    if not present:
        return ()
    progress.note(f"handing the new credentials to {', '.join(s.name for s in present)} …")
    if runtime.kind == "swarm":
        for service in present:
            runtime.roll_out(service, progress)
    else:
        from monctl.adapters import compose_cli

        compose_cli.up(project, [s.name for s in present], no_deps=True, recreate=True)
    return tuple(s.name for s in present)


@dataclass(frozen=True)
class RotateRequest:
    """What ``monctl credentials rotate`` is asked: the stack, and how long to wait for
    the services that get the new credentials."""

    project: Project
    runtime: Runtime
    timeout: float


def perform(request: RotateRequest, progress: Progress) -> RotateReport:
    """``monctl credentials rotate``."""
    return rotate_stack(
        request.project, request.runtime, timeout=request.timeout, progress=progress
    )


@dataclass(frozen=True)
class RotateReport(AfterHealth):
    """What ``monctl credentials rotate`` did (never the credentials themselves)."""

    project: str
    handed_over: tuple[str, ...]
    health: HealthReport | None = None
    code: ExitCode = ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return self.with_health(
            {
                "project": self.project,
                "rotated": [credentials.PASSWORD_VAR, credentials.WEB_CONFIG_VAR],
                "handed_over": list(self.handed_over),
            }
        )


def rotate_stack(
    project: Project, runtime: Runtime, *, timeout: float, progress: Progress
) -> RotateReport:
    """Rotate the credentials and hand them to the running services; wait until ready."""
    from monctl import services as declared

    credentials.rotate(project)
    handed = hand_over(project, runtime, progress)
    if not handed:
        return RotateReport(project.name, ())
    from monctl.health import check

    report = check.wait(
        project, runtime, declared.select(handed), timeout=timeout, deep=False, progress=progress
    )
    code = ExitCode.OK if report.stack_ok else ExitCode.UNHEALTHY
    return RotateReport(project.name, handed, report, code)
