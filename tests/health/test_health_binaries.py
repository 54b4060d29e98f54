"""Health against Debian's real Prometheus and Alertmanager, started on 127.0.0.1 here.

No fakes between monctl and the binaries: the readiness 503 is Prometheus
replaying a real WAL, the down target is a real refused scrape, the failed
reload is Prometheus/Alertmanager refusing a real bad config.
"""

from __future__ import annotations

import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
import pytest
from support import free_ports, require_binary

from monctl import services
from monctl.errors import ExitCode
from monctl.health import check as health
from monctl.health.report import HealthReport
from monctl.project import Project
from monctl.runtime.compose import ComposeRuntime

pytestmark = pytest.mark.binaries

PROMETHEUS = ("prometheus",)
BOTH = ("prometheus", "alertmanager")


@dataclass
class Proc:
    process: subprocess.Popen[bytes]
    url: str
    config: Path
    log: Path

    def reload(self) -> httpx.Response:
        return httpx.post(f"{self.url}/-/reload", timeout=10)


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is None:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


def _wait_serving(proc: Proc, path: str = "/-/ready", within: float = 30) -> None:
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if proc.process.poll() is not None:
            pytest.fail(f"{proc.url} exited: {proc.log.read_text()[-2000:]}", pytrace=False)
        try:
            if httpx.get(proc.url + path, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.05)
    pytest.fail(f"{proc.url} not ready within {within}s: {proc.log.read_text()[-2000:]}")


Start = Callable[..., Proc]


@pytest.fixture
def start_prometheus(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    binary = require_binary("prometheus")
    procs: list[Proc] = []

    def start(config: str, *, data: Path | None = None, wait: bool = True) -> Proc:
        (port,) = free_ports(1)
        work = tmp_path / f"prometheus-{port}"
        work.mkdir()
        cfg = work / "prometheus.yml"
        cfg.write_text(config.replace("SELF", f"127.0.0.1:{port}"), encoding="utf-8")
        log = work / "log"
        argv = [
            binary,
            f"--config.file={cfg}",
            f"--storage.tsdb.path={data or work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--web.enable-lifecycle",
        ]
        with log.open("wb") as fh:
            process = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=work)
        proc = Proc(process, f"http://127.0.0.1:{port}", cfg, log)
        procs.append(proc)
        monkeypatch.setenv("MONCTL_PROMETHEUS_URL", proc.url)
        if wait:
            _wait_serving(proc)
        return proc

    yield start
    for proc in procs:
        _stop(proc.process)


@pytest.fixture
def start_alertmanager(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Start]:
    binary = require_binary("alertmanager", "prometheus-alertmanager")
    procs: list[Proc] = []

    def start(config: str = AM_CONFIG) -> Proc:
        (port,) = free_ports(1)
        work = tmp_path / f"alertmanager-{port}"
        work.mkdir()
        cfg = work / "alertmanager.yml"
        cfg.write_text(config, encoding="utf-8")
        log = work / "log"
        argv = [
            binary,
            f"--config.file={cfg}",
            f"--storage.path={work / 'data'}",
            f"--web.listen-address=127.0.0.1:{port}",
            "--cluster.listen-address=",  # no gossip port: a single instance
        ]
        with log.open("wb") as fh:
            process = subprocess.Popen(argv, stdout=fh, stderr=subprocess.STDOUT, cwd=work)
        proc = Proc(process, f"http://127.0.0.1:{port}", cfg, log)
        procs.append(proc)
        monkeypatch.setenv("MONCTL_ALERTMANAGER_URL", proc.url)
        _wait_serving(proc)
        return proc

    yield start
    for proc in procs:
        _stop(proc.process)


AM_CONFIG = """\
route:
  receiver: blackhole
receivers:
  - name: blackhole
"""

SCRAPE_SELF = """\
global: {scrape_interval: 1s, evaluation_interval: 1s}
scrape_configs:
  - job_name: prometheus
    static_configs: [{targets: ['SELF']}]
"""


def check(project: Project, names: tuple[str, ...] = PROMETHEUS) -> HealthReport:
    return health.check(
        project, ComposeRuntime(project), services.select(list(names)), probe_timeout=5
    )


def poll(
    project: Project, until: Callable[[HealthReport], bool], names: tuple[str, ...] = PROMETHEUS
) -> HealthReport:
    """Check until ``until(report)``: Prometheus needs a scrape or two to know things."""
    deadline = time.monotonic() + 60
    while True:
        report = check(project, names)
        if until(report) or time.monotonic() > deadline:
            return report
        time.sleep(0.25)


def scrape_check(report: HealthReport) -> str:
    (found,) = [c for c in report.checks if c.name == "scrape targets"]
    return found.detail


# -- Prometheus starting: readiness 503 -------------------------------------------------


class _ManySeries(BaseHTTPRequestHandler):
    body = "".join(f'wal_filler{{i="{i}",pad="padpadpadpadpad"}} {i}\n' for i in range(150_000))

    def do_GET(self) -> None:
        data = self.body.encode()
        self.send_response(200)
        # Prometheus 3 refuses a scrape without a known Content-Type (no samples, no WAL)
        self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="session")
def big_wal(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A TSDB directory whose WAL takes Prometheus about a second to replay, so its
    not-ready phase is long enough to be seen. Made once by a real Prometheus."""
    binary = require_binary("prometheus")
    work = tmp_path_factory.mktemp("wal")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _ManySeries)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    (port,) = free_ports(1)
    cfg = work / "prometheus.yml"
    cfg.write_text(
        "global: {scrape_interval: 1s}\nscrape_configs:\n  - job_name: filler\n"
        f"    static_configs: [{{targets: ['127.0.0.1:{server.server_address[1]}']}}]\n"
    )
    argv = [binary, f"--config.file={cfg}", f"--storage.tsdb.path={work / 'data'}"]
    argv.append(f"--web.listen-address=127.0.0.1:{port}")
    process = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 90
        samples = 0.0
        while samples < 450_000 and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
            except httpx.HTTPError:
                continue
            samples = sum(
                float(line.rsplit(" ", 1)[1])
                for line in text.splitlines()
                if line.startswith("prometheus_tsdb_head_samples_appended_total")
            )
    finally:
        _stop(process)
        server.shutdown()
        server.server_close()
    return work / "data"


def test_readiness_503_while_prometheus_starts(
    project: Project, start_prometheus: Start, big_wal: Path, tmp_path: Path
) -> None:
    data = tmp_path / "copy"
    shutil.copytree(big_wal, data)
    start_prometheus(SCRAPE_SELF, data=data, wait=False)
    statuses: list[tuple[str, str]] = []
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        row = health.check(
            project, ComposeRuntime(project), (services.get("prometheus"),), deep=False
        ).services[0]
        if not statuses or statuses[-1] != (row.status, row.detail):
            statuses.append((row.status, row.detail))
        if row.status == "healthy":
            break
    phases = [status for status, _ in statuses]
    assert ("not ready", "starting (503 Service Unavailable)") in statuses, statuses
    assert phases[-1] == "healthy", statuses
    # refused before it listens, then not ready, then healthy: never backwards
    order = {"down": 0, "not ready": 1, "healthy": 2}
    assert [order[p] for p in phases] == sorted(order[p] for p in phases), statuses


# -- scrape targets ------------------------------------------------------------------------


def test_down_scrape_targets_named(project: Project, start_prometheus: Start) -> None:
    loki_port, backend_port = free_ports(2)  # nothing listens there
    config = SCRAPE_SELF + (
        f"  - job_name: loki\n    static_configs: [{{targets: ['127.0.0.1:{loki_port}']}}]\n"
        f"  - job_name: backend\n    static_configs: [{{targets: ['127.0.0.1:{backend_port}']}}]\n"
    )
    prom = start_prometheus(config)

    def scraped(r: HealthReport) -> bool:
        return "loki" in scrape_check(r) and any(t.state == "down" for t in r.targets)

    report = poll(project, scraped)
    assert not report.stack_ok and report.exit_code == ExitCode.UNHEALTHY
    detail = scrape_check(report)
    assert detail.startswith(f"down: loki (127.0.0.1:{loki_port}: ")
    assert "connection refused" in detail
    assert "backend" not in detail  # the application is not part of the stack
    backend = f"127.0.0.1:{backend_port}"
    (target,) = report.targets
    assert (target.name, target.state, target.instance) == ("backend", "down", backend)

    # Drop the loki job: the stack is fine again, only the watched backend is down.
    backend_only = f"  - job_name: backend\n    static_configs: [{{targets: ['{backend}']}}]\n"
    self_target = prom.url.removeprefix("http://")
    prom.config.write_text(SCRAPE_SELF.replace("SELF", self_target) + backend_only)
    assert prom.reload().status_code == 200
    # After a reload the self target starts again as "not scraped yet": wait
    # until Prometheus has scraped it under the new configuration.
    report = poll(
        project,
        lambda r: r.stack_ok and not r.targets_ok and "not scraped" not in scrape_check(r),
    )
    assert report.exit_code == ExitCode.TARGETS_DOWN, report.summary()
    assert scrape_check(report) == "1 stack targets up"


# -- reloads and rules ---------------------------------------------------------------------


def test_failed_prometheus_reload(project: Project, start_prometheus: Start) -> None:
    prom = start_prometheus(SCRAPE_SELF)
    assert check(project).exit_code == ExitCode.OK
    prom.config.write_text("scrape_configs:\n  - job_name: [this is not a name\n")
    answer = prom.reload()
    assert answer.status_code == 500 and "failed to reload config" in answer.text
    report = check(project)
    (reload,) = [c for c in report.checks if c.name == "config reload"]
    assert (reload.ok, reload.detail) == (False, "last reload FAILED: still running the old config")
    assert report.services[0].status == "healthy"  # it still runs, on the old config
    assert report.exit_code == ExitCode.UNHEALTHY


def test_failing_rule_named(project: Project, start_prometheus: Start, tmp_path: Path) -> None:
    rules = tmp_path / "rules.yml"
    # Two `up` series collapse to one label set once the rule's labels are applied:
    # Prometheus fails that evaluation every time.
    rules.write_text(
        "groups:\n  - name: broken\n    rules:\n      - record: collapsed_up\n"
        "        expr: up\n        labels: {job: same, instance: same}\n"
    )
    other = free_ports(1)[0]
    config = SCRAPE_SELF.replace("global:", f"rule_files: ['{rules}']\nglobal:") + (
        f"  - job_name: node-exporter\n    static_configs: [{{targets: ['127.0.0.1:{other}']}}]\n"
    )
    start_prometheus(config)

    def rule_failed(r: HealthReport) -> bool:
        return any(c.name == "rule evaluation" and not c.ok for c in r.checks)

    report = poll(project, rule_failed)
    (rule,) = [c for c in report.checks if c.name == "rule evaluation"]
    assert rule.detail.startswith("collapsed_up: "), rule.detail
    assert "same labelset" in rule.detail
    assert report.exit_code == ExitCode.UNHEALTHY


def test_alertmanager_reload_and_alerts(
    project: Project, start_prometheus: Start, start_alertmanager: Start
) -> None:
    start_prometheus(SCRAPE_SELF)
    am = start_alertmanager()
    report = check(project, BOTH)
    assert report.exit_code == ExitCode.OK, report.summary()
    assert [(c.service, c.name, c.ok) for c in report.checks if c.service == "alertmanager"] == [
        ("alertmanager", "config reload", True),
        ("alertmanager", "notifications", True),
    ]
    assert report.alerts == {"critical": 0, "warning": 0, "info": 0}

    alerts = [
        {"labels": {"alertname": "BackendDown", "severity": "critical"}},
        {"labels": {"alertname": "DiskFilling", "severity": "warning"}},
        {"labels": {"alertname": "DiskFilling2", "severity": "warning"}},
    ]
    assert httpx.post(f"{am.url}/api/v2/alerts", json=alerts, timeout=10).status_code == 200
    report = check(project, BOTH)
    assert report.alerts == {"critical": 1, "warning": 2, "info": 0}

    am.config.write_text("route: {receiver: nowhere}\nreceivers: []\n")
    answer = am.reload()
    assert answer.status_code == 500
    report = check(project, BOTH)
    (reload,) = [
        c for c in report.checks if c.service == "alertmanager" and c.name == "config reload"
    ]
    assert not reload.ok and report.exit_code == ExitCode.UNHEALTHY
    assert "alertmanager config reload" in report.summary()
