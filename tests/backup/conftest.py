"""Fixtures of the backup tests that run the real pipeline on the fake runtime
(``support.fake_runtime``, the outer edge) and a real local repository."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from support import repo
from support.fake_runtime import FakeRuntime

from monctl import services
from monctl.adapters.storage.local import LocalStorage
from monctl.project import Project


class _Ready(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def rt(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRuntime]:
    """The fake runtime, with both fictional services declared and answering ready."""
    monkeypatch.setattr(services, "SERVICES", [*services.SERVICES, repo.TSDB, repo.LEDGER])
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    runtime = repo.runtime()
    url = f"http://127.0.0.1:{server.server_address[1]}"
    runtime.urls = {"tsdb": url, "ledger": url}
    for s in (repo.TSDB, repo.LEDGER):
        monkeypatch.delenv(s.url_var, raising=False)
    yield runtime
    server.shutdown()
    server.server_close()


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    return repo.project(tmp_path / "stack")


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "repo")
