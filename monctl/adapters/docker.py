"""The Docker engine, through the Docker SDK (imported only when a command needs it).

Engine-level operations on containers, volumes, networks and archives, with
every docker/requests failure translated into a MonctlError that says what
failed and what to try, in the spirit of compose v1's error context. Nothing
here knows about compose projects or Swarm stacks: the runtimes
(``monctl.runtime``) decide which containers belong to a service.

The archive download uses SDK internals (``api._get`` ...) to keep the HTTP
response closable (see ``get_archive``): ``docker`` is pinned to major 7 in
pyproject.toml for that reason.
"""

from __future__ import annotations

import contextlib
import logging
import os
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import TYPE_CHECKING, Any

from monctl.adapters.docker_errors import docker_errors, engine_write_error
from monctl.errors import OperationFailed

if TYPE_CHECKING:  # pragma: no cover
    import docker
    from docker.models.containers import Container

log = logging.getLogger(__name__)

HELPER_LABEL = "org.monctl.helper"  # on every container and volume monctl creates itself


def parse_time(value: str | None) -> datetime | None:
    if not value or value.startswith("0001-"):
        return None
    # Docker gives nanoseconds; Python takes at most microseconds.
    head, _, frac = value.rstrip("Z").partition(".")
    return datetime.fromisoformat(f"{head}.{(frac + '000000')[:6]}+00:00")


def version_of(image_ref: str, labels: dict[str, str]) -> str | None:
    """The version an image says it is (OCI label), else its tag."""
    version = labels.get("org.opencontainers.image.version")
    if version:
        return version
    tail = image_ref.rsplit("/", 1)[-1]
    return tail.split(":", 1)[1] if ":" in tail else None


class Engine:
    """One connection to the Docker engine (DOCKER_HOST, or the local socket)."""

    def __init__(self, timeout: int = 30) -> None:
        import docker

        # ssh://: through the `ssh` program, as the docker CLI does (the operator's keys,
        # agent and ~/.ssh/config apply; no paramiko needed).
        over_ssh = (os.environ.get("DOCKER_HOST") or "").startswith("ssh://")
        if over_ssh:
            import importlib.util

            if importlib.util.find_spec("paramiko") is None:
                from monctl.errors import UsageError

                raise UsageError(
                    "DOCKER_HOST=ssh://... needs the optional extra monctl[ssh] "
                    "(the Docker SDK requires paramiko for it)",
                    hint="pip install 'monctl[ssh]'",
                )
        with docker_errors("connecting to Docker"):
            self.client: docker.DockerClient = docker.from_env(
                timeout=timeout, use_ssh_client=over_ssh
            )
            self.client.ping()

    # -- looking -------------------------------------------------------------
    def containers(self, labels: list[str]) -> list[Container]:
        """Containers in any state carrying every label (``key=value``) given.

        The SDK lists, then inspects each container: one removed in between (a
        compose recreate, a Swarm task replaced) is simply not there any more."""
        import docker.errors

        found = []
        with docker_errors("listing containers"):
            listed = self.client.api.containers(all=True, filters={"label": labels})
            for entry in listed:
                try:
                    found.append(self.client.containers.get(entry["Id"]))
                except docker.errors.NotFound:
                    continue
        return found

    def inspect(self, container_id: str) -> dict[str, Any]:
        with docker_errors("inspecting a container"):
            attrs: dict[str, Any] = self.client.api.inspect_container(container_id)
        return attrs

    def info(self) -> dict[str, Any]:
        with docker_errors("asking Docker about itself"):
            info: dict[str, Any] = self.client.info()
        return info

    # -- acting on one container ------------------------------------------------
    def exec(self, container: Container, argv: list[str], what: str) -> tuple[int, str]:
        """Run ``argv`` inside the running ``container``; (exit code, combined output)."""
        with docker_errors(f"running {argv[0]} in {what}"):
            result = container.exec_run(argv, demux=False)
        raw = result.output if isinstance(result.output, bytes) else b""  # not streamed
        return int(result.exit_code or 0), raw.decode("utf-8", "replace")

    @contextlib.contextmanager
    def paused(self, container: Container, what: str) -> Iterator[None]:
        """Pause for the length of the block; always unpaused, also on error or a signal.

        A signal that arrives while the pause request is on its way is held until
        the request returns, then raised inside the ``try``: a container paused by a
        request that was cut short would otherwise stay paused."""
        from monctl import signals

        paused = False
        try:
            with signals.deferred(), docker_errors(f"pausing {what}"):
                container.pause()
                paused = True
            log.info("paused %s", what)
            yield
        finally:
            if paused:
                with docker_errors(f"unpausing {what}"):
                    container.unpause()
                log.info("unpaused %s", what)

    def get_archive(
        self, container_id: str, path: str, chunk_size: int = 1 << 20
    ) -> Iterator[bytes]:
        """Stream ``path`` out of a container (any state) as tar chunks (the archive API).

        The tar's top-level entry is the basename of ``path``. Nothing is buffered
        here: the caller consumes the chunks as they arrive (also from a paused
        container). Closing the returned generator closes the HTTP response: the
        caller MUST close it before unpausing, because the daemon holds the
        container while an archive request is open and an unpause would wait for
        it (the SDK's own get_archive cannot be closed early, hence its internals).
        Docker/connection failures, also while streaming, become MonctlErrors.
        """
        api: Any = self.client.api
        with docker_errors(f"reading {path}"):
            response = api._get(
                api._url("/containers/{0}/archive", container_id),
                params={"path": path},
                stream=True,
                headers={"Accept-Encoding": "identity"},
            )
            api._raise_for_status(response)

        def chunks() -> Iterator[bytes]:
            try:
                with docker_errors(f"reading {path}"):
                    yield from api._stream_raw_result(response, chunk_size, False)
            finally:
                response.close()

        return chunks()

    def put_archive(
        self, container_id: str, path: str, chunks: Iterable[bytes], where: str = ""
    ) -> None:
        """Stream a tar into ``path`` of a (created or running) container, as it comes.

        Docker extracts it as root and keeps the owners, modes and times of the
        tar's headers (the API, unlike `docker cp`, does not rewrite them). The
        engine's disk refusing the write (full, read-only) is a StorageError naming
        ``where`` (a volume; default ``path``)."""
        import docker.errors

        with docker_errors(f"writing an archive into {path}"):
            try:
                accepted = self.client.api.put_archive(container_id, path, chunks)
            except docker.errors.APIError as exc:
                refused = engine_write_error(str(exc.explanation or exc), where or path)
                if refused is None:
                    raise
                raise refused from None
            if not accepted:
                raise OperationFailed(f"Docker refused the archive for {path}")

    def stop(self, container: Container, timeout: int = 30) -> None:
        with docker_errors(f"stopping {container.name}"):
            container.stop(timeout=timeout)

    def start(self, container: Container) -> None:
        with docker_errors(f"starting {container.name}"):
            container.start()

    def restart(self, container: Container, timeout: int = 30) -> None:
        with docker_errors(f"restarting {container.name}"):
            container.restart(timeout=timeout)

    def remove(self, container_id: str) -> None:
        """Remove a container, running or not (and its anonymous volumes); missing is fine."""
        import docker.errors

        try:
            self.client.api.remove_container(container_id, force=True, v=True)
        except docker.errors.NotFound:
            pass
        except docker.errors.DockerException as exc:
            log.warning("could not remove container %s: %s", container_id[:12], exc)

    # -- creating ---------------------------------------------------------------
    def create_idle(self, image: str, volume: str, mount_point: str, label: str) -> str:
        """Create (never start) a container of ``image`` with ``volume`` at ``mount_point``.

        Nothing of the image runs: the container only gives the archive API a
        place to read or write the volume, so any image works, with or without
        a shell. ``nocopy``: the image's own files at the mount point must not
        seed the volume. Returns the container id; remove it with ``remove``."""
        api: Any = self.client.api
        with docker_errors(f"creating a container of {image}"):
            config = api.create_host_config(
                mounts=[
                    {
                        "Type": "volume",
                        "Source": volume,
                        "Target": mount_point,
                        "VolumeOptions": {"NoCopy": True},
                    }
                ],
                network_mode="none",
            )
            created = api.create_container(
                image,
                command=["monctl-never-started"],
                host_config=config,
                labels={HELPER_LABEL: label},
                network_disabled=True,
            )
        return str(created["Id"])

    # -- volumes and networks ----------------------------------------------------------
    def volume(self, name: str) -> dict[str, Any] | None:
        """The volume's inspect document, or None when it does not exist."""
        import docker.errors

        with docker_errors(f"inspecting volume {name}"):
            try:
                attrs: dict[str, Any] = self.client.api.inspect_volume(name)
            except docker.errors.NotFound:
                return None
        return attrs

    def create_volume(
        self,
        name: str,
        labels: dict[str, str],
        driver: str = "local",
        options: dict[str, str] | None = None,
    ) -> None:
        with docker_errors(f"creating volume {name}"):
            self.client.api.create_volume(name, driver=driver, driver_opts=options, labels=labels)

    def remove_volume(self, name: str) -> None:
        with docker_errors(f"removing volume {name}"):
            self.client.api.remove_volume(name, force=True)

    def volumes(self, label: str) -> list[str]:
        with docker_errors("listing volumes"):
            vols = self.client.volumes.list(filters={"label": label})
        return [v.name for v in vols]

    def labelled_containers(self, key: str) -> dict[str, dict[str, str]]:
        """Containers (any state) carrying label ``key`` (``key=value`` or any value):
        id -> labels. From the list alone: unlike ``containers``, no container is
        inspected, so one removed meanwhile (by anyone on the engine) is no error."""
        with docker_errors("listing containers"):
            found = self.client.api.containers(all=True, filters={"label": key})
        return {str(c["Id"]): dict(c.get("Labels") or {}) for c in found}

    def labelled_volumes(self, key: str) -> dict[str, dict[str, str]]:
        """Volumes carrying label ``key`` (any value): name -> labels."""
        with docker_errors("listing volumes"):
            vols = self.client.volumes.list(filters={"label": key})
        return {str(v.name): dict(v.attrs.get("Labels") or {}) for v in vols}

    def labelled_networks(self, key: str) -> dict[str, dict[str, str]]:
        """Networks carrying label ``key`` (``key=value`` or any value): name -> labels."""
        with docker_errors("listing networks"):
            nets = self.client.networks.list(filters={"label": key})
        return {str(n.name): dict(n.attrs.get("Labels") or {}) for n in nets}

    def remove_network(self, name: str) -> None:
        """Remove a network; one that is already gone is fine."""
        import docker.errors

        with docker_errors(f"removing network {name}"), contextlib.suppress(docker.errors.NotFound):
            self.client.api.remove_network(name)

    def container(self, container_id: str) -> Container:
        with docker_errors("finding a container"):
            return self.client.containers.get(container_id)

    def run_idle(
        self, image: str, argv: tuple[str, ...], networks: list[str], labels: dict[str, str]
    ) -> str:
        """Start a container of ``image`` running ``argv`` (something that only waits),
        attached to ``networks``, publishing nothing; return its id (``remove`` it)."""
        api: Any = self.client.api
        first, rest = networks[0], networks[1:]
        with docker_errors(f"starting a helper container of {image}"):
            created = api.create_container(
                image,
                entrypoint=[argv[0]],
                command=list(argv[1:]),
                labels=labels,
                host_config=api.create_host_config(network_mode=first),
                networking_config=api.create_networking_config(
                    {first: api.create_endpoint_config()}
                ),
            )
            container_id = str(created["Id"])
            try:
                api.start(container_id)
                for network in rest:
                    api.connect_container_to_network(container_id, network)
            except BaseException:
                self.remove(container_id)
                raise
        return container_id

    def network_exists(self, name: str) -> bool:
        with docker_errors("listing networks"):
            return any(n.name == name for n in self.client.networks.list(names=[name]))

    def create_network(self, name: str, driver: str = "bridge", attachable: bool = False) -> None:
        with docker_errors(f"creating network {name}"):
            self.client.networks.create(name, driver=driver, attachable=attachable)
