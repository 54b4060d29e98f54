"""Finding the stack on disk and reading its ``.env``.

A project directory holds ``compose/docker-compose.monitoring.yml``,
``config/`` and ``.env`` (created from ``.env.example`` on first ``up``).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from monctl import RUNTIMES as RUNTIMES  # declared once, beside the version
from monctl import redaction
from monctl.envfile import parse_env as parse_env  # re-exported: callers read .env text too
from monctl.envfile import read_env, read_env_text
from monctl.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from monctl.services.model import Service

COMPOSE_FILE = Path("compose") / "docker-compose.monitoring.yml"
DEFAULT_PROJECT_NAME = "monitoring"
DEFAULT_BIND_ADDRESS = "127.0.0.1"
RUNTIME_VAR = "MONCTL_RUNTIME"  # how the stack runs: compose (one engine) or swarm
GENERATE_MARKER = "__GENERATE__"  # in .env.example: replaced by a fresh secret

# ASCII digits only: int() would also take "+80", "8_0" and Arabic-Indic digits.
_PORT = re.compile(r"[0-9]{1,5}")


@dataclass
class Project:
    root: Path
    name: str = DEFAULT_PROJECT_NAME
    env: dict[str, str] = field(default_factory=dict)
    runtime_option: str | None = None  # --runtime on the command line
    # Compose files applied over the stack's own (a throwaway copy's: no ports, own labels).
    compose_overrides: tuple[Path, ...] = ()
    # Another .env than the project's own (a throwaway copy's, with its own credentials).
    env_path: Path | None = None

    @property
    def compose_file(self) -> Path:
        return self.root / COMPOSE_FILE

    @property
    def env_file(self) -> Path:
        return self.env_path or self.root / ".env"

    @property
    def env_example(self) -> Path:
        return self.root / ".env.example"

    @property
    def bind_address(self) -> str:
        return self.setting("MONITORING_BIND_ADDRESS", DEFAULT_BIND_ADDRESS)

    @property
    def runtime(self) -> str:
        """How the stack runs: ``--runtime``, else MONCTL_RUNTIME (environment, then
        .env), else compose."""
        chosen = self.runtime_option or self.setting(RUNTIME_VAR, RUNTIMES[0])
        if chosen not in RUNTIMES:
            raise ConfigError(
                f"{RUNTIME_VAR}={chosen[:40]!r} is not a runtime monctl knows",
                hint=f"use one of: {', '.join(RUNTIMES)}",
            )
        return chosen

    def setting(self, name: str, default: str = "") -> str:
        """A setting: the process environment wins over .env, as in compose."""
        return os.environ.get(name) or self.env.get(name) or default

    def host_port(self, service: Service) -> int:
        """The host port of ``service`` (ConfigError naming the variable when it is not one)."""
        var = service.port_var
        value = self.setting(var, str(service.default_port)).strip()
        if not _PORT.fullmatch(value) or not 1 <= int(value) <= 65535:
            where = "the environment" if os.environ.get(var) else ".env"
            raise ConfigError(
                f"{var} in {where} is not a port number (1-65535)",
                hint=f"set {var} to a port between 1 and 65535",
            )
        return int(value)

    def check_settings(self) -> None:
        """What .env's rules say of its values, checked before any command acts (a
        broken .env stops every command with exit 6, not only the one that reads the
        bad value): every ``*_PORT`` a port number, MONCTL_RUNTIME a known runtime."""
        from monctl import services

        port_vars = {s.port_var for s in services.SERVICES if s.port_var}
        port_vars |= {key for key in self.env if key.endswith("_PORT")}
        for var in sorted(port_vars):
            value = self.setting(var).strip()
            if value and (not _PORT.fullmatch(value) or not 1 <= int(value) <= 65535):
                where = "the environment" if os.environ.get(var) else ".env"
                raise ConfigError(
                    f"{var} in {where} is not a port number (1-65535)",
                    hint=f"set {var} to a port between 1 and 65535",
                )
        self.runtime  # noqa: B018 (ConfigError when MONCTL_RUNTIME names no runtime)

    def load_env(self) -> None:
        """Read .env (if present) and register its secrets for redaction."""
        if self.env_file.exists():
            self.env = read_env(self.env_file)
            redaction.register_env(self.env)
        redaction.register_env(dict(os.environ))


def find_root(explicit: Path | None, start: Path | None = None) -> Path:
    """The project directory: ``explicit`` if given, else the nearest of the
    current directory and its parents that holds the compose file."""
    if explicit is not None:
        root = explicit.expanduser().resolve()
        if not (root / COMPOSE_FILE).is_file():
            raise ConfigError(
                f"{root} does not hold a monitoring stack ({COMPOSE_FILE} is missing)",
                hint="point --project-dir at the stack, or create one with `monctl init DIR`",
            )
        return root
    here = (start or Path.cwd()).resolve()
    for candidate in (here, *here.parents):
        if (candidate / COMPOSE_FILE).is_file():
            return candidate
    raise ConfigError(
        f"no monitoring stack found in {here} or its parents",
        hint="cd into the stack, pass --project-dir, or create one with `monctl init DIR`",
    )


def load(explicit: Path | None, name: str | None, runtime: str | None = None) -> Project:
    project = Project(
        root=find_root(explicit), name=name or DEFAULT_PROJECT_NAME, runtime_option=runtime
    )
    project.load_env()
    project.check_settings()
    return project


def ensure_env(project: Project) -> Path | None:
    """Create .env from .env.example with fresh secrets if it is missing.

    Return the path written, or None when .env already existed. The file is
    created with mode 0600 before anything is written into it.
    """
    if project.env_file.exists():
        return None
    if not project.env_example.is_file():
        raise ConfigError(
            f"neither .env nor .env.example exists in {project.root}",
            hint="restore .env.example from the stack, or run `monctl init DIR`",
        )
    lines = []
    for line in read_env_text(project.env_example, ".env.example").splitlines():
        if GENERATE_MARKER in line:
            line = line.replace(GENERATE_MARKER, redaction.generate())
        lines.append(line)
    fd = os.open(project.env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines) + "\n")
    project.load_env()
    return project.env_file


def packaged_stack() -> Path:
    """Where the stack's files ship: inside the wheel, or the source checkout."""
    from importlib import resources  # only `init` needs these: keep start-up lean

    bundled = Path(str(resources.files("monctl"))) / "_stack"
    if (bundled / COMPOSE_FILE).is_file():
        return bundled
    checkout = Path(__file__).resolve().parent.parent
    if (checkout / COMPOSE_FILE).is_file():
        return checkout
    raise ConfigError("this installation of monctl carries no stack files")


def init(target: Path, force: bool = False) -> Path:
    """Write an editable copy of the stack (compose/, config/, .env.example) to ``target``."""
    import shutil

    source = packaged_stack()
    target = target.expanduser().resolve()
    if (target / COMPOSE_FILE).exists() and not force:
        raise ConfigError(
            f"{target} already holds a stack",
            hint="`monctl init --upgrade DIR` updates it keeping your edits "
            "(--force overwrites them)",
        )
    target.mkdir(parents=True, exist_ok=True)
    for part in ("compose", "config"):
        shutil.copytree(source / part, target / part, dirs_exist_ok=True)
    shutil.copy2(source / ".env.example", target / ".env.example")
    from monctl.lifecycle.upgrade import record_init

    record_init(source, target)  # what `init --upgrade` tells edits from
    return target
