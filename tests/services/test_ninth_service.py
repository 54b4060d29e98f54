"""A fictional ninth service, declared in one place, handled by every operation.

"ledger" is declared below and nowhere else: its probes and how their answers
read, its configuration check, its reload and how that is confirmed, its data
and how it is copied. ``status``, ``health``, ``validate``, ``reload``,
``backup`` and ``restore`` then handle it with no other change. Its server is a
real HTTP server on 127.0.0.1; the runtime is ``support.fake_runtime`` (the
outer edge: no container is needed to show the operations' side of the seam).
"""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from click.testing import CliRunner
from support.fake_runtime import FakeRuntime

from monctl import services
from monctl.adapters.storage.local import LocalStorage
from monctl.backup import create, restore, verify
from monctl.config import reload, validate
from monctl.errors import ExitCode
from monctl.health import check
from monctl.lifecycle.status import status as stack_status
from monctl.project import COMPOSE_FILE, Project
from monctl.services.answers import Fetched, Role, Verdict
from monctl.services.model import (
    ConfigMount,
    DataVolume,
    HttpReload,
    Pause,
    Probe,
    ReloadMetrics,
    Service,
    ToolCheck,
)


def read_ready(f: Fetched, role: Role) -> Verdict:
    """Ledger's own readiness: 200 "open", or 425 while it replays its journal."""
    if f.status == 200 and f.text.strip() == "open":
        return Verdict("ok")
    if f.status == 425:
        return Verdict("not ready", f"replaying its journal ({f.excerpt()})")
    return Verdict("unhealthy", f"readiness answered {f.status}")


LEDGER = Service(
    name="ledger",
    title="Ledger",
    role="a fictional ninth service",
    container_port=7070,
    port_var="LEDGER_PORT",
    default_port=7070,
    image_var="LEDGER_IMAGE",
    liveness=Probe("/healthz"),
    readiness=Probe("/ready", read_ready),
    config=ConfigMount("config/ledger", "/etc/ledger"),
    checks=(
        ToolCheck(
            "config",
            ("ledgerctl", "check"),
            "config/ledger/*.yml",
            ran=("ledgerctl:",),
            file_arg="--file={}",
            gates_reload=True,
        ),
    ),
    reload=HttpReload("/-/apply", confirm=ReloadMetrics("ledger_config_ok", "ledger_config_ts")),
    data=DataVolume("ledger_data", "/var/lib/ledger", 4242, 4242, Pause()),
)


class LedgerServer:
    """The ninth service's HTTP side: health, readiness, reload and its metrics."""

    def __init__(self) -> None:
        self.ready = "open"
        self.applied = 0
        server = self

        class Handler(BaseHTTPRequestHandler):
            def _send(self, status: int, body: str) -> None:
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def do_GET(self) -> None:
                if self.path == "/healthz":
                    self._send(200, "alive")
                elif self.path == "/ready":
                    self._send(200 if server.ready == "open" else 425, server.ready)
                elif self.path == "/metrics":
                    self._send(
                        200, f"ledger_config_ok 1\nledger_config_ts {1000 + server.applied}\n"
                    )
                else:
                    self._send(404, "no")

            def do_POST(self) -> None:
                if self.path == "/-/apply":
                    server.applied += 1
                    self._send(200, "applied")
                else:
                    self._send(404, "no")

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()


@pytest.fixture
def ledger(monkeypatch: pytest.MonkeyPatch) -> Iterator[LedgerServer]:
    monkeypatch.setattr(services, "SERVICES", [*services.SERVICES, LEDGER])
    monkeypatch.delenv(LEDGER.url_var, raising=False)
    server = LedgerServer()
    yield server
    server.httpd.shutdown()
    server.httpd.server_close()


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "stack"
    (root / COMPOSE_FILE).parent.mkdir(parents=True)
    (root / COMPOSE_FILE).write_text("services: {}\n", encoding="utf-8")
    (root / "config" / "ledger").mkdir(parents=True)
    (root / "config" / "ledger" / "ledger.yml").write_text("books: 3\n", encoding="utf-8")
    return Project(root=root, name="ninth")


def ledgerctl(argv: list[str]) -> tuple[int, str]:
    """The service's own checker, as its image would run it: the file must say books."""
    (arg,) = [a for a in argv if a.startswith("--file=")]
    ok = arg == "--file=/etc/ledger/ledger.yml"
    return (0, "ledgerctl: ok") if ok else (1, f"ledgerctl: {arg}: line 1: no books")


@pytest.fixture
def runtime(ledger: LedgerServer) -> FakeRuntime:
    return FakeRuntime(
        urls={"ledger": ledger.url},
        files={"ledger": {"journal/0001": b"entry-1\n", "index": b"idx"}},
        tools={"ledgerctl": ledgerctl},
    )


def test_status_and_health_handle_it(
    project: Project, runtime: FakeRuntime, ledger: LedgerServer
) -> None:
    rows = {s.name: s for s in stack_status(project, runtime).services}
    assert rows["ledger"].state == "running" and rows["ledger"].urls == (ledger.url,)

    report = check.check(project, runtime, (LEDGER,))
    assert [(s.name, s.status, s.ready) for s in report.services] == [("ledger", "healthy", True)]
    ledger.ready = "replaying"
    report = check.check(project, runtime, (LEDGER,))
    row = report.services[0]
    assert (row.status, row.detail) == ("not ready", "replaying its journal (replaying)")
    assert report.exit_code == ExitCode.UNHEALTHY


def test_validate_and_reload_handle_it(
    project: Project, runtime: FakeRuntime, ledger: LedgerServer
) -> None:
    report = validate.validate(project, runtime, (LEDGER,), mode="docker")
    assert [(r.check, r.status) for r in report.results] == [("config", "valid")]
    assert runtime.log == ["one-off ledger ledgerctl check --file=/etc/ledger/ledger.yml"]

    reloaded = reload.reload(project, runtime, (LEDGER,))
    assert [(o.result, o.summary) for o in reloaded.outcomes] == [
        ("confirmed", "new configuration active (confirmed by metrics)")
    ]
    assert ledger.applied == 1
    assert "exec ledger ledgerctl check --file=/etc/ledger/ledger.yml" in runtime.log

    runtime.tools["ledgerctl"] = lambda argv: (1, "ledgerctl: ledger.yml: line 1: no books")
    refused = reload.reload(project, runtime, (LEDGER,))
    assert refused.exit_code == ExitCode.CONFIG and ledger.applied == 1


def test_backup_and_restore_handle_it(project: Project, runtime: FakeRuntime) -> None:
    storage = LocalStorage(project.root / "backups")
    report = create.run(project, runtime, storage, (LEDGER,))
    assert report.exit_code == ExitCode.OK, report.error
    assert [(s.service, s.status, s.strategy) for s in report.services] == [
        ("ledger", "ok", "pause")
    ]
    assert runtime.log[:2] == ["pause ledger", "resume ledger"]
    assert verify.verify(storage, report.backup_id).ok

    runtime.files["ledger"] = {"journal/0001": b"lost"}
    restored = restore.run(
        project, runtime, storage, report.backup_id, (), confirm=lambda question: True
    )
    assert [(s.service, s.status) for s in restored.services] == [("ledger", "restored")]
    assert runtime.files["ledger"] == {"journal/0001": b"entry-1\n", "index": b"idx"}


def test_the_command_line_accepts_it(
    project: Project, runtime: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monctl import runtime as runtime_module
    from monctl.cli import cli

    monkeypatch.setattr(runtime_module, "open_runtime", lambda p: runtime)
    argv = ["--project-dir", str(project.root), "health", "ledger", "--json"]
    result = CliRunner().invoke(cli, argv)
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert [s["name"] for s in doc["services"]] == ["ledger"]
