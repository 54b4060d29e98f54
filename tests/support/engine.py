"""The real stack on a real Docker engine: a throw-away copy with its own ports and names.

The fixtures built on these live in tests/conftest.py and tests/e2e/conftest.py.
The images come from tests/images/build.sh (nothing can be pulled in CI); Grafana,
Loki, Promtail and cAdvisor are stand-ins there (tests/images/standin/).
"""

from __future__ import annotations

import functools
import os
import re
import secrets
import shutil
import subprocess
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, NamedTuple

from monctl import services
from monctl.project import parse_env
from support import REPO, free_ports, require, require_docker_marker

IMAGES_ENV = REPO / "tests" / "images" / "images.env"
COMPOSE_FILE = Path("compose") / "docker-compose.monitoring.yml"

_ASSIGN = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=(.*)$")


class Result(NamedTuple):
    code: int
    out: str
    err: str


def run(argv: list[str], *, timeout: float = 120, **kwargs: Any) -> Result:
    """Run ``argv``; a missing program or a timeout comes back as code 127/124."""
    kwargs.setdefault("stdin", subprocess.DEVNULL)
    try:
        proc = subprocess.run(
            argv, capture_output=True, text=True, timeout=timeout, check=False, **kwargs
        )
    except FileNotFoundError as exc:
        return Result(127, "", str(exc))
    except subprocess.TimeoutExpired as exc:
        out = exc.stdout.decode() if isinstance(exc.stdout, bytes) else (exc.stdout or "")
        err = exc.stderr.decode() if isinstance(exc.stderr, bytes) else (exc.stderr or "")
        return Result(124, out, err + f"\n(timed out after {timeout:.0f}s)")
    return Result(proc.returncode, proc.stdout, proc.stderr)


def docker(*args: str, timeout: float = 60) -> Result:
    return run(["docker", *args], timeout=timeout)


def load_test_images() -> dict[str, str]:
    """VAR -> image from tests/images/images.env."""
    return parse_env(IMAGES_ENV.read_text(encoding="utf-8"), str(IMAGES_ENV))


def engine_problem() -> str | None:
    """Why the Docker tests cannot run here, or None when they can."""
    require_docker_marker()
    if shutil.which("docker") is None:
        return "the docker CLI is not installed"
    info = docker("info", "--format", "{{.ServerVersion}}", timeout=30)
    if info.code != 0:
        last = (info.err.strip().splitlines() or ["no output"])[-1]
        return f"no Docker engine answers `docker info`: {last}"
    compose = docker("compose", "version", "--short", timeout=30)
    if compose.code != 0:
        return "Docker Compose v2 is missing (`docker compose version` fails)"
    missing = [
        image
        for image in load_test_images().values()
        if docker("image", "inspect", "--format", "{{.Id}}", image).code != 0
    ]
    if missing:
        return f"test images not built ({', '.join(missing)}): run `bash tests/images/build.sh`"
    return None


@functools.cache
def engine_allows_privileged() -> bool:
    """Whether this engine can start a privileged container (sandboxed engines, like the
    CI machine's, refuse: "unable to apply caps: operation not permitted")."""
    image = load_test_images().get("CADVISOR_IMAGE", "monctl-test/base:local")
    probe = docker(
        "run", "--rm", "--privileged", "--network", "none", "--entrypoint", "true", image
    )
    return probe.code == 0


def render_env(example: str, overrides: dict[str, str]) -> str:
    """.env text: .env.example with ``overrides`` applied (unknown ones appended) and
    every __GENERATE__ marker replaced by a fresh secret."""
    lines, seen = [], set()
    for line in example.splitlines():
        m = _ASSIGN.match(line)
        if m and not line.lstrip().startswith("#") and m.group(1) in overrides:
            name = m.group(1)
            line = f"{name}={overrides[name]}"
            seen.add(name)
        if "__GENERATE__" in line:
            line = line.replace("__GENERATE__", secrets.token_urlsafe(24))
        lines.append(line)
    extra = [f"{k}={v}" for k, v in overrides.items() if k not in seen]
    if extra:
        lines += ["", "# added by the test fixtures", *extra]
    return "\n".join(lines) + "\n"


@dataclass
class Stack:
    """A throw-away copy of the stack in a temp dir, with its own ports and names."""

    root: Path
    project_name: str
    overrides: dict[str, str]  # what the fixture put into .env
    env: dict[str, str] = field(default_factory=dict)  # the .env as written

    @property
    def network(self) -> str:
        return self.overrides["APP_NETWORK_NAME"]

    def port(self, service: str) -> int:
        return int(self.overrides[services.get(service).port_var])

    def url(self, service: str) -> str:
        return f"http://127.0.0.1:{self.port(service)}"

    def basic_auth(self) -> tuple[str, str]:
        """The credentials Prometheus and Alertmanager require, as .env holds them now
        (`monctl up` generates them; `monctl credentials rotate` replaces them)."""
        env = parse_env((self.root / ".env").read_text(encoding="utf-8"))
        return ("monctl", env["MONITORING_AUTH_PASSWORD"])

    def process_env(self, extra: dict[str, str] | None = None) -> dict[str, str]:
        """The environment for monctl/compose: this process's, minus anything that
        would override the stack's .env (the process environment wins over .env)."""
        names = set(self.overrides) | set(self.env)
        for s in services.SERVICES:
            names |= {s.port_var, s.image_var, s.url_var}
        names |= {"COMPOSE_PROJECT_NAME", "COMPOSE_FILE", "COMPOSE_PROFILES", "MONCTL_PROJECT_DIR"}
        env = {k: v for k, v in os.environ.items() if k not in names}
        pythonpath = [str(REPO), *filter(None, [os.environ.get("PYTHONPATH")])]
        env.update({"NO_COLOR": "1", "COLUMNS": "200", "PYTHONPATH": os.pathsep.join(pythonpath)})
        env.update(extra or {})
        return env

    def monctl(
        self,
        *args: str,
        env: dict[str, str] | None = None,
        input: str | None = None,
        timeout: float = 300,
    ) -> Result:
        """Run ``python -m monctl --project-dir ROOT --project-name NAME ARGS`` (no stdin
        unless ``input`` is given)."""
        argv = [sys.executable, "-m", "monctl", "--project-dir", str(self.root)]
        argv += ["--project-name", self.project_name, *args]
        kwargs: dict[str, Any] = {"input": input} if input is not None else {}
        if input is not None:
            kwargs["stdin"] = None
        return run(argv, timeout=timeout, env=self.process_env(env), cwd=self.root, **kwargs)

    def compose(
        self, *args: str, timeout: float = 300, env: dict[str, str] | None = None
    ) -> Result:
        """`docker compose` on this stack directly (not through monctl)."""
        argv = ["docker", "compose", "--file", str(self.root / COMPOSE_FILE)]
        argv += ["--project-directory", str(self.root / "compose")]
        argv += ["--project-name", self.project_name]
        if (self.root / ".env").exists():
            argv += ["--env-file", str(self.root / ".env")]
        # The fixture's settings also go in the environment: they then apply even when
        # .env is missing or was written by monctl (the from-nothing test).
        return run(
            [*argv, *args], timeout=timeout, env=self.process_env(self.overrides | (env or {}))
        )

    def containers(self, all_states: bool = True) -> list[str]:
        args = ["ps", "-q", "--filter", f"label=com.docker.compose.project={self.project_name}"]
        if all_states:
            args.insert(1, "-a")
        return docker(*args).out.split()

    def volumes(self) -> list[str]:
        label = f"label=com.docker.compose.project={self.project_name}"
        found = set(docker("volume", "ls", "-q", "--filter", label).out.split())
        # also by name, in case a volume lost its labels
        prefix = f"{self.project_name}_"
        found |= {v for v in docker("volume", "ls", "-q").out.split() if v.startswith(prefix)}
        return sorted(found)

    def teardown(self, env: dict[str, str] | None = None) -> list[str]:
        """Remove everything of this project, whatever state it is in. Returns problems."""
        problems = []
        down = self.compose("down", "--volumes", "--remove-orphans", "--timeout", "5", env=env)
        if down.code != 0:
            problems.append(f"compose down: {down.err.strip()[-300:]}")
        # Belt and braces: whatever compose could not remove (e.g. a broken compose file).
        label = f"label=com.docker.compose.project={self.project_name}"
        leftovers = self.containers()
        if leftovers:
            docker("rm", "-f", "-v", *leftovers)
        nets = docker("network", "ls", "-q", "--filter", label).out.split()
        if nets:
            docker("network", "rm", *nets)
        vols = self.volumes()
        if vols:
            docker("volume", "rm", "-f", *vols)
        if docker("network", "inspect", self.network).code == 0:
            docker("network", "rm", self.network)
        return problems


def make_stack(root: Path) -> Stack:
    """Copy compose/, config/ and .env.example into ``root`` and write a test .env:
    free ports, the locally built images, unique names, paths inside ``root``."""
    require(
        (REPO / COMPOSE_FILE).is_file() and (REPO / ".env.example").is_file(),
        f"the stack files are missing ({COMPOSE_FILE}, .env.example)",
    )
    root.mkdir(parents=True, exist_ok=True)
    for part in ("compose", "config"):
        shutil.copytree(REPO / part, root / part, symlinks=True)
    shutil.copy2(REPO / ".env.example", root / ".env.example")
    example = (root / ".env.example").read_text(encoding="utf-8")
    example_vars = parse_env(example)

    rand = secrets.token_hex(4)
    project_name = f"monctltest{rand}"
    port_vars = [s.port_var for s in services.SERVICES]
    # Other *_PORT settings of the example that publish something on the host.
    port_vars += [
        name
        for name in example_vars
        if name.endswith("_PORT")
        and name not in port_vars
        and not re.search(r"SMTP|POSTGRES|DB_|DATABASE|BACKEND|APP_", name)
    ]
    overrides = dict(zip(port_vars, map(str, free_ports(len(port_vars))), strict=True))
    overrides.update(load_test_images())
    overrides["APP_NETWORK_NAME"] = f"monctltest_{rand}_app"
    password_vars = [
        name
        for name in example_vars
        if re.search(r"GRAFANA.*PASSWORD|GF_SECURITY_ADMIN_PASSWORD", name)
    ] or ["GRAFANA_ADMIN_PASSWORD"]
    for name in password_vars:
        overrides[name] = f"test-{secrets.token_urlsafe(12)}"
    if "CADVISOR_PRIVILEGED" in example_vars and not engine_allows_privileged():
        overrides["CADVISOR_PRIVILEGED"] = "false"
    # A developer's escape hatch for a machine that needs a different setting:
    # MONCTL_TEST_ENV="NAME=value;NAME2=value2" (added to the test .env).
    for item in filter(None, os.environ.get("MONCTL_TEST_ENV", "").split(";")):
        name, _, value = item.partition("=")
        overrides[name.strip()] = value.strip()
    textfile = root / "textfile"
    backups = root / "backups"
    textfile.mkdir(mode=0o755)
    textfile.chmod(0o755)  # node-exporter reads it as nobody
    backups.mkdir()
    overrides["MONCTL_TEXTFILE_DIR"] = str(textfile)
    overrides["MONCTL_BACKUP_DEST"] = str(backups)

    env_file = root / ".env"
    fd = os.open(env_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write(render_env(example, overrides))
    stack = Stack(root=root, project_name=project_name, overrides=overrides)
    stack.env = parse_env(env_file.read_text(encoding="utf-8"))
    return stack
