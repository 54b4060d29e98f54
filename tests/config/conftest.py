"""Fixtures for the reload/validate tests: a project dir, and Debian's real Prometheus and
Alertmanager on free 127.0.0.1 ports with their config files in the project's config/."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import free_ports, require_binary
from support.reload_servers import (
    ALERTMANAGER_CONFIG,
    PROMETHEUS_CONFIG,
    PROMETHEUS_RULES,
    Server,
)

from monctl import services
from monctl.project import COMPOSE_FILE, Project

ALERTMANAGER_ENV = ("SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY", "SMTP_PASSWORD")


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A minimal stack directory (the grafana dirs empty); nothing from the process env leaks in."""
    root = tmp_path / "stack"
    (root / COMPOSE_FILE).parent.mkdir(parents=True)
    (root / COMPOSE_FILE).write_text("services: {}\n", encoding="utf-8")
    (root / "config" / "grafana" / "dashboards").mkdir(parents=True)
    (root / "config" / "grafana" / "provisioning").mkdir(parents=True)
    for service in services.SERVICES:
        monkeypatch.delenv(service.url_var, raising=False)
    for name in (*ALERTMANAGER_ENV, "GRAFANA_ADMIN_USER", "GRAFANA_ADMIN_PASSWORD"):
        monkeypatch.delenv(name, raising=False)
    return Project(root=root, name="monctlreloadtest")


def _server(
    project: Project,
    tmp_path: Path,
    name: str,
    binaries: tuple[str, ...],
    config_text: Callable[[int], str],
    extra: list[str],
    start: bool,
) -> Iterator[Server]:
    path = require_binary(*binaries)
    work = project.root / "config" / name  # where the service's config mount points
    work.mkdir(parents=True)
    port = free_ports(1)[0]
    config = work / ("prometheus.yml" if name == "prometheus" else "alertmanager.yml")
    config.write_text(config_text(port), encoding="utf-8")
    args = [f"--config.file={config}", f"--web.listen-address=127.0.0.1:{port}", *extra]
    server = Server(path, tmp_path / f"{name}-run", port, config, args)
    server.dir.mkdir()
    try:
        if start:
            server.start()
        yield server
    finally:
        server.stop()


@pytest.fixture
def prometheus_files(project: Project, tmp_path: Path) -> Iterator[Server]:
    """Prometheus (not started) with --web.enable-lifecycle; tests may edit ``args`` first."""
    require_binary("promtool")
    work_data = tmp_path / "prometheus-data"

    def config(port: int) -> str:
        rules = project.root / "config" / "prometheus" / "rules.yml"
        rules.write_text(PROMETHEUS_RULES, encoding="utf-8")
        return PROMETHEUS_CONFIG.format(port=port)

    yield from _server(
        project,
        tmp_path,
        "prometheus",
        ("prometheus",),
        config,
        [f"--storage.tsdb.path={work_data}", "--web.enable-lifecycle"],
        start=False,
    )


@pytest.fixture
def prometheus(prometheus_files: Server) -> Server:
    prometheus_files.start()
    return prometheus_files


@pytest.fixture
def alertmanager(project: Project, tmp_path: Path) -> Iterator[Server]:
    require_binary("amtool")
    yield from _server(
        project,
        tmp_path,
        "alertmanager",
        ("alertmanager", "prometheus-alertmanager"),
        lambda port: ALERTMANAGER_CONFIG,
        [f"--storage.path={tmp_path / 'alertmanager-data'}", "--cluster.listen-address="],
        start=True,
    )
