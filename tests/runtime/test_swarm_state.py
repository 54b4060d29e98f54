"""The Swarm runtime's state (``runtime/swarm_state.py``) of a multi-node swarm: a task
missing or failing on one node, and health's round trips whatever the number of nodes.

Served by ``support.fake_swarm.FakeEngine`` (a FAKE engine on 127.0.0.1, answers shaped as
the real API's: what one machine cannot show); the real single-node swarm is
tests/e2e/test_swarm.py.
"""

from __future__ import annotations

import json

import pytest
from support.fake_swarm import NODES, FakeEngine, FakeServices, monctl, scenario

from monctl import services
from monctl.errors import ExitCode
from monctl.health import check
from monctl.project import Project
from monctl.runtime.swarm import SwarmRuntime


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
