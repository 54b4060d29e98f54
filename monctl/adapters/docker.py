"""The Docker engine, through the Docker SDK (imported only when a command needs it).

Every docker/requests failure is translated here into a MonctlError that says
what failed and what to try, in the spirit of compose v1's error context.
Containers are found by compose's labels, so the project name may vary.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any

from monctl.errors import DockerUnavailable, OperationFailed

if TYPE_CHECKING:  # pragma: no cover
    import docker
    from docker.models.containers import Container

log = logging.getLogger(__name__)

PROJECT_LABEL = "com.docker.compose.project"
SERVICE_LABEL = "com.docker.compose.service"


@dataclass(frozen=True)
class PublishedPort:
    container_port: int
    host_ip: str
    host_port: int


@dataclass(frozen=True)
class ContainerInfo:
    service: str
    name: str
    id: str
    state: str  # running, paused, exited, restarting, created, dead
    health: str | None  # healthy, unhealthy, starting; None without a healthcheck
    started_at: datetime | None
    image: str
    version: str | None
    ports: tuple[PublishedPort, ...] = field(default_factory=tuple)

    def uptime_seconds(self, now: datetime | None = None) -> float | None:
        if self.state != "running" or self.started_at is None:
            return None
        return ((now or datetime.now(UTC)) - self.started_at).total_seconds()


def daemon_error(denied: bool) -> DockerUnavailable:
    """The one wording of "monctl cannot talk to Docker", whoever noticed it
    (the SDK, the engine API in docker_api.py, or compose's own output)."""
    if denied:
        return DockerUnavailable(
            "permission denied talking to the Docker daemon",
            hint="add your user to the 'docker' group (then log in again), or run with sudo",
        )
    return DockerUnavailable(
        "cannot reach the Docker daemon (is it running?)",
        hint="start Docker (e.g. `sudo systemctl start docker`), or set DOCKER_HOST",
    )


def translate_error(exc: Exception) -> DockerUnavailable:
    """A connection failure (SDK, requests or httpx) as the daemon error it means."""
    return daemon_error("Permission denied" in str(exc) or isinstance(exc, PermissionError))


@contextlib.contextmanager
def docker_errors(action: str) -> Iterator[None]:
    """Turn Docker SDK and connection failures inside the block into MonctlErrors."""
    import docker.errors
    import requests.exceptions

    try:
        yield
    except docker.errors.NotFound as exc:
        raise OperationFailed(f"{action}: {exc.explanation or exc}") from None
    except docker.errors.APIError as exc:
        raise OperationFailed(f"{action}: {exc.explanation or exc}") from None
    except (docker.errors.DockerException, requests.exceptions.ConnectionError) as exc:
        raise translate_error(exc) from None


def _parse_time(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-"):
        return None
    # Docker gives nanoseconds; Python takes at most microseconds.
    head, _, frac = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")


def _version_of(image_ref: str, labels: dict[str, str]) -> str | None:
    version = labels.get("org.opencontainers.image.version")
    if version:
        return version
    tail = image_ref.rsplit("/", 1)[-1]
    return tail.split(":", 1)[1] if ":" in tail else None


def container_info(attrs: dict[str, Any]) -> ContainerInfo:
    """A ContainerInfo from Docker's inspect document (GET /containers/{id}/json)."""
    state = attrs.get("State", {})
    labels = attrs.get("Config", {}).get("Labels") or {}
    image_ref = attrs.get("Config", {}).get("Image", "")
    name = str(attrs.get("Name", "")).lstrip("/")
    ports: list[PublishedPort] = []
    for key, bindings in (attrs.get("NetworkSettings", {}).get("Ports") or {}).items():
        for b in bindings or []:
            ports.append(PublishedPort(int(key.split("/")[0]), b["HostIp"], int(b["HostPort"])))
    return ContainerInfo(
        service=str(labels.get(SERVICE_LABEL, name)),
        name=name,
        id=str(attrs.get("Id", "")),
        state=state.get("Status", "unknown"),
        health=(state.get("Health") or {}).get("Status"),
        started_at=_parse_time(state.get("StartedAt")),
        image=image_ref,
        version=_version_of(image_ref, labels),
        ports=tuple(sorted(ports, key=lambda p: (p.container_port, p.host_ip))),
    )


def newest_by_service(infos: Iterable[ContainerInfo]) -> dict[str, ContainerInfo]:
    """One container per service: a running one when there is one."""
    result: dict[str, ContainerInfo] = {}
    for info in infos:
        if info.service not in result or info.state == "running":
            result[info.service] = info
    return result


class Docker:
    """Containers of one compose project."""

    def __init__(self, project_name: str) -> None:
        self.project = project_name
        import docker

        with docker_errors("connecting to Docker"):
            self.client: docker.DockerClient = docker.from_env(timeout=30)
            self.client.ping()

    # -- looking -------------------------------------------------------------
    def _containers(self, service: str | None = None) -> list[Container]:
        labels = [f"{PROJECT_LABEL}={self.project}"]
        if service:
            labels.append(f"{SERVICE_LABEL}={service}")
        with docker_errors("listing containers"):
            return list(self.client.containers.list(all=True, filters={"label": labels}))

    def inspect_all(self) -> dict[str, ContainerInfo]:
        """The project's containers by compose service name (the newest if several)."""
        return newest_by_service(container_info(c.attrs) for c in self._containers())

    def container(self, service: str) -> Container:
        """The running container of ``service``; OperationFailed if it is not running."""
        running = [c for c in self._containers(service) if c.status == "running"]
        if not running:
            raise OperationFailed(
                f"{service} is not running in project {self.project!r}",
                hint=f"start it with `monctl up {service}`",
            )
        return running[0]

    # -- acting --------------------------------------------------------------
    def exec(self, service: str, argv: list[str], user: str | None = None) -> tuple[int, str]:
        """Run ``argv`` inside the running container; return (exit code, combined output)."""
        c = self.container(service)
        with docker_errors(f"running {argv[0]} in {service}"):
            result = c.exec_run(argv, user=user or "", demux=False)
        raw = result.output if isinstance(result.output, bytes) else b""  # not streamed
        return int(result.exit_code or 0), raw.decode("utf-8", "replace")

    @contextlib.contextmanager
    def paused(self, service: str) -> Iterator[None]:
        """Pause ``service`` for the length of the block; it is always unpaused,
        also on error or Ctrl-C (KeyboardInterrupt is a BaseException: finally covers it)."""
        c = self.container(service)
        with docker_errors(f"pausing {service}"):
            c.pause()
        log.info("paused %s", service)
        try:
            yield
        finally:
            with docker_errors(f"unpausing {service}"):
                c.unpause()
            log.info("unpaused %s", service)

    def stop(self, service: str, timeout: int = 30) -> None:
        for c in self._containers(service):
            with docker_errors(f"stopping {service}"):
                c.stop(timeout=timeout)

    def start(self, service: str) -> None:
        containers = self._containers(service)
        if not containers:
            raise OperationFailed(f"{service} has no container in project {self.project!r}")
        for c in containers:
            with docker_errors(f"starting {service}"):
                c.start()

    def restart(self, service: str, timeout: int = 30) -> None:
        c = self.container(service)
        with docker_errors(f"restarting {service}"):
            c.restart(timeout=timeout)

    def network_exists(self, name: str) -> bool:
        with docker_errors("listing networks"):
            return bool(self.client.networks.list(names=[name]))

    def create_network(self, name: str) -> None:
        with docker_errors(f"creating network {name}"):
            self.client.networks.create(name, driver="bridge")

    def project_volumes(self) -> list[str]:
        with docker_errors("listing volumes"):
            vols = self.client.volumes.list(filters={"label": f"{PROJECT_LABEL}={self.project}"})
        return [v.name for v in vols]

    # -- backup/restore (issue 6) ---------------------------------------------
    def get_archive(self, service: str, path: str, chunk_size: int = 1 << 20) -> Iterator[bytes]:
        """Stream ``path`` out of the service's container as tar chunks (Docker's archive API).

        The tar's top-level entry is the basename of ``path``. Nothing is buffered
        here: the caller consumes the chunks as they arrive (also from a paused
        container). Closing the returned generator closes the HTTP response: the
        caller MUST close it before unpausing, because the daemon holds the
        container while an archive request is open and an unpause would wait
        for it. Docker/connection failures, also while streaming, become MonctlErrors.
        """
        api: Any = self.client.api
        # The SDK's get_archive hides the HTTP response, which must be closable.
        with docker_errors(f"reading {path} from {service}"):
            cid = self.service_container_id(service)
            response = api._get(
                api._url("/containers/{0}/archive", cid),
                params={"path": path},
                stream=True,
                headers={"Accept-Encoding": "identity"},
            )
            api._raise_for_status(response)

        def chunks() -> Iterator[bytes]:
            try:
                with docker_errors(f"reading {path} from {service}"):
                    yield from api._stream_raw_result(response, chunk_size, False)
            finally:
                response.close()

        return chunks()

    def service_container_id(self, service: str) -> str:
        """The id of ``service``'s container in any state; OperationFailed if it has none."""
        containers = self._containers(service)
        if not containers:
            raise OperationFailed(
                f"{service} has no container in project {self.project!r}",
                hint=f"create it with `monctl up {service}` first",
            )
        live = [c for c in containers if c.status in ("running", "paused")]
        return str((live or containers)[0].id)

    def image_id_of(self, service: str) -> str:
        """The image id ``service``'s container runs (any state)."""
        with docker_errors(f"inspecting {service}"):
            c = self.client.containers.get(self.service_container_id(service))
            return str(c.attrs["Image"])

    def volume_at(self, service: str, path: str) -> str:
        """The name of the volume mounted at ``path`` in ``service``'s container."""
        with docker_errors(f"inspecting {service}"):
            c = self.client.containers.get(self.service_container_id(service))
            mounts: list[dict[str, Any]] = c.attrs.get("Mounts") or []
        for m in mounts:
            if m.get("Destination") == path and m.get("Type") == "volume" and m.get("Name"):
                return str(m["Name"])
        raise OperationFailed(
            f"{service} has no Docker volume mounted at {path}",
            hint="the compose file must mount the service's data volume there",
        )

    def create_helper(
        self, image: str, argv: list[str], volumes: dict[str, str], user: str = "0"
    ) -> str:
        """Create (do not start) a one-off container running ``argv`` from ``image``
        with ``volumes`` ({volume name: mount point}) mounted; return its id.
        The caller removes it with ``remove_container``."""
        with docker_errors(f"creating a helper container from {image}"):
            c = self.client.containers.create(
                image,
                entrypoint=argv[:1],
                command=argv[1:],
                user=user,
                volumes={name: {"bind": point, "mode": "rw"} for name, point in volumes.items()},
                network_mode="none",
                labels={"org.monctl.helper": self.project},
            )
        return str(c.id)

    def put_archive(self, container_id: str, path: str, chunks: Iterator[bytes]) -> None:
        """Stream a tar into ``path`` of a (created or running) container, as it comes."""
        with docker_errors(f"writing an archive into {path}"):
            c = self.client.containers.get(container_id)
            if not c.put_archive(path, chunks):
                raise OperationFailed(f"Docker refused the archive for {path}")

    def run_created(self, container_id: str, timeout: float = 600) -> tuple[int, str]:
        """Start a created container, wait for it; return (exit code, its output)."""
        import requests.exceptions

        with docker_errors("running a helper container"):
            c = self.client.containers.get(container_id)
            c.start()
            try:
                result = c.wait(timeout=timeout)
            except requests.exceptions.ReadTimeout:
                c.kill()
                raise OperationFailed(
                    f"a helper container ran longer than {timeout:.0f}s"
                ) from None
            output = c.logs(stdout=True, stderr=True).decode("utf-8", "replace")
        return int(result.get("StatusCode", 1)), output

    def remove_container(self, container_id: str) -> None:
        """Remove a (helper) container, running or not; a missing one is fine."""
        import docker.errors

        try:
            # v=True: images that declare a VOLUME would leave an anonymous one behind.
            self.client.containers.get(container_id).remove(force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as exc:
            log.warning("could not remove helper container %s: %s", container_id[:12], exc)

    def run_helper(
        self, image: str, argv: list[str], volumes: dict[str, str], timeout: float = 600
    ) -> tuple[int, str]:
        """Run ``argv`` as root in a one-off container of ``image``; always removed."""
        cid = self.create_helper(image, argv, volumes)
        try:
            return self.run_created(cid, timeout=timeout)
        finally:
            self.remove_container(cid)

    def container_env(self, service: str) -> dict[str, str]:
        """The environment the running container of ``service`` was created with
        (``Config.Env``: what compose passed, not what its entrypoint kept).
        Values may be secrets: compare them, never print them."""
        c = self.container(service)
        env: dict[str, str] = {}
        for item in c.attrs.get("Config", {}).get("Env") or []:
            name, _, value = item.partition("=")
            env[name] = value
        return env


def connect(project_name: str) -> Docker:
    """A Docker adapter for the project; DockerUnavailable when the engine can't be reached."""
    return Docker(project_name)
