"""The stack as a compose project on one Docker engine: the first ``Runtime``.

Containers are found by compose's labels (project and service), so several
stacks can run side by side under different project names. Lifecycle goes
through the compose CLI (``adapters.compose_cli``); everything else through
the engine (``adapters.docker``), connected on first use only — ``health``
reads container state over the engine API without the SDK
(``adapters.docker_api``).

Restore never runs anything inside an image: the staged data is written
through the archive API into a fresh volume mounted in a container that is
created and never started, so it works with distroless images (upstream
Loki); ``swap_in`` then replaces the live volume (see its docstring).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monctl.adapters import compose_cli
from monctl.adapters.docker import Engine, parse_time, version_of
from monctl.adapters.ports import url_host
from monctl.errors import MonctlError, OperationFailed, PortInUse
from monctl.runtime import ToolRunner
from monctl.runtime import volumes as staging
from monctl.runtime.state import PublishedPort, ServiceState, newest_by_service
from monctl.services import application

if TYPE_CHECKING:  # pragma: no cover
    from docker.models.containers import Container

    from monctl.project import Project
    from monctl.result import Progress
    from monctl.services.model import Service

log = logging.getLogger(__name__)

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


def container_state(attrs: dict[str, Any], service: str) -> ServiceState:
    """A ServiceState from Docker's inspect document (GET /containers/{id}/json)."""
    state = attrs.get("State", {})
    labels = attrs.get("Config", {}).get("Labels") or {}
    image_ref = attrs.get("Config", {}).get("Image", "")
    ports: list[PublishedPort] = []
    for key, bindings in (attrs.get("NetworkSettings", {}).get("Ports") or {}).items():
        for b in bindings or []:
            ports.append(PublishedPort(int(key.split("/")[0]), b["HostIp"], int(b["HostPort"])))
    return ServiceState(
        service=service,
        name=str(attrs.get("Name", "")).lstrip("/"),
        id=str(attrs.get("Id", "")),
        state=state.get("Status", "unknown"),
        health=(state.get("Health") or {}).get("Status"),
        started_at=parse_time(state.get("StartedAt")),
        image=image_ref,
        version=version_of(image_ref, labels),
        ports=tuple(sorted(ports, key=lambda p: (p.container_port, p.host_ip))),
    )


class ComposeRuntime:
    kind = "compose"
    live_config = True  # configuration directories are bind-mounted

    def __init__(self, project: Project) -> None:
        self.project = project
        self._engine: Engine | None = None

    @property
    def engine(self) -> Engine:
        """The engine connection, made on first use (DockerUnavailable if it can't be)."""
        if self._engine is None:
            self._engine = Engine()
        return self._engine

    def _labels(self, service: Service | None = None) -> list[str]:
        labels = [f"{PROJECT_LABEL}={self.project.name}"]
        if service is not None:
            labels.append(f"{SERVICE_LABEL}={service.name}")
        return labels

    def _containers(self, service: Service) -> list[Container]:
        return self.engine.containers(self._labels(service))

    def _running(self, service: Service) -> Container:
        running = [c for c in self._containers(service) if c.status == "running"]
        if not running:
            raise OperationFailed(
                f"{service.name} is not running in project {self.project.name!r}",
                hint=f"start it with `monctl up {service.name}`",
            )
        return running[0]

    def _any(self, service: Service) -> Container:
        containers = self._containers(service)
        if not containers:
            raise OperationFailed(
                f"{service.name} has no container in project {self.project.name!r}",
                hint=f"create it with `monctl up {service.name}` first",
            )
        live = [c for c in containers if c.status in ("running", "paused")]
        return (live or containers)[0]

    # -- looking ---------------------------------------------------------------------
    def _states(self, documents: list[dict[str, Any]]) -> dict[str, ServiceState]:
        found = []
        for attrs in documents:
            labels = attrs.get("Config", {}).get("Labels") or {}
            name = str(attrs.get("Name", "")).lstrip("/")
            found.append(container_state(attrs, str(labels.get(SERVICE_LABEL, name))))
        return newest_by_service(found)

    def states(self) -> dict[str, ServiceState]:
        return self._states([c.attrs for c in self.engine.containers(self._labels())])

    async def states_async(self) -> tuple[dict[str, ServiceState] | None, str | None]:
        from monctl.adapters import docker_api

        try:
            documents, reason = await docker_api.inspect_containers(self._labels())
        except docker_api.Unsupported:
            # A DOCKER_HOST only the SDK speaks (TLS, ssh): in a worker thread.
            return await asyncio.get_running_loop().run_in_executor(None, self._states_or_why)
        return (None, reason) if documents is None else (self._states(documents), None)

    def _states_or_why(self) -> tuple[dict[str, ServiceState] | None, str | None]:
        try:
            return self.states(), None
        except MonctlError as exc:
            return None, exc.message

    def host_urls(self, service: Service, state: ServiceState | None) -> list[str]:
        if state is None:
            return []
        return [
            f"http://{url_host(p.host_ip)}:{p.host_port}"
            for p in state.ports
            if p.container_port == service.container_port
        ]

    def volumes(self) -> list[str]:
        return self.engine.volumes(f"{PROJECT_LABEL}={self.project.name}")

    # -- the whole stack -------------------------------------------------------------
    def up(self, services: tuple[Service, ...], progress: Progress) -> None:
        from monctl import services as declared

        compose_cli.compose_command()  # a clear error now rather than a confusing one later
        compose_cli.config_check(self.project)
        # Ports first: a refused start should leave nothing behind, not even a network.
        self._check_ports(services or tuple(declared.SERVICES))
        network = self.project.setting(application.NETWORK_VAR, application.DEFAULT_NETWORK)
        if not self.engine.network_exists(network):
            self.engine.create_network(network)
            progress.note(
                f"created the application network {network} (the application is not running yet)"
            )
        compose_cli.up(self.project, [s.name for s in services])

    def _check_ports(self, services: tuple[Service, ...]) -> None:
        """Fail before compose does, with the port and who holds it. Ports already
        held by this project's own running containers are of course fine."""
        from monctl.adapters import ports

        states = self.states()
        address = self.project.bind_address
        for service in services:
            state = states.get(service.name)
            if state is not None and state.state == "running":
                continue
            port = self.project.host_port(service)
            if not ports.is_free(address, port):
                raise PortInUse(port, address, ports.who_listens(port), service.name)

    def down(self, volumes: bool) -> None:
        compose_cli.down(self.project, volumes)

    def logs(self, services: tuple[Service, ...], follow: bool, tail: str | None) -> int:
        # The engine first: compose's raw "Cannot connect" with exit 1 is not monctl's
        # error line, hint and exit 5.
        self.engine  # noqa: B018
        return compose_cli.logs(self.project, [s.name for s in services], follow, tail)

    # -- one service -----------------------------------------------------------------
    def exec(self, service: Service, argv: list[str]) -> tuple[int, str]:
        return self.engine.exec(self._running(service), argv, service.name)

    @contextlib.contextmanager
    def tool_runner(self, services: tuple[Service, ...]) -> Iterator[ToolRunner]:
        """One-off containers through `docker compose run`, so files are read exactly
        as the service mounts them. They get no network (a pull-request check has no
        reason to need, or create, the application's network), and variables the
        compose file requires get placeholders when .env lacks them: validation
        must not need the secrets of a running installation."""
        compose_cli.compose_command()
        self.engine  # DockerUnavailable now, not a confusing compose error later  # noqa: B018
        placeholders = compose_cli.required_placeholders(self.project)
        with tempfile.TemporaryDirectory(prefix="monctl-validate-") as tmp:
            override = Path(tmp) / "no-network.override.yml"
            lines = ["services:"]
            for s in services:
                lines += [f"  {s.name}:", "    networks: !reset []", "    network_mode: none"]
            override.write_text("\n".join(lines) + "\n", encoding="utf-8")

            def run(service: Service, argv: list[str]) -> tuple[int, str]:
                result = compose_cli.run(
                    self.project,
                    "--file",
                    str(override),
                    "run",
                    "--rm",
                    "--no-deps",
                    "-T",
                    "--entrypoint",
                    argv[0],
                    service.name,
                    *argv[1:],
                    timeout=300,
                    env=placeholders,
                )
                return result.returncode, (result.stdout or "") + (result.stderr or "")

            yield run

    def check_runner(self, service: Service) -> contextlib.AbstractContextManager[ToolRunner]:
        """Inside the running container: it mounts the configuration directory."""
        return contextlib.nullcontext(lambda s, argv: self.exec(s, argv))

    def roll_out(self, service: Service, progress: Progress) -> bool:
        return False  # the files are mounted: the service's own reload applies them

    def restart(self, service: Service) -> None:
        self.engine.restart(self._running(service))

    def paused(self, service: Service) -> contextlib.AbstractContextManager[None]:
        return self.engine.paused(self._running(service), service.name)

    def started_env(self, service: Service) -> dict[str, str] | None:
        env: dict[str, str] = {}
        for item in self._running(service).attrs.get("Config", {}).get("Env") or []:
            name, _, value = item.partition("=")
            env[name] = value
        return env

    # -- data ------------------------------------------------------------------------
    def read_data(self, service: Service, path: str) -> Iterator[bytes]:
        return self.engine.get_archive(str(self._any(service).id), path)

    def _live_volume(self, service: Service, container: Container) -> str:
        assert service.data is not None
        for m in container.attrs.get("Mounts") or []:
            if m.get("Destination") == service.data.path and m.get("Type") == "volume":
                return str(m["Name"])
        raise OperationFailed(
            f"{service.name} has no Docker volume mounted at {service.data.path}",
            hint="the compose file must mount the service's data volume there",
        )

    def data_volume(self, service: Service) -> str:
        return self._live_volume(service, self._any(service))

    def stage(self, service: Service) -> contextlib.AbstractContextManager[staging.Stage]:
        assert service.data is not None
        container = self._any(service)
        live = self._live_volume(service, container)
        image = str(container.attrs["Image"])  # the image id the service runs now
        return staging.staged(self.engine, image, live, service.data.path, self.project.name)

    def swap_in(
        self, service: Service, stage: Any, refill: Callable[[], Iterable[bytes]] | None = None
    ) -> str:
        """Replace the service's data volume with the staged one (``staging.swap``;
        filled from ``refill`` when given): the service's containers are stopped and
        removed (a volume in use cannot be removed), and `compose up` recreates them
        afterwards, whatever happened."""
        assert isinstance(stage, staging.Stage) and service.data is not None
        engine = self.engine

        def stop() -> None:
            for c in self._containers(service):
                engine.stop(c)
                engine.remove(str(c.id))

        def start() -> None:
            compose_cli.up(self.project, [service.name], no_deps=True)

        staging.swap(engine, stage, self.project.name, stop, start, refill)
        return "running"
