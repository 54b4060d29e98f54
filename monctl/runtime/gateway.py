"""The loopback gateway: how a Swarm stack is published on the manager's 127.0.0.1 only.

Swarm cannot publish a port on one address: the routing mesh, and host mode
too, listen on every interface of every node (moby#26696, moby#32299). So the
stack publishes nothing through Swarm. Instead, on the manager monctl talks
to, one plain container per single-task service (not a Swarm service) joins
the stack's attachable overlay network and is published like a compose
container, ``MONITORING_BIND_ADDRESS:<SERVICE>_PORT`` (127.0.0.1 unless the
operator says otherwise), forwarding to the service's name on the overlay
with socat (``MONCTL_GATEWAY_IMAGE``, default alpine/socat). The operator sees
the same URLs as with compose, on the manager only. Services that run on
every node publish nothing: Prometheus scrapes them over the overlay, and
``monctl health`` reads their state from Prometheus' targets.

Each gateway carries a label with a hash of what it does (image, target,
address, port): ``ensure`` recreates it only when that changed.
"""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING, Any

from monctl.adapters.docker import HELPER_LABEL
from monctl.adapters.docker_errors import docker_errors
from monctl.errors import MonctlError, PortInUse
from monctl.runtime.swarm_state import GATEWAY_LABEL, GATEWAY_SERVICE_LABEL

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.docker import Engine
    from monctl.project import Project
    from monctl.services.model import Service

IMAGE_VAR = "MONCTL_GATEWAY_IMAGE"
DEFAULT_IMAGE = "alpine/socat:1.8.0.3"
SPEC_LABEL = "org.monctl.gateway.spec"


def name_of(stack: str, service: Service) -> str:
    return f"{stack}-gateway-{service.name}"


def _spec(project: Project, service: Service, network: str) -> dict[str, Any]:
    port = service.container_port
    return {
        "image": project.setting(IMAGE_VAR, DEFAULT_IMAGE),
        "command": [f"TCP-LISTEN:{port},fork,reuseaddr", f"TCP:{service.name}:{port}"],
        "address": project.bind_address,
        "host_port": project.host_port(service),
        "port": port,
        "network": network,
    }


def _digest(spec: dict[str, Any]) -> str:
    return hashlib.sha256(repr(sorted(spec.items())).encode()).hexdigest()[:16]


def existing(engine: Engine, stack: str) -> list[Any]:
    return engine.containers([f"{GATEWAY_LABEL}={stack}"])


def check_ports(engine: Engine, project: Project, services: tuple[Service, ...]) -> None:
    """Fail before anything starts when a port a gateway needs is taken by someone else
    (on this machine; over ssh the engine reports it when the gateway starts)."""
    from monctl.adapters import ports, ssh

    if ssh.target() is not None:
        return

    mine = {
        c.labels.get(GATEWAY_SERVICE_LABEL)
        for c in existing(engine, project.name)
        if c.status == "running"
    }
    for service in services:
        if service.name in mine:
            continue
        port = project.host_port(service)
        if not ports.is_free(project.bind_address, port):
            raise PortInUse(port, project.bind_address, ports.who_listens(port), service.name)


def ensure(engine: Engine, project: Project, services: tuple[Service, ...], network: str) -> None:
    """One running gateway per service in ``services``, each as its spec says."""
    current = {c.labels.get(GATEWAY_SERVICE_LABEL): c for c in existing(engine, project.name)}
    for service in services:
        spec = _spec(project, service, network)
        digest = _digest(spec)
        found = current.get(service.name)
        if found is not None and found.labels.get(SPEC_LABEL) == digest:
            if found.status != "running":
                engine.start(found)
            continue
        if found is not None:
            engine.remove(str(found.id))
        _run(engine, project.name, service, spec, digest)


def _run(engine: Engine, stack: str, service: Service, spec: dict[str, Any], digest: str) -> None:
    with docker_errors(f"starting the loopback gateway of {service.name} ({spec['image']})"):
        containers: Any = engine.client.containers
        containers.run(
            spec["image"],
            spec["command"],
            name=name_of(stack, service),
            detach=True,
            network=spec["network"],
            ports={f"{spec['port']}/tcp": (spec["address"], spec["host_port"])},
            restart_policy={"Name": "unless-stopped"},
            user="65534:65534",
            read_only=True,
            cap_drop=["ALL"],
            security_opt=["no-new-privileges"],
            labels={
                GATEWAY_LABEL: stack,
                GATEWAY_SERVICE_LABEL: service.name,
                SPEC_LABEL: digest,
                HELPER_LABEL: stack,
            },
        )


def remove_all(engine: Engine, stack: str) -> None:
    """Remove every gateway of ``stack`` (before its network goes)."""
    for container in existing(engine, stack):
        try:
            engine.remove(str(container.id))
        except MonctlError:  # pragma: no cover - remove() already tolerates the usual
            continue
