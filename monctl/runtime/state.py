"""What a runtime reports about a service: its state, image, ports and tasks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime


@dataclass(frozen=True)
class PublishedPort:
    container_port: int
    host_ip: str
    host_port: int


@dataclass(frozen=True)
class NodeTask:
    """One node's task of a service that runs on every node (Swarm)."""

    node: str  # the node's hostname
    state: str  # running, failed, rejected, missing, ...
    error: str = ""


@dataclass(frozen=True)
class ServiceState:
    """One service as the runtime sees it: its container (compose) or its task (Swarm)."""

    service: str
    name: str  # container name
    id: str  # container id
    state: str  # running, paused, exited, restarting, created, dead
    health: str | None  # healthy, unhealthy, starting; None without a healthcheck
    started_at: datetime | None
    image: str
    version: str | None
    ports: tuple[PublishedPort, ...] = field(default_factory=tuple)
    # Swarm: tasks running and wanted, the node of the task, and per node for
    # services that run on every node. Empty under compose.
    running: int | None = None
    desired: int | None = None
    node: str | None = None
    nodes: tuple[NodeTask, ...] = ()

    def uptime_seconds(self, now: datetime | None = None) -> float | None:
        if self.state != "running" or self.started_at is None:
            return None
        return ((now or datetime.now(UTC)) - self.started_at).total_seconds()


def newest_by_service(states: list[ServiceState]) -> dict[str, ServiceState]:
    """One state per service: a running one when there is one."""
    result: dict[str, ServiceState] = {}
    for state in states:
        if state.service not in result or state.state == "running":
            result[state.service] = state
    return result
