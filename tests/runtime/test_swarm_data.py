"""A Swarm service's data on another node (``runtime/swarm_data.py``): backup names the node
and how to reach it.

Served by ``support.fake_swarm.FakeEngine`` (a FAKE engine on 127.0.0.1, answers shaped as
the real API's: what one machine cannot show); the real single-node swarm is
tests/e2e/test_swarm.py.
"""

from __future__ import annotations

import pytest
from support.fake_swarm import NODES, FakeEngine, FakeServices, monctl, scenario

from monctl import services
from monctl.errors import ExitCode, OperationFailed
from monctl.project import Project
from monctl.runtime.swarm import SwarmRuntime


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
