"""The Swarm runtime (``runtime/swarm.py``) on an engine that is not a manager: exit 5 and
the command that fixes it.

Served by ``support.fake_swarm.FakeEngine`` (a FAKE engine on 127.0.0.1, answers shaped as
the real API's: what one machine cannot show); the real single-node swarm is
tests/e2e/test_swarm.py.
"""

from __future__ import annotations

import json

import pytest
from support.fake_swarm import NODES, FakeEngine, monctl, scenario

from monctl.errors import ExitCode
from monctl.project import Project


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
