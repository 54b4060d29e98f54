"""What the Swarm API says about a stack, as ``ServiceState``s: pure functions.

Four listings, each one request whatever the number of nodes: the stack's
services (with ``ServiceStatus``: running/desired tasks), its tasks (every
desired state, so a failed task's error is still there), the nodes, and the
loopback gateway containers (``gateway.py``; they are the service's published
ports). ``states`` joins them; it is also what the tests feed with recorded
and faked answers of a multi-node swarm, which one machine cannot show.

Per node, for a service that runs on every node: the newest task meant to run
there; a ready, active node with no such task is "missing". For a service
with one task: the node it runs on (or failed on).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from monctl.adapters.docker import parse_time, version_of
from monctl.runtime.state import NodeTask, PublishedPort, ServiceState

GATEWAY_LABEL = "org.monctl.gateway"  # value: the stack; on the loopback gateway containers
GATEWAY_SERVICE_LABEL = "org.monctl.gateway.service"


def short_name(stack: str, full: str) -> str:
    """``monitoring_prometheus`` -> ``prometheus``."""
    prefix = f"{stack}_"
    return full[len(prefix) :] if full.startswith(prefix) else full


def _version(task: dict[str, Any]) -> tuple[int, str]:
    """Newest first: the task object's version index, then its timestamp."""
    return int((task.get("Version") or {}).get("Index") or 0), str(
        (task.get("Status") or {}).get("Timestamp") or ""
    )


def _newest(tasks: Iterable[dict[str, Any]]) -> dict[str, Any] | None:
    """The task that says how things stand: the newest one meant to run, else the newest."""
    ordered = sorted(tasks, key=_version, reverse=True)
    wanted = [t for t in ordered if t.get("DesiredState") == "running"]
    chosen = wanted or ordered
    return chosen[0] if chosen else None


def _task_state(task: dict[str, Any]) -> str:
    return str((task.get("Status") or {}).get("State") or "unknown")


def _task_error(task: dict[str, Any]) -> str:
    status = task.get("Status") or {}
    if _task_state(task) == "running":
        return ""
    return str(status.get("Err") or status.get("Message") or "")


def node_task(hostname: str, task: dict[str, Any] | None) -> NodeTask:
    if task is None:
        return NodeTask(hostname, "missing", "no task on this node")
    state = _task_state(task)
    if task.get("DesiredState") != "running" and state == "running":
        state = "stopping"  # replaced: the next one is on its way
    return NodeTask(hostname, state, _task_error(task))


def _eligible(node: dict[str, Any]) -> bool:
    """A node that should run a task of every global service."""
    status = (node.get("Status") or {}).get("State")
    availability = (node.get("Spec") or {}).get("Availability")
    return status == "ready" and availability == "active"


def _published(gateways: list[dict[str, Any]], service: str) -> tuple[PublishedPort, ...]:
    found: list[PublishedPort] = []
    for container in gateways:
        labels = container.get("Labels") or {}
        if labels.get(GATEWAY_SERVICE_LABEL) != service or container.get("State") != "running":
            continue
        for port in container.get("Ports") or []:
            if port.get("PublicPort"):
                found.append(
                    PublishedPort(
                        int(port["PrivatePort"]), str(port.get("IP") or ""), int(port["PublicPort"])
                    )
                )
    return tuple(sorted(set(found), key=lambda p: (p.container_port, p.host_ip)))


def _has_healthcheck(service: dict[str, Any]) -> bool:
    spec = service.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
    test = (spec.get("Healthcheck") or {}).get("Test") or []
    return bool(test) and test[0] != "NONE"


def service_state(
    stack: str,
    service: dict[str, Any],
    tasks: list[dict[str, Any]],
    hostnames: dict[str, str],
    eligible: list[str],
    gateways: list[dict[str, Any]],
) -> ServiceState:
    """One service: ``tasks`` are its own, ``hostnames`` node id -> hostname,
    ``eligible`` the node ids that should run a task of a global service."""
    spec = service.get("Spec") or {}
    full = str(spec.get("Name", ""))
    name = short_name(stack, full)
    image = str(spec.get("TaskTemplate", {}).get("ContainerSpec", {}).get("Image", ""))
    image = image.split("@", 1)[0]  # a digest pinned by stack deploy
    counts = service.get("ServiceStatus") or {}
    running, desired = int(counts.get("RunningTasks") or 0), int(counts.get("DesiredTasks") or 0)
    by_node: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        by_node.setdefault(str(task.get("NodeID") or ""), []).append(task)
    if "Global" in (spec.get("Mode") or {}):
        wanted_nodes = list(eligible) + [
            n
            for n, ts in by_node.items()
            if n and n not in eligible and any(t.get("DesiredState") == "running" for t in ts)
        ]
        nodes = tuple(
            node_task(hostnames.get(n, n[:12]), _newest(by_node.get(n, []))) for n in wanted_nodes
        )
        current = next((t for t in tasks if _task_state(t) == "running"), None)
        node = None
    else:
        current = _newest(tasks)
        nodes = ()
        node = None
        if current is not None:
            node_id = str(current.get("NodeID") or "")
            node = hostnames.get(node_id, node_id[:12]) or None
            nodes = (node_task(node or "(not placed)", current),)
    if running > 0:
        state = "running"
    elif desired == 0:
        state = "exited"  # scaled to zero (a restore swapping its volume), or no node fits
    else:
        state = _task_state(current) if current is not None else "pending"
    healthcheck = _has_healthcheck(service)
    health = None
    if healthcheck:
        health = "healthy" if state == "running" else ("starting" if state == "starting" else None)
    status = (current or {}).get("Status") or {}
    container = status.get("ContainerStatus") or {}
    task_id = str((current or {}).get("ID") or "")
    slot = (current or {}).get("Slot") or (current or {}).get("NodeID") or ""
    return ServiceState(
        service=name,
        name=f"{full}.{slot}.{task_id}" if task_id else full,
        id=str(container.get("ContainerID") or ""),
        state=state,
        health=health,
        started_at=parse_time(status.get("Timestamp")) if state == "running" else None,
        image=image,
        version=version_of(image, {}),
        ports=_published(gateways, name),
        running=running,
        desired=desired,
        node=node,
        nodes=nodes,
    )


def states(
    stack: str,
    services: list[dict[str, Any]],
    tasks: list[dict[str, Any]],
    nodes: list[dict[str, Any]],
    gateways: list[dict[str, Any]],
) -> dict[str, ServiceState]:
    """Every service of ``stack``, by its short name."""
    hostnames = {
        str(n.get("ID")): str((n.get("Description") or {}).get("Hostname") or n.get("ID"))
        for n in nodes
    }
    eligible = [str(n.get("ID")) for n in nodes if _eligible(n)]
    by_service: dict[str, list[dict[str, Any]]] = {}
    for task in tasks:
        by_service.setdefault(str(task.get("ServiceID")), []).append(task)
    result: dict[str, ServiceState] = {}
    for service in services:
        state = service_state(
            stack,
            service,
            by_service.get(str(service.get("ID")), []),
            hostnames,
            eligible,
            gateways,
        )
        result[state.service] = state
    return result
