"""`wait`: polling until ready, against real local HTTP servers that become ready late."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from support import Recorded

from monctl import services
from monctl.errors import ExitCode
from monctl.health import check as health
from monctl.project import Project
from monctl.runtime.compose import ComposeRuntime

Answer = Callable[[str], tuple[int, bytes]]


class Server:
    """A real HTTP server on 127.0.0.1 answering GETs with ``answer(path)``."""

    def __init__(self, answer: Answer) -> None:
        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                status, body = answer(self.path)
                self.send_response(status)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


class LateLoki:
    """Loki-shaped: /metrics 200; /ready 503 for the first ``ready_after`` requests."""

    def __init__(self, ready_after: int) -> None:
        self.ready_after = ready_after
        self.ready_calls = 0

    def __call__(self, path: str) -> tuple[int, bytes]:
        if path != "/ready":
            return 200, b"loki_build_info 1\n"
        self.ready_calls += 1
        if self.ready_calls <= self.ready_after:
            return 503, b"Ingester not ready: waiting for 15s after being ready"
        return 200, b"ready"


@pytest.fixture
def serve(project: Project) -> Iterator[Callable[[Answer], Server]]:
    servers: list[Server] = []

    def start(answer: Answer) -> Server:
        servers.append(Server(answer))
        return servers[-1]

    yield start
    for server in servers:
        server.close()


def test_wait_until_ready(
    project: Project, serve: Callable[[Answer], Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONCTL_LOKI_URL", serve(LateLoki(ready_after=3)).url)
    seen = Recorded()
    report = health.wait(
        project,
        ComposeRuntime(project),
        (services.get("loki"),),
        timeout=60,
        interval=0.05,
        progress=seen,
    )
    assert report.ok and report.exit_code == ExitCode.OK
    rounds = [text.split(": ", 1)[1] for text in seen.statuses]
    assert rounds == ["UNHEALTHY: loki not ready (exit 3)"] * 3 + [
        "HEALTHY: 1 services ready (exit 0)"
    ]
    assert seen.statuses[-1].endswith(report.summary())


def test_wait_gives_up_with_the_last_report(
    project: Project, serve: Callable[[Answer], Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MONCTL_LOKI_URL", serve(LateLoki(ready_after=10**9)).url)
    seen = Recorded()
    report = health.wait(
        project,
        ComposeRuntime(project),
        (services.get("loki"),),
        timeout=2,
        interval=0.05,
        progress=seen,
    )
    assert len(seen.statuses) >= 2  # it did poll
    assert seen.statuses[-1].endswith(report.summary())
    assert report.services[0].status == "not ready"
    assert report.exit_code == ExitCode.UNHEALTHY


def test_a_watched_target_holds_wait_only_when_strict(
    project: Project, serve: Callable[[Answer], Server], monkeypatch: pytest.MonkeyPatch
) -> None:
    pg_zero = serve(lambda path: (200, b"# TYPE pg_up gauge\npg_up 0\n"))
    monkeypatch.setenv("MONCTL_POSTGRES_EXPORTER_URL", pg_zero.url)
    exporter = (services.get("postgres-exporter"),)
    runtime = ComposeRuntime(project)
    seen = Recorded()
    report = health.wait(project, runtime, exporter, timeout=30, interval=0.05, progress=seen)
    assert len(seen.statuses) == 1 and report.exit_code == ExitCode.TARGETS_DOWN
    seen = Recorded()
    report = health.wait(
        project, runtime, exporter, timeout=2, interval=0.05, progress=seen, strict=True
    )
    assert len(seen.statuses) >= 2 and report.exit_code == ExitCode.UNHEALTHY
