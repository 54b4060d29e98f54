"""Where each service answers: discovered from Docker, or overridden by the operator.

``MONCTL_<SERVICE>_URL`` (e.g. ``MONCTL_PROMETHEUS_URL``) wins; otherwise the
container's published port (through Docker); otherwise, when Docker cannot be
reached, the host port configured in ``.env`` on the bind address. The last
case is reported as "container state unknown", never silently assumed up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Literal

from monctl.adapters.docker import ContainerInfo, Docker
from monctl.catalogue import Service
from monctl.project import Project


@dataclass(frozen=True)
class Endpoint:
    service: Service
    url: str | None  # base URL without trailing slash; None: not published
    source: Literal["env", "docker", "config"]
    container: ContainerInfo | None  # None when Docker was not asked or has none


def _host(address: str) -> str:
    # A wildcard bind is reached on loopback; IPv6 literals need brackets in URLs.
    if address in ("", "0.0.0.0"):
        return "127.0.0.1"
    if address == "::":
        return "[::1]"
    return f"[{address}]" if ":" in address else address


def published_urls(info: ContainerInfo, service: Service) -> list[str]:
    return [
        f"http://{_host(p.host_ip)}:{p.host_port}"
        for p in info.ports
        if p.container_port == service.container_port
    ]


def discover(
    project: Project,
    services: tuple[Service, ...],
    containers: dict[str, ContainerInfo] | None,
) -> dict[str, Endpoint]:
    """Endpoints for ``services``. ``containers`` is None when Docker is unreachable."""
    result: dict[str, Endpoint] = {}
    for service in services:
        override = os.environ.get(service.url_var)
        info = containers.get(service.name) if containers is not None else None
        if override:
            result[service.name] = Endpoint(service, override.rstrip("/"), "env", info)
        elif containers is not None:
            urls = published_urls(info, service) if info else []
            result[service.name] = Endpoint(service, urls[0] if urls else None, "docker", info)
        else:
            url = f"http://{_host(project.bind_address)}:{project.host_port(service)}"
            result[service.name] = Endpoint(service, url, "config", None)
    return result


def try_docker(project: Project) -> tuple[Docker | None, str | None]:
    """A Docker adapter, or (None, reason) when the engine cannot be reached."""
    from monctl.errors import DockerUnavailable

    try:
        return Docker(project.name), None
    except DockerUnavailable as exc:
        return None, exc.message
