"""A runtime at the outer edge: services are in-memory records and local HTTP servers.

For tests of the operations' contract with ``monctl.runtime.Runtime`` where no
container is needed (the fictional ninth service): it records what operations
ask of it (pauses, restarts, programs run) and keeps each service's data as a
dict of files, served and received as real tar streams. The production runtime
is exercised against the real engine in tests/e2e.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field

from monctl.runtime import ServiceState
from monctl.services.model import Service


@dataclass
class FakeStage:
    service: str
    received: bytes = b""

    def write(self, chunks: Iterable[bytes]) -> None:
        self.received = b"".join(chunks)


@dataclass
class FakeRuntime:
    urls: dict[str, str]  # service -> base URL of a local server
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # service -> path -> data
    tools: dict[str, Callable[[list[str]], tuple[int, str]]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    kind: str = "fake"
    live_config: bool = True

    def _state(self, name: str) -> ServiceState:
        return ServiceState(name, f"fake-{name}", "id", "running", None, None, f"{name}:1", "1")

    def states(self) -> dict[str, ServiceState]:
        return {name: self._state(name) for name in self.urls}

    async def states_async(self) -> tuple[dict[str, ServiceState] | None, str | None]:
        return self.states(), None

    def host_urls(self, service: Service, state: ServiceState | None) -> list[str]:
        return [self.urls[service.name]] if service.name in self.urls else []

    def volumes(self) -> list[str]:
        return [f"fake_{name}" for name in self.files]

    def exec(self, service: Service, argv: list[str]) -> tuple[int, str]:
        self.log.append(f"exec {service.name} {' '.join(argv)}")
        return self.tools[argv[0]](argv)

    @contextlib.contextmanager
    def tool_runner(
        self, services: tuple[Service, ...]
    ) -> Iterator[Callable[..., tuple[int, str]]]:
        def run(service: Service, argv: list[str]) -> tuple[int, str]:
            self.log.append(f"one-off {service.name} {' '.join(argv)}")
            return self.tools[argv[0]](argv)

        yield run

    def check_runner(
        self, service: Service
    ) -> contextlib.AbstractContextManager[Callable[..., tuple[int, str]]]:
        return contextlib.nullcontext(lambda s, argv: self.exec(s, argv))

    def roll_out(self, service: Service, progress: object) -> bool:
        return False  # files are read where they are, as under compose

    def restart(self, service: Service) -> None:
        self.log.append(f"restart {service.name}")

    @contextlib.contextmanager
    def paused(self, service: Service) -> Iterator[None]:
        self.log.append(f"pause {service.name}")
        try:
            yield
        finally:
            self.log.append(f"resume {service.name}")

    def started_env(self, service: Service) -> dict[str, str] | None:
        return {}

    def read_data(self, service: Service, path: str) -> Iterator[bytes]:
        """The service's files as the archive API streams them: under basename(path)/."""
        root = path.rstrip("/").rsplit("/", 1)[-1]
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            top = tarfile.TarInfo(root)
            top.type = tarfile.DIRTYPE
            tar.addfile(top)
            for name, data in sorted(self.files[service.name].items()):
                info = tarfile.TarInfo(f"{root}/{name}")
                info.size = len(data)
                tar.addfile(info, io.BytesIO(data))
        data = buf.getvalue()
        return iter([data[i : i + 4096] for i in range(0, len(data), 4096)])

    def data_volume(self, service: Service) -> str:
        return f"fake_{service.name}"

    @contextlib.contextmanager
    def stage(self, service: Service) -> Iterator[FakeStage]:
        self.log.append(f"stage {service.name}")
        yield FakeStage(service.name)

    def swap_in(self, service: Service, stage: FakeStage) -> str:  # type: ignore[override]
        with tarfile.open(fileobj=io.BytesIO(stage.received)) as tar:
            self.files[service.name] = {
                m.name.split("/", 1)[1]: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in tar.getmembers()
                if m.isfile()
            }
        self.log.append(f"swap {service.name}")
        return "running"
