"""The stack as a Docker Swarm stack (`docker stack deploy`): the second ``Runtime``.

The engine monctl talks to (``DOCKER_HOST``, also ``ssh://``) must be a swarm
manager: the Swarm API answers only there (``adapters.swarm.not_manager`` says
so, exit 5). The stack file is rendered from the compose file
(``swarm_stack``) and deployed by the real `docker stack deploy`; services
found by the stack's label, their tasks and nodes joined in ``swarm_state``;
the single-task services published on the manager's loopback by the gateway
(``gateway``). Reload rolls content-hashed configs and secrets into the
service (``roll_out``); a restart is a forced update.

Data lives on the node that runs a service's task: backup and restore work
on the task container of *this* engine, and name the node to point monctl at
otherwise (``swarm_data``).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from monctl.adapters.swarm import (
    SERVICE_NAME_LABEL,
    STACK_LABEL,
    NotManager,
    Swarm,
    not_manager,
)
from monctl.errors import MonctlError, OperationFailed
from monctl.runtime import ToolRunner, swarm_data, swarm_deploy, swarm_state
from monctl.runtime.state import ServiceState
from monctl.runtime.swarm_state import GATEWAY_LABEL

if TYPE_CHECKING:  # pragma: no cover
    from docker.models.containers import Container

    from monctl.adapters import ssh
    from monctl.adapters.docker import Engine
    from monctl.project import Project
    from monctl.result import Progress
    from monctl.services.model import Service

log = logging.getLogger(__name__)

CONVERGE_TIMEOUT = 300.0  # seconds for a rolled service to run its new tasks


class SwarmRuntime:
    kind = "swarm"
    live_config = False  # tasks hold Swarm configs and secrets: a change is rolled out

    def __init__(self, project: Project) -> None:
        self.project = project
        self.stack = project.name
        self._engine: Engine | None = None
        self._swarm: Swarm | None = None
        self._forwards: ssh.Forwards | None = None

    @property
    def engine(self) -> Engine:
        self._manager()
        assert self._engine is not None
        return self._engine

    @property
    def swarm(self) -> Swarm:
        return self._manager()

    def _manager(self) -> Swarm:
        """The Swarm API, checked once: DockerUnavailable unless this is a manager."""
        if self._swarm is None:
            from monctl.adapters.docker import Engine

            engine = self._engine or Engine()
            self._engine = engine
            swarm = Swarm(engine)
            swarm.require_manager()
            self._swarm = swarm
        return self._swarm

    def full_name(self, service: Service) -> str:
        return f"{self.stack}_{service.name}"

    # -- looking ---------------------------------------------------------------------
    def states(self) -> dict[str, ServiceState]:
        swarm = self.swarm
        gateways = swarm.api.containers(
            all=True, filters={"label": [f"{GATEWAY_LABEL}={self.stack}"]}
        )
        return swarm_state.states(
            self.stack,
            swarm.services(self.stack),
            swarm.tasks(self.stack),
            swarm.nodes(),
            gateways,
        )

    async def states_async(self) -> tuple[dict[str, ServiceState] | None, str | None]:
        """One round of five concurrent reads, whatever the number of nodes (see
        ``docker_api.swarm_listing``). Not a manager: raised (exit 5), as for
        every other command; an engine that does not answer: (None, why)."""
        from monctl.adapters import docker_api

        try:
            docs, reason = await docker_api.swarm_listing(
                f"{STACK_LABEL}={self.stack}", f"{GATEWAY_LABEL}={self.stack}"
            )
        except docker_api.Unsupported:
            loop = asyncio.get_running_loop()
            return await loop.run_in_executor(None, self._states_or_why)
        if docs is None:
            return None, reason
        problem = not_manager(docs["info"] if isinstance(docs["info"], dict) else {})
        if problem is not None:
            raise problem
        odd = [
            k for k in ("services", "tasks", "nodes", "gateways") if not isinstance(docs[k], list)
        ]
        if odd:  # an error document instead of a listing
            return None, f"the engine did not list the stack's {odd[0]}: {str(docs[odd[0]])[:200]}"
        return (
            swarm_state.states(
                self.stack, docs["services"], docs["tasks"], docs["nodes"], docs["gateways"]
            ),
            None,
        )

    def _states_or_why(self) -> tuple[dict[str, ServiceState] | None, str | None]:
        try:
            return self.states(), None
        except NotManager:
            raise
        except MonctlError as exc:
            return None, exc.message

    def host_urls(self, service: Service, state: ServiceState | None) -> list[str]:
        """The gateway's address on this host; none for services on every node
        (reached over the overlay network by Prometheus, whose targets health reads)."""
        from monctl.adapters import ssh
        from monctl.adapters.ports import url_host

        if state is None:
            return []
        ports = [p for p in state.ports if p.container_port == service.container_port]
        remote = ssh.target()
        if remote is None:
            return [f"http://{url_host(p.host_ip)}:{p.host_port}" for p in ports]
        # The gateway listens on the manager's loopback: reached through ssh forwards.
        if self._forwards is None:
            self._forwards = ssh.Forwards(remote)
        return [
            f"http://127.0.0.1:{self._forwards.local(url_host(p.host_ip), p.host_port)}"
            for p in ports
        ]

    def volumes(self) -> list[str]:
        """The stack's volumes on this engine (those on other nodes stay there)."""
        return self.engine.volumes(f"{STACK_LABEL}={self.stack}")

    # -- the whole stack -------------------------------------------------------------
    def up(self, services: tuple[Service, ...], progress: Progress) -> None:
        swarm_deploy.deploy(self, services, progress)

    def down(self, volumes: bool) -> None:
        swarm_deploy.remove(self, volumes)

    def logs(self, services: tuple[Service, ...], follow: bool, tail: str | None) -> int:
        return swarm_deploy.logs(self, services, follow, tail)

    # -- one service -----------------------------------------------------------------
    def local_containers(self, service: Service) -> list[Container]:
        """The service's task containers on this engine, running ones first."""
        found = self.engine.containers([f"{SERVICE_NAME_LABEL}={self.full_name(service)}"])
        return sorted(found, key=lambda c: c.status != "running")

    def local_task(self, service: Service, running: bool = True) -> Container:
        """The service's task container on this engine; OperationFailed naming the
        node where it runs when that is another one."""
        found = self.local_containers(service)
        live = [c for c in found if c.status in ("running", "paused")]
        if live or (found and not running):
            return (live or found)[0]
        raise swarm_data.elsewhere(self, service)

    def exec(self, service: Service, argv: list[str]) -> tuple[int, str]:
        return self.engine.exec(self.local_task(service), argv, service.name)

    def tool_runner(
        self, services: tuple[Service, ...]
    ) -> contextlib.AbstractContextManager[ToolRunner]:
        return swarm_data.tool_runner(self, services)

    def check_runner(self, service: Service) -> contextlib.AbstractContextManager[ToolRunner]:
        """A one-off container: the running task holds the configs it was deployed with."""
        return swarm_data.tool_runner(self, (service,))

    def roll_out(self, service: Service, progress: Progress) -> bool:
        return swarm_deploy.roll_out(self, service, progress)

    def restart(self, service: Service) -> None:
        """A forced update: Swarm replaces the service's tasks."""
        self.update(service, _force)

    def update(
        self,
        service: Service,
        change: Callable[[dict[str, Any]], None],
        timeout: float = CONVERGE_TIMEOUT,
    ) -> None:
        """Change the service's spec (``change(spec)`` edits it in place) and wait
        until Swarm has replaced its tasks."""
        found = self.swarm.service(self.full_name(service))
        if found is None:
            raise OperationFailed(
                f"{service.name} is not deployed in stack {self.stack!r}",
                hint=f"deploy it with `monctl --runtime swarm up {service.name}`",
            )
        spec = found["Spec"]
        change(spec)
        self.swarm.update_service(found, spec)
        self.converge(service, timeout)

    def converge(self, service: Service, timeout: float = CONVERGE_TIMEOUT) -> None:
        """Wait until the service's update has completed (its new tasks run)."""
        deadline = time.monotonic() + timeout
        while True:
            found = self.swarm.service(self.full_name(service)) or {}
            update = found.get("UpdateStatus") or {}
            state = update.get("State")
            if state in (None, "completed"):
                return
            if state in ("paused", "rollback_completed", "rollback_paused"):
                raise OperationFailed(
                    f"Swarm could not update {service.name} ({state}): {update.get('Message', '')}",
                    hint=f"see `monctl --runtime swarm logs {service.name}` and "
                    f"`docker service ps {self.full_name(service)} --no-trunc`",
                )
            if time.monotonic() > deadline:
                raise OperationFailed(
                    f"{service.name} did not finish its update within {timeout:.0f}s ({state})",
                    hint=f"`docker service ps {self.full_name(service)} --no-trunc` says why",
                )
            time.sleep(1)

    def paused(self, service: Service) -> contextlib.AbstractContextManager[None]:
        return self.engine.paused(self.local_task(service), service.name)

    def started_env(self, service: Service) -> dict[str, str] | None:
        return None  # secrets are Swarm secrets, rolled by reload: nothing to compare

    # -- data ------------------------------------------------------------------------
    def read_data(self, service: Service, path: str) -> Iterator[bytes]:
        return self.engine.get_archive(str(self.local_task(service, running=False).id), path)

    def data_volume(self, service: Service) -> str:
        return swarm_data.live_volume(self, service, self.local_task(service, running=False))

    def stage(self, service: Service) -> contextlib.AbstractContextManager[Any]:
        return swarm_data.stage(self, service)

    def swap_in(
        self, service: Service, stage: Any, refill: Callable[[], Iterable[bytes]] | None = None
    ) -> str:
        return swarm_data.swap_in(self, service, stage, refill)


def _force(spec: dict[str, Any]) -> None:
    template = spec.setdefault("TaskTemplate", {})
    template["ForceUpdate"] = int(template.get("ForceUpdate") or 0) + 1
