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


MTIME = 1_790_000_000  # every fake file's modification time, unless ``mtimes`` says otherwise


@dataclass
class FakeRuntime:
    urls: dict[str, str]  # service -> base URL of a local server
    files: dict[str, dict[str, bytes]] = field(default_factory=dict)  # service -> path -> data
    tools: dict[str, Callable[[list[str]], tuple[int, str]]] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    kind: str = "fake"
    live_config: bool = True
    mtimes: dict[str, dict[str, int]] = field(default_factory=dict)  # service -> path -> time
    reads: list[str] = field(default_factory=list)  # every path read_data was asked for

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

    def _tree(self, service: Service, path: str) -> tuple[str, dict[str, bytes], set[str]]:
        """(the part of the data ``path`` names, its files, its directories)."""
        assert service.data is not None
        base = service.data.path.rstrip("/")
        sub = path.rstrip("/")[len(base) :].strip("/") if path.startswith(base) else ""
        files = {
            name: data
            for name, data in self.files[service.name].items()
            if not sub or name == sub or name.startswith(sub + "/")
        }
        dirs = {
            "/".join(name.split("/")[:i]) for name in files for i in range(1, name.count("/") + 1)
        }
        dirs = {d for d in dirs if not sub or d.startswith(sub + "/") or d == sub}
        return sub, files, dirs

    def read_data(self, service: Service, path: str) -> Iterator[bytes]:
        """The service's files under ``path`` as the archive API streams them: named
        after the basename of ``path`` (the data path, or a directory below it)."""
        self.reads.append(path)
        sub, files, dirs = self._tree(service, path)
        root = path.rstrip("/").rsplit("/", 1)[-1]

        def named(rel: str) -> str:
            inner = rel[len(sub) :].lstrip("/") if sub else rel
            return f"{root}/{inner}" if inner else root

        times = self.mtimes.get(service.name, {})
        buf = io.BytesIO()
        with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
            if sub not in files:
                top = tarfile.TarInfo(root)
                top.type, top.mode, top.mtime = tarfile.DIRTYPE, 0o755, MTIME
                tar.addfile(top)
            for name in sorted(dirs | set(files)):
                if sub and name == sub and name not in files:
                    continue
                info = tarfile.TarInfo(named(name))
                info.mtime = times.get(name, MTIME)
                if name in files:
                    info.size, info.mode = len(files[name]), 0o644
                    tar.addfile(info, io.BytesIO(files[name]))
                else:
                    info.type, info.mode = tarfile.DIRTYPE, 0o755
                    tar.addfile(info)
        data = buf.getvalue()
        return iter([data[i : i + 4096] for i in range(0, len(data), 4096)])

    def listing(self, service: Service) -> Callable[[list[str]], tuple[int, str]]:
        """A stand-in for ``find PATH ... -exec stat -c '%f %s %Y %n'``: the tool the
        declaration's listing runs, answering from the fake files."""

        def run(argv: list[str]) -> tuple[int, str]:
            path = argv[1].rstrip("/")
            sub, files, dirs = self._tree(service, path)
            times = self.mtimes.get(service.name, {})
            lines = []
            for name in sorted(dirs | set(files)):
                if name == sub:
                    continue
                full = f"{path}/{name[len(sub) :].lstrip('/')}" if sub else f"{path}/{name}"
                if name in files:
                    lines.append(f"81a4 {len(files[name])} {times.get(name, MTIME)} {full}")
                else:
                    lines.append(f"41ed 4096 {MTIME} {full}")
            return 0, "\n".join(lines) + "\n"

        return run

    def data_volume(self, service: Service) -> str:
        return f"fake_{service.name}"

    @contextlib.contextmanager
    def stage(self, service: Service) -> Iterator[FakeStage]:
        self.log.append(f"stage {service.name}")
        yield FakeStage(service.name)

    def swap_in(  # type: ignore[override]
        self,
        service: Service,
        stage: FakeStage,
        refill: Callable[[], Iterable[bytes]] | None = None,
    ) -> str:
        received = b"".join(refill()) if refill is not None else stage.received
        if refill is not None:
            self.log.append(f"refill {service.name}")
        with tarfile.open(fileobj=io.BytesIO(received)) as tar:
            members = tar.getmembers()
            self.files[service.name] = {
                m.name.split("/", 1)[1]: tar.extractfile(m).read()  # type: ignore[union-attr]
                for m in members
                if m.isfile()
            }
            self.mtimes[service.name] = {
                m.name.split("/", 1)[1]: int(m.mtime) for m in members if "/" in m.name
            }
        self.log.append(f"swap {service.name}")
        return "running"
