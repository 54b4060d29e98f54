"""A throwaway copy of the stack, beside the production one (restore drills).

The copy is the same compose file and ``.env`` under its own project name
(``<project>-drill-<hex>``), so its containers, volumes and networks are its
own: compose names them after the project, and every runtime call selects by
the project's label, so nothing of the production stack is ever selected. An
override file, generated from the stack's resolved configuration, makes it
harmless to run beside production:

- no port is published (``ports: !reset []``): it takes no host port;
- it joins none of the external networks (the application's), and its own
  networks are ``internal``: no way out of the host, so its Prometheus scrapes
  nothing outside and its Alertmanager can notify no one; the secrets a service
  reads at start (``start_secrets``) are blanked as well;
- its own credentials (``monctl.credentials``), in its own copy of ``.env`` beside
  the override: the drill's questions carry them in the prober's command line, where
  the production password must never be;
- ``restart: "no"``, and every container, volume and network is labelled
  ``org.monctl.drill=<project>``, so what a drill killed outright left behind
  is found and removed by the next one (the override file itself lives in the
  project's ``.monctl/`` directory, beside the locks, and goes with it).

Its services are reached from inside: ``fetch`` runs the HTTP client of an image
that has one (``Service.http_client``, busybox wget) in an idle helper container
attached to the copy's networks, and asks the service by its compose name.
``remove`` deletes everything of the copy (``compose down -v``, then a sweep by
label) and reports what it could not.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import re
import secrets
import threading
import time
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import urlencode

from monctl.adapters import compose_cli
from monctl.adapters.docker import HELPER_LABEL
from monctl.errors import MonctlError, OperationFailed
from monctl.project import Project
from monctl.runtime.compose import PROJECT_LABEL, ComposeRuntime
from monctl.services.answers import Fetched

if TYPE_CHECKING:  # pragma: no cover
    from monctl.result import Progress
    from monctl.services.model import HttpClient, Service

DRILL_LABEL = "org.monctl.drill"  # value: the production project's name
_HTTP_STATUS = re.compile(r"HTTP/1\.[01] (\d{3})")


_SUFFIX = ".override.yml"
_ENV_SUFFIX = ".env"


def override_path(parent: Project, name: str) -> Path:
    """Where the override file of copy ``name`` lives: the project's .monctl directory."""
    return parent.root / ".monctl" / f"{name}{_SUFFIX}"


def env_path(parent: Project, name: str) -> Path:
    """Where copy ``name``'s .env lives (beside its override file, mode 0600)."""
    return parent.root / ".monctl" / f"{name}{_ENV_SUFFIX}"


class ThrowawayRuntime(ComposeRuntime):
    """The compose runtime of the copy: started without the production checks (host
    ports, the application's network), since it publishes and joins neither."""

    kind = "compose-throwaway"

    def up(self, services: tuple[Service, ...], progress: Progress) -> None:
        compose_cli.compose_command()
        compose_cli.up(self.project, [s.name for s in services], no_deps=True)


def _yaml(value: object) -> str:
    return json.dumps(value)  # a JSON scalar is a YAML scalar


def override_text(config: Mapping[str, Any], parent: str, secrets_of: dict[str, list[str]]) -> str:
    """The override file for a copy of the stack whose resolved configuration
    (``compose config --format json``) is ``config``."""
    networks: Mapping[str, Any] = config.get("networks") or {}
    internal = [n for n, spec in networks.items() if not (spec or {}).get("external")]
    external = [n for n in networks if n not in internal]
    label = f"      {DRILL_LABEL}: {_yaml(parent)}"
    used: set[str] = set()
    lines = ["services:"]
    for name, spec in (config.get("services") or {}).items():
        joined = [n for n in (spec.get("networks") or {"default": None}) if n not in external]
        joined = joined or ["default"]  # only on external networks: compose's default one
        used |= set(joined)
        lines += [
            f"  {_yaml(name)}:",
            "    ports: !reset []",
            '    restart: "no"',
            "    networks: !override [" + ", ".join(_yaml(n) for n in joined) + "]",
            "    labels:",
            label,
        ]
        if "container_name" in spec:
            lines.append("    container_name: !reset null")
        blank = secrets_of.get(name) or []
        if blank:
            lines.append("    environment:")
            lines += [f"      {_yaml(var)}: ''" for var in blank]
    lines.append("networks:")
    for name in sorted(used | set(internal)):
        lines += [f"  {_yaml(name)}:", "    internal: true", "    labels:", label]
    lines += [f"  {_yaml(name)}: !reset null" for name in external]
    declared = config.get("volumes") or {}
    volumes = [v for v, spec in declared.items() if not (spec or {}).get("external")]
    if volumes:
        lines.append("volumes:")
        for name in volumes:
            lines += [f"  {_yaml(name)}:", "    labels:", label]
    return "\n".join(lines) + "\n"


class Throwaway:
    """One throwaway copy of ``parent``'s stack. Nothing exists until ``up``."""

    def __init__(self, parent: Project, tag: str = "drill") -> None:
        self.parent = parent
        self.name = f"{parent.name}-{tag}-{secrets.token_hex(3)}"
        # Beside the project's lock, so the next drill finds it if this one is killed.
        self.override = override_path(parent, self.name)
        self.env_file = env_path(parent, self.name)
        self.project = Project(
            root=parent.root,
            name=self.name,
            env=parent.env,
            compose_overrides=(self.override,),
            env_path=self.env_file,
        )
        self.runtime = ThrowawayRuntime(self.project)
        self._prober: tuple[Any, HttpClient] | None = None  # (its container, its client)

    @property
    def labels(self) -> dict[str, str]:
        return {DRILL_LABEL: self.parent.name, HELPER_LABEL: self.name}

    def write_override(self) -> None:
        """The override file, from the stack's configuration as compose resolves it."""
        from monctl import services as declared
        from monctl.redaction import redact

        # Only the structure is read (services, networks, volumes): the parent's required
        # settings may be placeholders (the copy has its own credentials).
        placeholders = compose_cli.required_placeholders(self.parent)
        result = compose_cli.run(
            self.parent, "config", "--format", "json", timeout=60, env=placeholders
        )
        if result.returncode != 0:
            raise OperationFailed(
                "the compose file does not load: " + redact(result.stderr or "").strip()[-300:]
            )
        secrets_of = {s.name: [secret.var for secret in s.start_secrets] for s in declared.SERVICES}
        text = override_text(json.loads(result.stdout), self.parent.name, secrets_of)
        self.override.parent.mkdir(parents=True, exist_ok=True)
        self.override.write_text(text, encoding="utf-8")
        self._write_env()

    def _write_env(self) -> None:
        """The copy's .env: the production one with credentials of its own."""
        from monctl import credentials
        from monctl.envfile import read_env_text
        from monctl.redaction import generate

        parent_env = self.parent.env_file
        text = read_env_text(parent_env) if parent_env.exists() else ""
        password = generate()
        changes = {
            credentials.PASSWORD_VAR: password,
            credentials.WEB_CONFIG_VAR: credentials.web_config(password),
        }
        fd = os.open(self.env_file, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(credentials.env_text(text, changes))
        self.project.load_env()

    def up(self, services: tuple[Service, ...], progress: Progress) -> None:
        """Write the override, then start ``services`` in the copy (no dependencies)."""
        self.write_override()
        self.runtime.up(services, progress)

    # -- reaching its services from inside ------------------------------------------------
    def start_prober(self, service: Service) -> None:
        """An idle container of ``service``'s image (which has an HTTP client), on the
        copy's networks: ``fetch`` runs the client in it."""
        assert service.http_client is not None
        engine = self.runtime.engine
        state = self.runtime.states().get(service.name)
        if state is None:
            raise OperationFailed(f"{service.name} did not start in the throwaway stack")
        attrs = engine.inspect(state.id)
        networks = list((attrs.get("NetworkSettings") or {}).get("Networks") or {})
        if not networks:
            raise OperationFailed(f"{service.name} joined no network in the throwaway stack")
        image = str(attrs["Image"])
        prober = engine.run_idle(image, service.http_client.idle, networks, self.labels)
        # Looked up once: fetch runs every 2 s while the drill waits for readiness.
        self._prober = (engine.container(prober), service.http_client)

    def fetch(
        self,
        service: Service,
        path: str,
        params: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
        timeout: float = 15.0,
    ) -> Fetched:
        """GET ``path`` of ``service`` by its name on the copy's network. Never raises:
        no answer (refused, unknown name, timeout) is ``Fetched.error``."""
        from monctl import credentials

        if auth is None:
            auth = credentials.auth(self.project, service)  # the copy's own credentials
        url = f"http://{service.name}:{service.container_port}{path}"
        if params:
            url += "?" + urlencode(params)
        if self._prober is None:
            return Fetched(url, None, error="no prober container")
        container, client = self._prober
        argv = list(client.argv)
        if auth is not None:
            token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
            argv += [client.header, f"Authorization: Basic {token}"]
        argv.append(url)
        started = time.perf_counter()
        outcome: list[tuple[int, str]] = []
        failure: list[str] = []

        def work() -> None:
            try:
                outcome.append(self.runtime.engine.exec(container, argv, "the drill's prober"))
            except MonctlError as exc:
                failure.append(exc.message)
            except Exception as exc:  # the engine connection's own timeout, say
                failure.append(f"{type(exc).__name__}: {exc}")

        worker = threading.Thread(target=work, daemon=True, name="monctl-drill-fetch")
        worker.start()
        worker.join(timeout)
        latency = round((time.perf_counter() - started) * 1000, 1)
        if not outcome:
            why = failure[0] if failure else f"no answer within {timeout:g}s"
            return Fetched(url, None, latency_ms=latency, error=why)
        code, output = outcome[0]
        if code == 0:
            return Fetched(url, 200, output, latency_ms=latency)
        match = _HTTP_STATUS.search(output)
        if match:
            return Fetched(url, int(match.group(1)), output, latency_ms=latency)
        last = (output.strip().splitlines() or ["no output"])[-1]
        return Fetched(url, None, latency_ms=latency, error=last[:200])

    # -- removing it ---------------------------------------------------------------------
    def remove(self) -> list[str]:
        """Delete every container, volume and network of the copy; return what is left
        (nothing, normally). Never raises for what it could not remove."""
        problems: list[str] = []
        if self.override.exists():
            try:
                compose_cli.down(self.project, volumes=True)
            except MonctlError as exc:
                problems.append(f"compose down: {exc.message}")
        problems += sweep(self.runtime, self.name)
        self.override.unlink(missing_ok=True)
        self.env_file.unlink(missing_ok=True)
        return problems


def sweep(runtime: ComposeRuntime, name: str) -> list[str]:
    """Remove whatever carries project ``name``'s labels; return what is still there."""
    try:
        engine = runtime.engine
        selectors = [f"{PROJECT_LABEL}={name}", f"{HELPER_LABEL}={name}"]
        for _ in range(2):  # a container may still be in creation the first time round
            for selector in selectors:
                for container_id in engine.labelled_containers(selector):
                    engine.remove(container_id)
                for volume in engine.labelled_volumes(selector):
                    with contextlib.suppress(MonctlError):
                        engine.remove_volume(volume)
                for network in engine.labelled_networks(selector):
                    with contextlib.suppress(MonctlError):
                        engine.remove_network(network)
        left = [
            *(f"container {c[:12]}" for s in selectors for c in engine.labelled_containers(s)),
            *(f"volume {v}" for s in selectors for v in engine.labelled_volumes(s)),
            *(f"network {n}" for s in selectors for n in engine.labelled_networks(s)),
        ]
    except MonctlError as exc:
        return [f"could not check what is left of {name}: {exc.message}"]
    return [f"left behind: {', '.join(sorted(set(left)))}"] if left else []


def remove_stale(parent: Project, tag: str = "drill") -> list[str]:
    """Remove the copies of ``parent``'s stack that earlier drills left (killed
    outright); call it while holding the drill lock. Returns the names removed."""
    runtime = ComposeRuntime(parent)
    engine = runtime.engine
    prefix = f"{parent.name}-{tag}-"
    names: set[str] = set()
    for key in (PROJECT_LABEL, HELPER_LABEL):
        found = [
            *engine.labelled_containers(key).values(),
            *engine.labelled_volumes(key).values(),
            *engine.labelled_networks(key).values(),
        ]
        names |= {labels[key] for labels in found if labels.get(key, "").startswith(prefix)}
    overrides = override_path(parent, prefix).parent.glob(f"{prefix}*{_SUFFIX}")
    names |= {p.name.removesuffix(_SUFFIX) for p in overrides}
    envs = env_path(parent, prefix).parent.glob(f"{prefix}*{_ENV_SUFFIX}")
    names |= {p.name.removesuffix(_ENV_SUFFIX) for p in envs}
    for name in sorted(names):
        sweep(runtime, name)  # the labels name the copy; the engine is the same
        override_path(parent, name).unlink(missing_ok=True)
        env_path(parent, name).unlink(missing_ok=True)
    return sorted(names)
