"""Debian's real Prometheus and Alertmanager on 127.0.0.1, with config files in a temp dir,
and a ``Stack`` for monctl.ops.reload around them whose validator is host promtool/amtool
run on the same files (in production it runs inside the container: tests/e2e/test_reload.py)."""

from __future__ import annotations

import subprocess
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from monctl import runner
from monctl.adapters.http import metric_value
from monctl.catalogue import Service
from monctl.ops.reload import Stack
from monctl.project import Project

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


def host_check(config: Path) -> Callable[[Service], tuple[int, str]]:
    """The catalogue's check command (``promtool check config /etc/...``), run on the host
    against ``config`` instead of the container path."""

    def check(service: Service) -> tuple[int, str]:
        result = runner.run([*service.validate[:-1], str(config)])
        return result.returncode, result.stdout + result.stderr

    return check


def make_stack(
    project: Project,
    urls: dict[str, str | None],
    check: Callable[[Service], tuple[int, str]] | None,
    *,
    started_env: Callable[[Service], dict[str, str] | None] | None = None,
) -> tuple[Stack, list[str]]:
    """A Stack around real servers; restarts are recorded, not done. Returns (stack, log)."""
    said: list[str] = []

    def restart(service: Service) -> None:
        said.append(f"restart {service.name}")

    stack = Stack(
        project=project,
        urls=urls,
        check=check,
        restart=restart,
        wait_ready=lambda s: None,
        started_env=started_env or (lambda s: None),
        say=said.append,
    )
    return stack, said
