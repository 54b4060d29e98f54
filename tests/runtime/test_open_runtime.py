"""Which runtime a command gets (``runtime/__init__.py::open_runtime``): from the option,
the environment or the .env file; an unknown name is a configuration error.

Served by ``support.fake_swarm.FakeEngine`` (a FAKE engine on 127.0.0.1, answers shaped as
the real API's: what one machine cannot show); the real single-node swarm is
tests/e2e/test_swarm.py.
"""

from __future__ import annotations

from support.fake_swarm import NODES, FakeEngine, monctl, scenario

from monctl.errors import ExitCode
from monctl.project import Project


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
