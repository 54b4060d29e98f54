"""``monctl validate``: check every configuration file before anything is deployed.

Given a project, the services to check and a mode, ``validate`` returns a
``ValidateReport`` listing each check (valid / invalid / error / skipped) and
every problem with the file and line the tool named. Nothing here needs a
running stack. Each service declares its checks (``monctl.services``):

- a ``ToolCheck`` runs a program of the service's own image: in ``docker``
  mode in a one-off container (``Runtime.tool_runner``), reading the files
  exactly as the service mounts them; in ``local`` mode from the host PATH
  against the same files (CI without Docker; a tool that is not installed is
  reported as skipped, which fails the run unless ``allow_missing_tools``: a
  check that checked nothing is no pass);
- a ``HostCheck`` runs on the host with Python (Grafana ships no offline checker).

A service that declares no check says so in the report.
"""

from __future__ import annotations

from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from monctl.config.problems import Problem, parse_problems, relative_name, summary_of
from monctl.errors import ExitCode
from monctl.redaction import redact
from monctl.services.model import HostCheck, Service, ToolCheck

if TYPE_CHECKING:  # pragma: no cover
    from monctl.project import Project
    from monctl.runtime import Runtime, ToolRunner

Mode = Literal["docker", "local"]
Status = Literal["valid", "invalid", "error", "skipped"]


@dataclass(frozen=True)
class CheckResult:
    service: str
    check: str
    status: Status
    summary: str
    problems: tuple[Problem, ...] = ()
    output: str = ""  # the tool's own words, shown when something is wrong
    files: tuple[str, ...] = ()  # what was checked, relative to the project root
    missing_tool: str = ""  # --local: the program that is not installed (not checked)

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
    allow_missing_tools: bool = False

    @property
    def missing_tools(self) -> tuple[str, ...]:
        return tuple(dict.fromkeys(r.missing_tool for r in self.results if r.missing_tool))

    @property
    def exit_code(self) -> ExitCode:
        """CONFIG when anything is invalid, FAILED when a check could not run (a tool
        missing, unless that is allowed), else OK."""
        if any(r.status == "invalid" for r in self.results):
            return ExitCode.CONFIG
        if any(r.status == "error" for r in self.results):
            return ExitCode.FAILED
        if self.missing_tools and not self.allow_missing_tools:
            return ExitCode.FAILED
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "mode": self.mode,
            "checks": [r.to_json() for r in self.results],
            "missing_tools": list(self.missing_tools),
            "allow_missing_tools": self.allow_missing_tools,
        }


def host_runner() -> ToolRunner:
    """Run the tool from the host PATH (``--local``)."""
    from monctl import runner

    def run(service: Service, argv: list[str]) -> tuple[int, str]:
        result = runner.run(argv, timeout=120)
        return result.returncode, (result.stdout or "") + (result.stderr or "")

    return run


def to_container(service: Service, path: Path, root: Path) -> str:
    """A host file under the service's config mount, as the container sees it."""
    assert service.config is not None
    inside = path.relative_to(root / service.config.host).as_posix()
    return f"{service.config.container}/{inside}"


def to_host(service: Service, path: str, root: Path) -> Path:
    """A path a tool named inside the container, as the host file it is."""
    if service.config is not None and path.startswith(service.config.container + "/"):
        return root / service.config.host / path[len(service.config.container) + 1 :]
    return root / path


def tool_argv(
    check: ToolCheck, service: Service, files: list[Path], root: Path, mode: Mode
) -> list[str]:
    """The command line of ``check`` over ``files`` (host paths) in ``mode``."""
    argv = check.local_argv if mode == "local" and check.local_argv else check.argv
    seen = [to_container(service, f, root) if mode == "docker" else str(f) for f in files]
    if mode == "local":
        argv = (check.program, *argv[1:])
    return [*argv, *(check.file_arg.format(f) for f in seen)]


def run_tool_check(
    check: ToolCheck, service: Service, project: Project, mode: Mode, run: ToolRunner
) -> CheckResult:
    files = sorted(project.root.glob(check.files))
    if not files:
        return CheckResult(service.name, check.name, "valid", f"no files match {check.files}")
    names = tuple(relative_name(f, project.root) for f in files)
    shown = (
        names[0]
        if len(names) == 1
        else f"{len(names)} files in {relative_name(files[0].parent, project.root)}/"
    )
    argv = tool_argv(check, service, files, project.root, mode)
    if mode == "local":
        import shutil

        if shutil.which(argv[0]) is None:
            return CheckResult(
                service.name,
                check.name,
                "skipped",
                f"{argv[0]} is not on PATH: not checked (from "
                f"{check.provided_by or f'the {service.name} image'}; or drop --local)",
                files=names,
                missing_tool=argv[0],
            )
    code, output = run(service, argv)
    output = redact(output)
    if code == 0:
        return CheckResult(service.name, check.name, "valid", shown, files=names)
    if not any(marker in output for marker in check.ran):
        last = [line for line in output.strip().splitlines() if line.strip()]
        return CheckResult(
            service.name,
            check.name,
            "error",
            f"{check.program} could not run: " + (last[-1] if last else f"exit status {code}"),
            output=output,
            files=names,
        )
    problems = parse_problems(
        output, lambda p: relative_name(to_host(service, p, project.root), project.root)
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


def run_host_check(check: HostCheck, service: Service, project: Project) -> CheckResult:
    problems, files = check.run(project.root)
    if problems:
        return CheckResult(
            service.name, check.name, "invalid", f"{len(problems)} problem(s)", tuple(problems)
        )
    return CheckResult(service.name, check.name, "valid", f"{files} file(s)")


def validate(
    project: Project,
    runtime: Runtime | None,
    services: tuple[Service, ...],
    mode: Mode,
    run: ToolRunner | None = None,
    allow_missing_tools: bool = False,
) -> ValidateReport:
    """Check the configuration of ``services``.

    ``run`` overrides how tools run (tests); by default ``docker`` mode uses the
    runtime's one-off containers and ``local`` mode the host PATH. Raise
    DockerUnavailable when docker mode is needed and the engine can't be reached.
    """
    runtime_kind = project.runtime
    tools = tuple(
        s for s in services if any(isinstance(c, ToolCheck) for c in s.checks_for(runtime_kind))
    )
    results: list[CheckResult] = []
    runners: AbstractContextManager[ToolRunner]
    if run is not None or not tools:
        runners = nullcontext(run or host_runner())
    elif mode == "local":
        runners = nullcontext(host_runner())
    else:
        assert runtime is not None
        runners = runtime.tool_runner(tools)
    with runners as runner:
        for service in services:
            if not service.checks:
                results.append(
                    CheckResult(
                        service.name, "-", "skipped", "nothing to check (no configuration files)"
                    )
                )
            for check in service.checks_for(runtime_kind):
                if isinstance(check, ToolCheck):
                    results.append(run_tool_check(check, service, project, mode, runner))
                else:
                    results.append(run_host_check(check, service, project))
    return ValidateReport(mode, tuple(results), allow_missing_tools)
