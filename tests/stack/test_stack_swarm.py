"""The Swarm stack file monctl renders (compose file + compose/docker-compose.swarm.yml)
against the service declarations, and `docker stack config` (the docker CLI's own
schema check of a stack file; no engine needed) accepts it."""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest
import yaml
from support import REPO, require, require_binary

from monctl import services
from monctl.project import Project
from monctl.runtime import swarm_deploy, swarm_stack
from monctl.runtime.swarm import SwarmRuntime

pytestmark = pytest.mark.binaries

SECRETS = {
    "GRAFANA_ADMIN_PASSWORD": "grafana-secret-value",
    # The stack's credentials (monctl up writes them): compose refuses to load without.
    "MONITORING_AUTH_PASSWORD": "monitoring-auth-secret-value",
    "MONITORING_AUTH_WEB_CONFIG": "basic_auth_users: {monctl: '$2b$12$secret-hash-value'}",
    "SLACK_WEBHOOK_URL": "https://hooks.example.org/T0/B0/XXXX",
    "POSTGRES_PASSWORD": "",  # empty: no Swarm secret (Swarm refuses empty ones)
}


@pytest.fixture
def rendered(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> swarm_stack.Rendered:
    require_binary("docker")
    for part in ("compose", "config"):
        shutil.copytree(REPO / part, tmp_path / part)
    for name, value in SECRETS.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("MONCTL_DOCKER_GID", "998")
    project = Project(root=tmp_path, name="swarmtest")
    model = swarm_deploy.model(SwarmRuntime(project))
    placement = {s.name: s.placement for s in services.SERVICES}
    return swarm_stack.render(project, model, placement, ["node.role == manager"])


def test_every_service_follows_its_declaration(rendered: swarm_stack.Rendered) -> None:
    doc = rendered.document
    assert set(doc["services"]) == set(services.names())
    for service in services.SERVICES:
        svc = doc["services"][service.name]
        deploy = svc["deploy"]
        if service.placement == "every-node":
            assert deploy["mode"] == "global" and "placement" not in deploy
        else:
            assert deploy["mode"] == "replicated" and deploy["replicas"] == 1
            assert deploy["placement"]["constraints"] == ["node.role == manager"]
        assert deploy["endpoint_mode"] == "dnsrr"
        assert "ports" not in svc  # published by the loopback gateway, not the mesh
        for key in ("restart", "privileged", "devices", "pid", "depends_on", "tmpfs"):
            assert key not in svc, (service.name, key)
        if service.data:
            mounts = [(v.get("source"), v["target"]) for v in svc.get("volumes", [])]
            assert (service.data.volume, service.data.path) in mounts
            assert service.data.volume in doc["volumes"]


def test_images_are_the_compose_files(rendered: swarm_stack.Rendered) -> None:
    """One source of truth: the images (and their .env overrides) come from the compose file."""
    compose = yaml.safe_load((REPO / "compose" / "docker-compose.monitoring.yml").read_text())
    for service in services.SERVICES:
        default = compose["services"][service.name]["image"].split(":-", 1)[1].rstrip("}")
        assert rendered.images[service.name] == os.environ.get(service.image_var, default)


def test_configs_are_every_file_of_the_config_mounts_with_hashed_names(
    rendered: swarm_stack.Rendered,
) -> None:
    prometheus = {c.target: c for c in rendered.configs["prometheus"]}
    rules = sorted((REPO / "config" / "prometheus" / "rules").glob("*.yml"))
    for path in rules:
        assert f"/etc/prometheus/rules/{path.name}" in prometheus
    main = prometheus["/etc/prometheus/prometheus.yml"]
    assert main.path.name == "prometheus-swarm.yml" and main.template
    for files in rendered.configs.values():
        for c in files:
            assert len(c.name) <= swarm_stack.NAME_LIMIT and c.name.startswith("swarmtest_")
    names = [c.name for c in rendered.configs["prometheus"]]
    assert len(set(names)) == len(names)
    targets = {c.target for c in rendered.configs["alertmanager"]}
    assert "/etc/alertmanager/entrypoint.sh" in targets


def test_a_changed_file_gets_a_new_name_an_unchanged_one_keeps_its_own() -> None:
    a = swarm_stack.object_name("s", "prometheus/rules/x.yml", b"one")
    assert a == swarm_stack.object_name("s", "prometheus/rules/x.yml", b"one")
    assert a != swarm_stack.object_name("s", "prometheus/rules/x.yml", b"two")
    long = swarm_stack.object_name("s" * 40, "grafana/dashboards/" + "x" * 80, b"")
    assert len(long) <= swarm_stack.NAME_LIMIT


def test_secrets_are_files_not_environment(rendered: swarm_stack.Rendered) -> None:
    doc = rendered.document
    grafana_env = doc["services"]["grafana"]["environment"]
    assert "GF_SECURITY_ADMIN_PASSWORD" not in grafana_env
    assert grafana_env["GF_SECURITY_ADMIN_PASSWORD__FILE"] == "/run/secrets/grafana_admin_password"
    am_env = doc["services"]["alertmanager"]["environment"]
    assert not {"SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY", "SMTP_PASSWORD"} & set(am_env)
    am = {s.var: s for s in rendered.secrets["alertmanager"]}
    # the empty ones make no secret; the credentials are files too (issue 23)
    assert set(am) == {
        "SLACK_WEBHOOK_URL",
        "MONITORING_AUTH_PASSWORD",
        "MONITORING_AUTH_WEB_CONFIG",
    }
    assert am["SLACK_WEBHOOK_URL"].mode == 0o400 and am["SLACK_WEBHOOK_URL"].uid == "65534"
    # An empty secret: neither a secret nor the variable pointing at its file.
    pg_env = doc["services"]["postgres-exporter"]["environment"]
    assert "DATA_SOURCE_PASS_FILE" not in pg_env and not rendered.secrets["postgres-exporter"]
    text = yaml.safe_dump(doc)
    for value in SECRETS.values():
        assert not value or value not in text  # values only in the 0600 secret files


def test_docker_stack_config_accepts_the_written_file(
    rendered: swarm_stack.Rendered, tmp_path: Path
) -> None:
    docker = require_binary("docker")
    probe = subprocess.run([docker, "stack", "config", "--help"], capture_output=True, check=False)
    require(probe.returncode == 0, "this docker CLI has no `docker stack config` (CLI >= 23)")
    written = rendered.write(tmp_path, {k: v for k, v in SECRETS.items() if v})
    assert (os.stat(tmp_path / rendered.secrets["grafana"][0].name).st_mode & 0o777) == 0o600
    result = subprocess.run(
        [docker, "stack", "config", "--compose-file", str(written)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    out: dict[str, Any] = yaml.safe_load(result.stdout)
    assert out["services"]["node-exporter"]["deploy"]["mode"] == "global"
