"""``monctl validate``: check every configuration file before anything is deployed.

Given a project, the services to check and a mode, ``validate`` returns a
``ValidateReport`` listing each check (valid / invalid / error) and every
problem with the file and line the tool named. Nothing here needs a running
stack:

- ``docker`` mode runs the pinned images' own tools (promtool, amtool) in
  one-off containers through ``docker compose run``, so files are read exactly
  as the service mounts them;
- ``local`` mode runs promtool / amtool from the host PATH against the same
  files (for CI without Docker);
- Grafana's provisioning YAML and dashboard JSON are checked on the host with
  Python in both modes (``grafana_config``: Grafana ships no offline checker).

Problems and the parsing of the tools' output live in ``config_problems``.

Which checks a service gets is chosen by its catalogue ``reload`` strategy
(``prometheus-lifecycle``, ``alertmanager-lifecycle``, ``grafana-provisioning``);
the others have nothing to validate.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from monctl import catalogue
from monctl.catalogue import ReloadKind, Service
from monctl.errors import ExitCode
from monctl.ops.config_problems import Problem, parse_problems, relative_name, summary_of
from monctl.ops.grafana_config import check_dashboards, check_provisioning
from monctl.output import Output, styled
from monctl.project import Project
from monctl.secrets import redact

Mode = Literal["docker", "local"]
Status = Literal["valid", "invalid", "error"]

# Where the compose file mounts each service's config directory (checked
# against compose/docker-compose.monitoring.yml by tests/reload/test_validate.py).
MOUNTS: dict[str, tuple[str, str]] = {
    "prometheus": ("config/prometheus", "/etc/prometheus"),
    "alertmanager": ("config/alertmanager", "/etc/alertmanager"),
}


@dataclass(frozen=True)
class ToolCheck:
    """One run of a checking tool: ``tool args... files...``.

    ``files`` is either the catalogue's in-container config path (``None``:
    use ``service.validate``) or a glob relative to the project root.
    """

    name: str
    tool: str
    args: tuple[str, ...]
    files: str | None
    ran: str  # text the tool always prints once it runs: proves a failure is the tool's verdict
    # --local reads host files: paths the config names are container paths (a rule
    # glob under /etc/prometheus would match the HOST's files), so skip them there;
    # the rules are checked on their own by the "rules" check.
    local_args: tuple[str, ...] | None = None


TOOL_CHECKS: dict[ReloadKind, tuple[ToolCheck, ...]] = {
    "prometheus-lifecycle": (
        ToolCheck(
            "config",
            "promtool",
            ("check", "config"),
            None,
            "Checking",
            ("check", "config", "--syntax-only"),
        ),
        ToolCheck(
            "rules", "promtool", ("check", "rules"), "config/prometheus/rules/*.y*ml", "Checking"
        ),
        ToolCheck(
            "rule tests",
            "promtool",
            ("test", "rules"),
            "config/prometheus/tests/*.y*ml",
            "Unit Testing",
        ),
    ),
    "alertmanager-lifecycle": (ToolCheck("config", "amtool", ("check-config",), None, "Checking"),),
}


@dataclass(frozen=True)
class CheckResult:
    service: str
    check: str
    status: Status
    summary: str
    problems: tuple[Problem, ...] = ()
    output: str = ""  # the tool's own words, shown when something is wrong
    files: tuple[str, ...] = ()  # what was checked, relative to the project root

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "check": self.check,
            "status": self.status,
            "summary": self.summary,
            "problems": [p.to_json() for p in self.problems],
            "output": self.output,
            "files": list(self.files),
        }


@dataclass(frozen=True)
class ValidateReport:
    mode: Mode
    results: tuple[CheckResult, ...]

    @property
    def exit_code(self) -> ExitCode:
        """CONFIG when anything is invalid, FAILED when a check could not run, else OK."""
        if any(r.status == "invalid" for r in self.results):
            return ExitCode.CONFIG
        if any(r.status == "error" for r in self.results):
            return ExitCode.FAILED
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "command": "validate",
            "mode": self.mode,
            "ok": self.exit_code == ExitCode.OK,
            "exit_code": int(self.exit_code),
            "checks": [r.to_json() for r in self.results],
        }

    def render(self, out: Output) -> None:
        how = (
            "pinned images via `docker compose run`"
            if self.mode == "docker"
            else "promtool/amtool from the host PATH"
        )
        table = out.table("SERVICE", "CHECK", "RESULT", "DETAIL", title=f"validate ({how})")
        for r in self.results:
            table.add_row(r.service, r.check, styled(r.status), styled(r.summary))
        out.print(table)
        for r in self.results:
            if r.status == "valid":
                continue
            out.print(f"{r.service} {r.check}:")
            for p in r.problems:
                out.print(f"  {p.describe()}")
            if r.output and not r.problems:
                for line in r.output.strip().splitlines():
                    out.print(f"  | {line}")


# -- running the tools ---------------------------------------------------------
# (exit status, combined output) of `tool args...`, files given as the tool sees them.
ToolRunner = Callable[[Service, str, list[str]], tuple[int, str]]


def host_runner() -> ToolRunner:
    """Run the tool from the host PATH (``--local``)."""
    from monctl import runner
    from monctl.errors import ConfigError

    def run(service: Service, tool: str, args: list[str]) -> tuple[int, str]:
        missing = ConfigError(
            f"{tool} is not on PATH (needed by --local for {service.name})",
            hint="install it (Debian: prometheus / prometheus-alertmanager), or drop --local",
        )
        result = runner.run([tool, *args], timeout=120, missing=missing)
        return result.returncode, (result.stdout or "") + (result.stderr or "")

    return run


# The prometheus service joins the application's external network, which a
# pull-request check has no reason to need (or create): the one-off containers
# get no network at all. Everything else (image, mounts, user) stays as defined.
_NO_NETWORK = """services:
{services}"""
_NO_NETWORK_SERVICE = """  {name}:
    networks: !reset []
    network_mode: none
"""


def compose_runner(project: Project, override: Path) -> ToolRunner:
    """Run the tool in a one-off container of the service's pinned image."""
    from monctl.adapters import compose

    def run(service: Service, tool: str, args: list[str]) -> tuple[int, str]:
        result = compose.run(
            project,
            "--file",
            str(override),
            "run",
            "--rm",
            "--no-deps",
            "-T",
            "--entrypoint",
            tool,
            service.name,
            *args,
            timeout=300,
        )
        return result.returncode, (result.stdout or "") + (result.stderr or "")

    return run


# -- the checks ------------------------------------------------------------------
def _to_container(service: Service, host: Path, root: Path) -> str:
    host_dir, container_dir = MOUNTS[service.name]
    return f"{container_dir}/{host.relative_to(root / host_dir).as_posix()}"


def _to_host(service: Service, path: str, root: Path) -> Path:
    host_dir, container_dir = MOUNTS[service.name]
    if path.startswith(container_dir + "/"):
        return root / host_dir / path[len(container_dir) + 1 :]
    return root / path


def _files(check: ToolCheck, service: Service, project: Project) -> list[Path]:
    """Host paths of the files ``check`` covers."""
    if check.files is None:
        return [_to_host(service, service.validate[-1], project.root)]
    return sorted(project.root.glob(check.files))


def run_tool_check(
    check: ToolCheck, service: Service, project: Project, mode: Mode, run: ToolRunner
) -> CheckResult:
    files = _files(check, service, project)
    if not files:
        return CheckResult(service.name, check.name, "valid", f"no files match {check.files}")
    as_seen = [
        _to_container(service, f, project.root) if mode == "docker" else str(f) for f in files
    ]
    args = check.local_args if mode == "local" and check.local_args else check.args
    code, output = run(service, check.tool, [*args, *as_seen])
    output = redact(output)
    names = tuple(relative_name(f, project.root) for f in files)
    shown = (
        names[0]
        if len(names) == 1
        else f"{len(names)} files in {relative_name(files[0].parent, project.root)}/"
    )
    if code == 0:
        return CheckResult(service.name, check.name, "valid", shown, files=names)
    if check.ran not in output:
        last = [line for line in output.strip().splitlines() if line.strip()]
        return CheckResult(
            service.name,
            check.name,
            "error",
            f"{check.tool} could not run: " + (last[-1] if last else f"exit status {code}"),
            output=output,
            files=names,
        )
    problems = parse_problems(
        output, lambda p: relative_name(_to_host(service, p, project.root), project.root)
    )
    if not problems:
        only = relative_name(files[0], project.root) if len(files) == 1 else None
        problems = (Problem(only, None, summary_of(output)),)
    return CheckResult(
        service.name,
        check.name,
        "invalid",
        f"{len(problems)} problem(s) ({shown})",
        problems,
        output,
        names,
    )


# -- Grafana, checked on the host (see grafana_config) ---------------------------
def _grafana(project: Project) -> Iterator[CheckResult]:
    for name, (problems, files) in (
        ("provisioning", check_provisioning(project.root)),
        ("dashboards", check_dashboards(project.root)),
    ):
        if problems:
            yield CheckResult(
                "grafana", name, "invalid", f"{len(problems)} problem(s)", tuple(problems)
            )
        else:
            yield CheckResult("grafana", name, "valid", f"{files} file(s)")


HOST_CHECKS: dict[ReloadKind, Callable[[Project], Iterator[CheckResult]]] = {
    "grafana-provisioning": _grafana,
}


def validate(
    project: Project,
    services: tuple[Service, ...],
    mode: Mode,
    run: ToolRunner | None = None,
) -> ValidateReport:
    """Check the configuration of ``services`` (every one when empty).

    ``run`` overrides how tools run (tests); by default ``docker`` mode uses
    ``docker compose run`` and ``local`` mode the host PATH. Raise
    DockerUnavailable when docker mode is needed and the engine can't be reached.
    """
    selected = services or catalogue.SERVICES
    needs_tools = any(s.reload in TOOL_CHECKS for s in selected)
    results: list[CheckResult] = []
    with tempfile.TemporaryDirectory(prefix="monctl-validate-") as tmp:
        if run is None and needs_tools:
            run = _default_runner(project, mode, selected, Path(tmp))
        for service in selected:
            for check in TOOL_CHECKS.get(service.reload, ()):
                assert run is not None
                results.append(run_tool_check(check, service, project, mode, run))
            host = HOST_CHECKS.get(service.reload)
            if host is not None:
                results.extend(host(project))
    return ValidateReport(mode, tuple(results))


def _default_runner(
    project: Project, mode: Mode, services: tuple[Service, ...], tmp: Path
) -> ToolRunner:
    if mode == "local":
        return host_runner()
    from monctl.adapters import compose
    from monctl.adapters.docker import connect

    compose.compose_command()
    connect(project.name)  # DockerUnavailable now, not a confusing compose error later
    override = tmp / "no-network.override.yml"
    override.write_text(
        _NO_NETWORK.format(
            services="".join(
                _NO_NETWORK_SERVICE.format(name=s.name) for s in services if s.reload in TOOL_CHECKS
            )
        ),
        encoding="utf-8",
    )
    return compose_runner(project, override)
