"""The throwaway copy of the stack a restore drill runs (monctl.runtime.throwaway), as
`docker compose config` resolves the real compose file with its override: its own
project name, no published port, no external network, internal networks only,
notification secrets blanked, never restarted, everything labelled."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from support import REPO, require_binary
from support.engine import render_env

from monctl import services
from monctl.adapters import compose_cli
from monctl.project import Project, parse_env
from monctl.runtime.throwaway import DRILL_LABEL, Throwaway

pytestmark = pytest.mark.binaries


@pytest.fixture
def stack(tmp_path: Path) -> Project:
    require_binary("docker")
    root = tmp_path / "stack"
    for part in ("compose", "config"):
        shutil.copytree(REPO / part, root / part)
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    env = render_env(example, {"SLACK_WEBHOOK_URL": "https://hooks.example.org/T0/B0/XYZsecret"})
    (root / ".env").write_text(env, encoding="utf-8")
    return Project(root=root, name="prod", env=parse_env(env))


def test_the_copy_publishes_nothing_and_cannot_leave_the_host(stack: Project) -> None:
    copy = Throwaway(stack)
    try:
        copy.write_override()
        assert copy.name.startswith("prod-drill-") and copy.project.root == stack.root
        result = compose_cli.run(copy.project, "config", "--format", "json", timeout=60)
        assert result.returncode == 0, result.stderr
        resolved = json.loads(result.stdout)
        assert copy.override.parent == stack.root / ".monctl"
    finally:
        copy.override.unlink(missing_ok=True)  # nothing else was made

    assert resolved["name"] == copy.name
    assert set(resolved["services"]) == set(services.names())
    for name, svc in resolved["services"].items():
        assert not svc.get("ports"), f"{name} publishes {svc.get('ports')}"
        assert svc["restart"] == "no", name
        assert svc["labels"][DRILL_LABEL] == "prod", name
        assert set(svc["networks"]) <= {"monitoring", "default"}, name
    networks = resolved["networks"]
    assert "app" not in networks, "the copy must not join the application's network"
    assert all(n.get("internal") is True for n in networks.values()), networks
    assert all(n["labels"][DRILL_LABEL] == "prod" for n in networks.values())
    am_env = resolved["services"]["alertmanager"]["environment"]
    assert am_env["SLACK_WEBHOOK_URL"] == "", "the copy's Alertmanager kept a secret"
    for volume in resolved["volumes"].values():
        assert volume["name"].startswith(copy.name + "_")
        assert volume["labels"][DRILL_LABEL] == "prod"
