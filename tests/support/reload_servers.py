"""Debian's real Prometheus and Alertmanager on 127.0.0.1, with their config files in the
test project's config/ directory, and a runtime around them (``HostRuntime``) whose checks
run host promtool/amtool on the same files (in production they run inside the container:
tests/e2e/test_reload.py)."""

from __future__ import annotations

import contextlib
import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from monctl import runner
from monctl.project import Project
from monctl.runtime import ServiceState
from monctl.services.answers import metric_value
from monctl.services.model import Service

PROMETHEUS_CONFIG = """\
global:
  scrape_interval: 1s
  evaluation_interval: 1s
rule_files:
  - rules.yml
scrape_configs:
  - job_name: self
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""

PROMETHEUS_RULES = """\
groups:
  - name: original
    rules:
      - alert: OriginalAlert
        expr: up == 0
"""

ALERTMANAGER_CONFIG = """\
route:
  receiver: original
receivers:
  - name: original
"""


@dataclass
class Server:
    """One real server process; its files live in ``dir``."""

    binary: str
    dir: Path
    port: int
    config: Path
    args: list[str]
    process: subprocess.Popen[bytes] | None = None
    log: Path = field(init=False)

    def __post_init__(self) -> None:
        self.log = self.dir / "server.log"

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> None:
        with self.log.open("ab") as log:
            self.process = subprocess.Popen(
                [self.binary, *self.args], stdout=log, stderr=subprocess.STDOUT, cwd=self.dir
            )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            assert self.process.poll() is None, self.log.read_text(errors="replace")[-2000:]
            try:
                if httpx.get(f"{self.url}/-/ready", timeout=1).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        raise AssertionError(f"{self.binary} not ready:\n{self.log.read_text()[-2000:]}")

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def metric(self, name: str, labels: dict[str, str] | None = None) -> float | None:
        return metric_value(httpx.get(f"{self.url}/metrics", timeout=5).text, name, labels)

    def reload_requests(self) -> float:
        """How many requests reached /-/reload (0 when none ever did): both servers count
        them in <name>_http_request_duration_seconds_count{handler="/-/reload"}."""
        text = httpx.get(f"{self.url}/metrics", timeout=5).text
        for metric in (
            "prometheus_http_request_duration_seconds_count",
            "alertmanager_http_request_duration_seconds_count",
        ):
            value = metric_value(text, metric, {"handler": "/-/reload"})
            if value is not None:
                return value
        return 0.0


class HostRuntime:
    """A ``monctl.runtime.Runtime`` whose services are processes on this host: the outer
    edge for the reload tests (real Prometheus/Alertmanager binaries, servers answered by
    respx for the rest). ``exec`` runs the program on the host with the service's
    container config paths mapped to the project's files, as the mount would; restarts
    are recorded, not done. The production runtime runs in tests/e2e/test_reload.py."""

    kind = "host"

    def __init__(
        self,
        project: Project,
        urls: dict[str, str | None],
        *,
        not_running: tuple[str, ...] = (),
        started_env: dict[str, str] | None = None,
        checker: Callable[[Service, list[str]], tuple[int, str]] | None = None,
    ) -> None:
        self.project = project
        self.urls = urls
        self.not_running = not_running
        self.env = started_env
        self.checker = checker
        self.restarts: list[str] = []
        self.execs: list[list[str]] = []
        self.live_config = True

    def states(self) -> dict[str, ServiceState]:
        return {
            name: ServiceState(
                name, f"host-{name}", "id", "exited" if name in self.not_running else "running",
                None, None, "host", None,
            )
            for name in self.urls
        }  # fmt: skip

    async def states_async(self) -> tuple[dict[str, ServiceState] | None, str | None]:
        return self.states(), None

    def host_urls(self, service: Service, state: ServiceState | None) -> list[str]:
        url = self.urls.get(service.name)
        return [url] if url else []

    def exec(self, service: Service, argv: list[str]) -> tuple[int, str]:
        self.execs.append(argv)
        if self.checker is not None:
            return self.checker(service, argv)
        mount = service.config
        assert mount is not None
        inside = mount.container + "/"
        host = [
            str(self.project.root / mount.host / a[len(inside) :]) if a.startswith(inside) else a
            for a in argv
        ]
        result = runner.run(host)
        return result.returncode, result.stdout + result.stderr

    def check_runner(
        self, service: Service
    ) -> contextlib.AbstractContextManager[Callable[[Service, list[str]], tuple[int, str]]]:
        return contextlib.nullcontext(self.exec)

    def roll_out(self, service: Service, progress: object) -> bool:
        return False  # the files are read where they are, as under compose

    def restart(self, service: Service) -> None:
        self.restarts.append(service.name)

    def started_env(self, service: Service) -> dict[str, str] | None:
        return self.env
