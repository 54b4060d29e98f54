"""A lean, read-only, async view of the Docker engine, for `monctl health`.

`monctl health` should cost about as much as its slowest probe. The Docker SDK
costs ~0.15 s to import, and a thread running it competes with the probes for
the interpreter. Reading a set of containers takes two kinds of GET, which go
straight to the engine's API over its socket with httpx, concurrently with the
probes. Everything that changes something (pause, exec, archives, start, stop)
stays with the SDK in ``monctl.adapters.docker``, and so does any DOCKER_HOST
this module does not speak (TLS, ssh): the functions raise ``Unsupported`` and
the caller falls back to the SDK.
"""

from __future__ import annotations

import asyncio
import json
import os
from typing import Any

import httpx

from monctl.adapters.docker_errors import translate_error

DEFAULT_HOST = "unix:///var/run/docker.sock"


class Unsupported(Exception):
    """DOCKER_HOST names something only the SDK speaks (TLS, ssh)."""


def _target() -> tuple[str, str | None]:
    """(base URL, unix socket path or None) for DOCKER_HOST."""
    host = os.environ.get("DOCKER_HOST") or DEFAULT_HOST
    if os.environ.get("DOCKER_TLS_VERIFY") or host.startswith("ssh://"):
        raise Unsupported(host)
    if host.startswith("unix://"):
        return "http://docker", host[len("unix://") :]
    if host.startswith("tcp://"):
        return "http://" + host[len("tcp://") :], None
    raise Unsupported(host)


async def inspect_containers(
    labels: list[str], timeout: float = 10.0
) -> tuple[list[dict[str, Any]] | None, str | None]:
    """Inspect documents of every container carrying ``labels``, or (None, why)
    when the engine can't be asked. Raise Unsupported for a DOCKER_HOST it doesn't speak."""
    base, socket_path = _target()
    if socket_path is not None and not os.path.exists(socket_path):
        return None, translate_error(FileNotFoundError(socket_path)).message
    # verify=False everywhere: plain HTTP to the engine, and building a verifying
    # TLS context (the CA bundle) would cost more than the whole inspection.
    transport = httpx.AsyncHTTPTransport(uds=socket_path, verify=False) if socket_path else None
    filters = json.dumps({"label": labels})
    try:
        client = httpx.AsyncClient(
            base_url=base, transport=transport, timeout=timeout, verify=False
        )
        async with client as api:
            listing = await api.get("/containers/json", params={"all": "true", "filters": filters})
            listing.raise_for_status()
            inspected = await asyncio.gather(
                *(api.get(f"/containers/{c['Id']}/json") for c in listing.json())
            )
        return [r.json() for r in inspected if r.status_code == 200], None
    except (httpx.HTTPError, OSError, ValueError) as exc:
        return None, translate_error(exc).message


async def swarm_listing(
    stack_label: str, gateway_label: str, timeout: float = 10.0
) -> tuple[dict[str, Any] | None, str | None]:
    """One round of concurrent reads for a Swarm stack, whatever the number of
    nodes: ``info``, the stack's ``services`` (with task counts), its ``tasks``,
    the ``nodes`` and the ``gateways`` (containers carrying ``gateway_label``).
    (None, why) when the engine can't be asked; Unsupported as above."""
    base, socket_path = _target()
    if socket_path is not None and not os.path.exists(socket_path):
        return None, translate_error(FileNotFoundError(socket_path)).message
    transport = httpx.AsyncHTTPTransport(uds=socket_path, verify=False) if socket_path else None
    label = json.dumps({"label": [stack_label]})
    queries = {
        "info": ("/info", {}),
        "services": ("/services", {"status": "true", "filters": label}),
        "tasks": ("/tasks", {"filters": label}),
        "nodes": ("/nodes", {}),
        "gateways": (
            "/containers/json",
            {"all": "true", "filters": json.dumps({"label": [gateway_label]})},
        ),
    }
    try:
        client = httpx.AsyncClient(
            base_url=base, transport=transport, timeout=timeout, verify=False
        )
        async with client as api:
            answers = await asyncio.gather(
                *(api.get(path, params=params) for path, params in queries.values())
            )
        documents = dict(zip(queries, (a.json() for a in answers), strict=True))
    except (httpx.HTTPError, OSError, ValueError) as exc:
        return None, translate_error(exc).message
    # On a node that is not a manager the Swarm endpoints answer 503: /info says why.
    return documents, None
