"""A Swarm service's data and files: where they are, and how they are replaced.

A volume lives on the node that runs the service's task. When that is the
engine monctl talks to, backup and restore work as under compose (the task
container is an ordinary container there); otherwise ``elsewhere`` names the
node and how to point monctl at it. Restore stages the data exactly as the
compose runtime does; ``swap_in`` scales the service to zero, waits until its
task containers are gone and removes them (an exited task container still
holds the volume), replaces the volume and scales the service back, always.

``tool_runner``: a one-off container of the service's image with its
configuration directory copied in through the archive API (no bind mount:
``DOCKER_HOST`` may name another machine, and the image may have no shell).
"""

from __future__ import annotations

import contextlib
import io
import posixpath
import tarfile
import time
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING, Any

from monctl.adapters.docker import HELPER_LABEL
from monctl.adapters.docker_errors import docker_errors
from monctl.errors import OperationFailed
from monctl.runtime import volumes
from monctl.runtime.swarm_deploy import NODE_LABEL
from monctl.runtime.volumes import Stage

if TYPE_CHECKING:  # pragma: no cover
    from docker.models.containers import Container

    from monctl.runtime import ToolRunner
    from monctl.runtime.swarm import SwarmRuntime
    from monctl.services.model import Service

TOOL_TIMEOUT = 300
SCALE_TIMEOUT = 120.0


def elsewhere(runtime: SwarmRuntime, service: Service) -> OperationFailed:
    """The error for a service with no task container on this engine."""
    state = runtime.states().get(service.name)
    info = runtime.engine.info()
    here = str(info.get("Name") or "this node")
    node = state.node if state is not None else None
    if state is None or state.running == 0 or not node:
        return OperationFailed(
            f"{service.name} has no running task in stack {runtime.stack!r}",
            hint=f"start it with `monctl --runtime swarm up {service.name}`",
        )
    return OperationFailed(
        f"{service.name}'s task runs on node {node}, not on {here} (the engine monctl talks "
        f"to): its data lives on {node}",
        hint=f"run monctl against that node: DOCKER_HOST=ssh://USER@{node} monctl --runtime "
        f"swarm ... (it must be a manager); label it {NODE_LABEL}=true to keep the service there",
    )


def live_volume(runtime: SwarmRuntime, service: Service, container: Container) -> str:
    assert service.data is not None
    for mount in container.attrs.get("Mounts") or []:
        if mount.get("Destination") == service.data.path and mount.get("Type") == "volume":
            return str(mount["Name"])
    raise OperationFailed(
        f"{service.name} has no Docker volume mounted at {service.data.path}",
        hint="the compose file must mount the service's data volume there",
    )


def stage(runtime: SwarmRuntime, service: Service) -> contextlib.AbstractContextManager[Stage]:
    """As under compose: a fresh volume in a never-started container of the task's image."""
    assert service.data is not None
    container = runtime.local_task(service, running=False)
    live = live_volume(runtime, service, container)
    image = str(container.attrs["Image"])
    return volumes.staged(runtime.engine, image, live, service.data.path, runtime.stack)


def _replicas(runtime: SwarmRuntime, service: Service) -> int:
    found = runtime.swarm.service(runtime.full_name(service)) or {}
    mode = found.get("Spec", {}).get("Mode", {})
    return int((mode.get("Replicated") or {}).get("Replicas") or 1)


def _scale(runtime: SwarmRuntime, service: Service, replicas: int) -> None:
    def change(spec: dict[str, Any]) -> None:
        spec.setdefault("Mode", {}).setdefault("Replicated", {})["Replicas"] = replicas

    runtime.update(service, change)


def _gone(runtime: SwarmRuntime, service: Service) -> None:
    """Wait until no task of the service runs, then remove its task containers here."""
    deadline = time.monotonic() + SCALE_TIMEOUT
    while any(c.status in ("running", "paused") for c in runtime.local_containers(service)):
        if time.monotonic() > deadline:
            raise OperationFailed(f"{service.name}'s task did not stop within {SCALE_TIMEOUT:.0f}s")
        time.sleep(0.5)
    for container in runtime.local_containers(service):
        runtime.engine.remove(str(container.id))


def swap_in(
    runtime: SwarmRuntime,
    service: Service,
    staged: Any,
    refill: Callable[[], Iterable[bytes]] | None = None,
) -> str:
    """Scale to zero, replace the volume with the staged data, scale back (always)."""
    assert isinstance(staged, Stage) and service.data is not None
    replicas = _replicas(runtime, service)

    def stop() -> None:
        _scale(runtime, service, 0)
        _gone(runtime, service)

    def start() -> None:
        _scale(runtime, service, max(replicas, 1))

    volumes.swap(runtime.engine, staged, runtime.stack, stop, start, refill)
    return "running"


def _config_tar(runtime: SwarmRuntime, service: Service) -> tuple[str, bytes]:
    """(where to extract, a tar of the service's configuration directory as the
    container sees it), every file readable by the image's user."""
    assert service.config is not None
    source = runtime.project.root / service.config.host
    parent, base = posixpath.split(service.config.container.rstrip("/"))
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as tar:
        for path in sorted([source, *source.rglob("*")]):
            inside = base if path == source else f"{base}/{path.relative_to(source).as_posix()}"
            info = tar.gettarinfo(str(path), inside)
            info.uid = info.gid = 0
            info.uname = info.gname = ""
            info.mode = 0o755 if info.isdir() else 0o644
            if info.isfile():
                with path.open("rb") as fh:
                    tar.addfile(info, fh)
            elif info.isdir():
                tar.addfile(info)
    return parent or "/", buffer.getvalue()


@contextlib.contextmanager
def tool_runner(runtime: SwarmRuntime, services: tuple[Service, ...]) -> Iterator[ToolRunner]:
    from monctl.runtime import swarm_deploy

    runtime.engine  # DockerUnavailable now, not a confusing error later  # noqa: B018
    images = {
        name: str(s.get("image", ""))
        for name, s in (
            swarm_deploy.model(runtime, placeholders=True).get("services") or {}
        ).items()
    }
    api: Any = runtime.engine.client.api

    def run(service: Service, argv: list[str]) -> tuple[int, str]:
        with docker_errors(f"running {argv[0]} in a one-off container of {service.name}"):
            created = api.create_container(
                images[service.name],
                command=argv[1:],
                entrypoint=[argv[0]],
                host_config=api.create_host_config(network_mode="none"),
                labels={HELPER_LABEL: runtime.stack},
                network_disabled=True,
            )
        container = str(created["Id"])
        try:
            if service.config is not None:
                where, data = _config_tar(runtime, service)
                runtime.engine.put_archive(container, where, iter([data]))
            with docker_errors(f"running {argv[0]}"):
                api.start(container)
                code = int(api.wait(container, timeout=TOOL_TIMEOUT).get("StatusCode", 1))
                output = api.logs(container, stdout=True, stderr=True).decode("utf-8", "replace")
            return code, output
        finally:
            runtime.engine.remove(container)

    yield run
