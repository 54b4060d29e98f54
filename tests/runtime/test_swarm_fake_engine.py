"""The Swarm runtime against FAKE Swarm API answers: what one machine cannot show.

A multi-node swarm (a task missing or failing on one node, data on another node) and
an engine that is not a manager are served by ``support.fake_swarm.FakeEngine`` (a fake
engine on 127.0.0.1, answers shaped as the real API's; see that module). The real
single-node swarm is tests/e2e/test_swarm.py.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import REPO
from support.fake_swarm import STACK, FakeEngine, FakeServices, scenario

from monctl import services
from monctl.errors import ExitCode, OperationFailed
from monctl.health import check
from monctl.project import Project
from monctl.runtime.swarm import SwarmRuntime

NODES = ["node-a", "node-b", "node-c"]


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    for part in ("compose", "config"):
        shutil.copytree(REPO / part, tmp_path / part)
    (tmp_path / ".env").write_text("GRAFANA_ADMIN_PASSWORD=x\nMONCTL_RUNTIME=swarm\n")
    for s in services.SERVICES:
        monkeypatch.delenv(s.url_var, raising=False)
    return Project(root=tmp_path, name=STACK, env={"MONCTL_RUNTIME": "swarm"})


def monctl(project: Project, engine: FakeEngine, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONCTL_", "DOCKER_"))}
    env.update(DOCKER_HOST=engine.host, NO_COLOR="1", COLUMNS="200", PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "monctl", "--project-dir", str(project.root)]
    argv += ["--project-name", STACK, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)


@pytest.fixture
def docker_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    yield


def test_status_names_the_node_where_a_global_task_is_missing_or_failing(
    project: Project,
) -> None:
    world = scenario(
        NODES,
        missing={"node-exporter": "node-c"},
        failing={"cadvisor": ("node-b", "starting container failed: no such device")},
    )
    with FakeEngine(world) as engine:
        result = monctl(project, engine, "status", "--json")
    assert result.returncode == 0, result.stderr
    rows = {r["name"]: r for r in json.loads(result.stdout)["services"]}
    assert rows["node-exporter"]["tasks"] == "2/3"
    assert rows["node-exporter"]["problems"] == [
        "task on node node-c: missing (no task on this node)"
    ]
    assert rows["cadvisor"]["problems"] == [
        "task on node node-b: failed (starting container failed: no such device)"
    ]
    assert rows["promtail"]["tasks"] == "3/3" and rows["promtail"]["problems"] == []
    assert rows["prometheus"]["tasks"] == "1/1"
    assert rows["prometheus"]["image"] == "example/prometheus:1.0"  # the digest dropped


def _health(
    project: Project, engine: FakeEngine, monkeypatch: pytest.MonkeyPatch
) -> check.HealthReport:
    monkeypatch.setenv("DOCKER_HOST", engine.host)
    return check.check(project, SwarmRuntime(project), tuple(services.SERVICES), deep=True)


def test_health_says_global_service_missing_on_node(
    project: Project, monkeypatch: pytest.MonkeyPatch, docker_host: None
) -> None:
    with FakeServices(NODES) as http:
        world = scenario(NODES, missing={"node-exporter": "node-c"}, gateway_port=http.port)
        with FakeEngine(world) as engine:
            report = _health(project, engine, monkeypatch)
    rows = {r.name: r for r in report.services}
    assert rows["node-exporter"].status == "unhealthy"
    assert rows["node-exporter"].detail == "global service missing on node node-c"
    assert rows["cadvisor"].status == "healthy", rows["cadvisor"]
    assert rows["cadvisor"].detail == "up on 3 node(s), as Prometheus scrapes it"
    assert report.exit_code == ExitCode.UNHEALTHY


@pytest.mark.parametrize("count", [1, 50])
def test_health_costs_the_same_round_trips_whatever_the_number_of_nodes(
    count: int, project: Project, monkeypatch: pytest.MonkeyPatch, docker_host: None
) -> None:
    """One targets query, and one listing of each kind (info, services, tasks, nodes,
    gateways), for 1 node as for 50: counted at the fake engine and the fake services."""
    hostnames = [f"node-{i:02d}" for i in range(count)]
    with FakeServices(hostnames) as http, FakeEngine(scenario(hostnames, http.port)) as engine:
        report = _health(project, engine, monkeypatch)
        asked = dict(engine.requests)
    assert report.stack_ok, (report.services, report.checks)
    assert asked == {"/info": 1, "/services": 1, "/tasks": 1, "/nodes": 1, "/containers/json": 1}
    assert http.requests["/api/v1/targets"] == 1
    rows = {r.name: r for r in report.services}
    assert rows["node-exporter"].detail == f"up on {count} node(s), as Prometheus scrapes it"


def test_backup_of_data_on_another_node_names_the_node_and_how_to_reach_it(
    project: Project, monkeypatch: pytest.MonkeyPatch, docker_host: None
) -> None:
    """Loki's task (and its volume) runs on node-b; monctl talks to node-a."""
    with FakeServices(NODES) as http:
        world = scenario(NODES, single_on="node-b", gateway_port=http.port)
        with FakeEngine(world) as engine:
            monkeypatch.setenv("DOCKER_HOST", engine.host)
            runtime = SwarmRuntime(project)
            with pytest.raises(OperationFailed) as raised:
                runtime.read_data(services.get("loki"), "/loki")
            result = monctl(
                project, engine, "backup", "--service", "loki", "--to", str(project.root / "b")
            )
    message = raised.value.message
    assert "node-b" in message and "node-a" in message, message
    assert "DOCKER_HOST=ssh://USER@node-b" in (raised.value.hint or "")
    assert result.returncode == ExitCode.FAILED, result.stderr
    assert "runs on node node-b" in result.stdout + result.stderr


@pytest.mark.parametrize(
    ("state", "manager", "words"),
    [
        ("inactive", False, "docker swarm init"),
        ("active", False, "docker node promote"),
        ("locked", False, "docker swarm unlock"),
    ],
)
@pytest.mark.parametrize("command", ["status", "health", "up"])
def test_not_a_manager_says_so_and_exits_5(
    project: Project, state: str, manager: bool, words: str, command: str
) -> None:
    world = scenario(NODES)
    world.swarm_state, world.manager = state, manager
    with FakeEngine(world) as engine:
        result = monctl(project, engine, command, "--json")
    assert result.returncode == ExitCode.DOCKER, (result.stdout, result.stderr)
    error = json.loads(result.stdout)["error"]
    assert "manager" in error["message"] or "locked" in error["message"], error
    assert words in error["hint"], error


def test_runtime_comes_from_the_option_the_environment_or_env_file(project: Project) -> None:
    world = scenario(NODES)
    world.swarm_state, world.manager = "inactive", False
    with FakeEngine(world) as engine:
        from_env_file = monctl(project, engine, "status")  # .env: MONCTL_RUNTIME=swarm
        assert from_env_file.returncode == ExitCode.DOCKER, from_env_file.stderr
        (project.root / ".env").write_text("MONCTL_RUNTIME=kubernetes\n")
        bad = monctl(project, engine, "status")
        assert bad.returncode == ExitCode.CONFIG and "kubernetes" in bad.stderr
        overridden = monctl(project, engine, "--runtime", "swarm", "status")
        assert overridden.returncode == ExitCode.DOCKER
