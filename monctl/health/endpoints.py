"""Where each service answers: overridden by the operator, told by the runtime, or configured.

``MONCTL_<SERVICE>_URL`` (e.g. ``MONCTL_PROMETHEUS_URL``) wins; otherwise the
address the runtime publishes the service on; otherwise, when the engine
cannot be asked, the host port configured in ``.env`` on the bind address. The
last case is reported as "container state unknown", never silently assumed up.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

from monctl.adapters.ports import url_host
from monctl.services.model import Service

if TYPE_CHECKING:  # pragma: no cover
    from monctl.project import Project
    from monctl.runtime import Runtime, ServiceState


@dataclass(frozen=True)
class Endpoint:
    service: Service
    url: str | None  # base URL without trailing slash; None: not published
    source: Literal["env", "runtime", "config"]
    state: ServiceState | None  # None when the runtime was not asked or has none


def override(service: Service) -> str | None:
    """The operator's URL for ``service`` (MONCTL_<SERVICE>_URL), if any."""
    url = os.environ.get(service.url_var)
    return url.rstrip("/") if url else None


def discover(
    project: Project,
    runtime: Runtime,
    services: tuple[Service, ...],
    states: dict[str, ServiceState] | None,
) -> dict[str, Endpoint]:
    """Endpoints for ``services``. ``states`` is None when the engine is unreachable."""
    result: dict[str, Endpoint] = {}
    for service in services:
        given = override(service)
        state = states.get(service.name) if states is not None else None
        if given:
            result[service.name] = Endpoint(service, given, "env", state)
        elif states is not None:
            urls = runtime.host_urls(service, state)
            result[service.name] = Endpoint(service, urls[0] if urls else None, "runtime", state)
        else:
            url = f"http://{url_host(project.bind_address)}:{project.host_port(service)}"
            result[service.name] = Endpoint(service, url, "config", None)
    return result


def url_of(project: Project, runtime: Runtime, service: Service) -> str:
    """Where ``service`` answers now; OperationFailed when it publishes nothing reachable."""
    from monctl.errors import OperationFailed

    given = override(service)
    if given:
        return given
    urls = runtime.host_urls(service, runtime.states().get(service.name))
    if not urls:
        raise OperationFailed(
            f"{service.name} publishes no port monctl can reach",
            hint=f"check {service.port_var} in .env, or set {service.url_var}",
        )
    return urls[0]
