"""How the stack runs: the one interface every operation uses to touch it.

Operations (up, health, reload, backup, restore ...) never talk to Docker
themselves: they ask a ``Runtime`` for a service's state, its host URLs, to
start, stop or pause it, to run a program in it, to stream its data out, or to
replace its data. ``compose.py`` runs the stack as a compose project on one
engine (the first implementation); a second way to run it implements the same
methods. ``open_runtime`` picks one for a project.

Services are ``monctl.services.model.Service`` declarations; a runtime finds
their containers by its own means (compose labels, Swarm service names).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Protocol

from monctl.runtime.state import NodeTask, PublishedPort, ServiceState

if TYPE_CHECKING:  # pragma: no cover
    from monctl.project import Project
    from monctl.result import Progress
    from monctl.services.model import Service

__all__ = ["NodeTask", "PublishedPort", "Runtime", "ServiceState", "Stage", "open_runtime"]


class Stage(Protocol):
    """A fresh, empty copy of a service's data volume that a restore fills
    before it replaces the live one (see ``Runtime.stage``)."""

    def write(self, chunks: Iterable[bytes]) -> None:
        """Extract a tar stream into the volume. Member names start with the
        basename of the data path ("prometheus/..."); owners, modes and times
        come from the tar headers. Raise when the stream raises (an integrity
        failure): the stage is then discarded by ``stage``'s exit."""


class Runtime(Protocol):
    kind: str  # "compose", "swarm"
    # True when the services read their configuration files where they are on disk
    # (bind mounts: the service's own reload applies a change); False when they hold
    # copies (Swarm configs and secrets: ``roll_out`` puts a change in).
    live_config: bool

    # -- looking ---------------------------------------------------------------------
    def states(self) -> dict[str, ServiceState]:
        """Every service that exists, by name. Raise DockerUnavailable."""

    async def states_async(self) -> tuple[dict[str, ServiceState] | None, str | None]:
        """``states`` for the health check's event loop: (states, None), or
        (None, why the engine could not be asked). Never raises for that."""

    def host_urls(self, service: Service, state: ServiceState | None) -> list[str]:
        """Where ``service`` answers from this host (published ports), may be empty."""

    def volumes(self) -> list[str]:
        """The stack's data volumes (what `down --volumes` deletes)."""

    # -- the whole stack -------------------------------------------------------------
    def up(self, services: tuple[Service, ...], progress: Progress) -> None:
        """Start ``services`` (every one when empty). Raise StartFailed, ConfigError ..."""

    def down(self, volumes: bool) -> None:
        """Stop and remove the stack (with ``volumes``: its data too)."""

    def logs(self, services: tuple[Service, ...], follow: bool, tail: str | None) -> int:
        """Print the services' logs on the terminal; the exit status of the log tool."""

    # -- one service -----------------------------------------------------------------
    def exec(self, service: Service, argv: list[str]) -> tuple[int, str]:
        """Run ``argv`` inside the service's running container: (exit code, output)."""

    def tool_runner(self, services: tuple[Service, ...]) -> AbstractContextManager[ToolRunner]:
        """A way to run a program of a service's image in a one-off container with
        the service's configuration mounted, without a running stack (validate)."""

    def check_runner(self, service: Service) -> AbstractContextManager[ToolRunner]:
        """Where reload runs the checks that gate it, over the files as they are on
        disk now: inside the running container when it mounts them (compose), else
        in a one-off container holding them (Swarm, whose tasks hold copies)."""

    def roll_out(self, service: Service, progress: Progress) -> bool:
        """Put the configuration and secrets now on disk (and in .env) into the
        running service, when it holds copies (``live_config`` False): True when it
        was rolled onto them (Swarm replaced its tasks), False when nothing changed."""

    def restart(self, service: Service) -> None: ...

    def paused(self, service: Service) -> AbstractContextManager[None]:
        """Pause the service for the block; it is always resumed."""

    def started_env(self, service: Service) -> dict[str, str] | None:
        """The environment the service's container was created with (values may be
        secrets: compare, never print); None when it cannot be told."""

    # -- data ------------------------------------------------------------------------
    def read_data(self, service: Service, path: str) -> Iterator[bytes]:
        """``path`` of the service's container as a tar stream (closable generator:
        close it before resuming a paused service)."""

    def data_volume(self, service: Service) -> str:
        """The name of the volume that holds the service's data (for messages)."""

    def stage(self, service: Service) -> AbstractContextManager[Stage]:
        """A fresh volume for the service's data, written through a container of the
        service's own image that never starts (no shell or helper image needed).
        Removed on exit unless ``swap_in`` took it."""

    def swap_in(
        self, service: Service, stage: Stage, refill: Callable[[], Iterable[bytes]] | None = None
    ) -> str:
        """Stop the service, make the staged data its data volume, start it again
        (always, also when the swap fails). Returns the service's state after.
        ``refill``: the tar stream the stage was written from, once more; writing it
        straight into the new volume is cheaper than copying the staged volume
        through the engine, which is done instead when ``refill`` fails."""


class ToolRunner(Protocol):
    def __call__(self, service: Service, argv: list[str]) -> tuple[int, str]:
        """(exit status, combined output) of ``argv`` run in the service's image."""


def open_runtime(project: Project) -> Runtime:
    """The runtime that runs ``project``'s stack (its ``runtime`` setting). Nothing
    is contacted here: the engine is asked on first use (DockerUnavailable then)."""
    import importlib

    from monctl import RUNTIME_CLASSES

    module, name = RUNTIME_CLASSES[project.runtime].split(":")
    runtime: Runtime = getattr(importlib.import_module(module), name)(project)
    return runtime
