"""The Swarm runtime end to end: the real `docker stack deploy` on a real single-node swarm.

The engine is made a swarm manager for this module (and left again when it was not
one: ``support.swarm.swarm_engine``). One stack, deployed with `monctl --runtime swarm
up` from the locally built images, goes through the whole life the issue asks for, in
order: ready (`health --wait`), `status --json` (a global service: one task per node),
Prometheus' targets found by dockerswarm_sd_configs, `reload prometheus` with a changed
rule, `backup` and `restore` (data back), `down` (volumes kept). Grafana, Loki, Promtail
and cAdvisor are stand-ins (tests/images/standin/); there is no application, so health
exits 4 (watched targets down) on a healthy stack, as on compose.

What one machine cannot show (a task missing on a second node, data on another node) is
in tests/runtime/ (test_swarm_state.py, test_swarm_data.py ...), against faked Swarm API answers.
"""

from __future__ import annotations

import base64
import json
import time
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from support import wait_for
from support.auth import Guarded, grafana_queries_prometheus
from support.engine import Result, docker
from support.sshd import sshd
from support.swarm import SwarmStack, make_swarm_stack, swarm_engine

from monctl import services

pytestmark = pytest.mark.docker

UP_TIMEOUT = 300
EVERY_NODE = tuple(s.name for s in services.SERVICES if s.placement == "every-node")
RULE = """
      - alert: MonctlSwarmReloadProbe
        expr: vector(1) == 0
        labels:
          severity: info
        annotations:
          summary: added by tests/e2e/test_swarm.py
"""


def explain(result: Result) -> str:
    return f"exit {result.code}\n--- stdout\n{result.out[-4000:]}\n--- stderr\n{result.err[-4000:]}"


def as_json(result: Result) -> dict[str, Any]:
    try:
        doc = json.loads(result.out)
    except ValueError:
        pytest.fail(f"stdout is not one JSON document:\n{explain(result)}")
    assert isinstance(doc, dict)
    return doc


# Set by the fixture: Prometheus and Alertmanager require the stack's credentials (read
# from .env at each request: a test rotates them).
AUTH: dict[str, Callable[[], tuple[str, str]]] = {}


def get_json(url: str) -> Any:
    user, password = AUTH["stack"]()
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    request = urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})
    with urllib.request.urlopen(request, timeout=10) as response:
        return json.loads(response.read())


@pytest.fixture(scope="module")
def swarm_stack(
    docker_engine: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SwarmStack]:
    with swarm_engine():
        stack = make_swarm_stack(tmp_path_factory.mktemp("swarm") / "stack")
        try:
            result = stack.monctl("up", "--timeout", str(UP_TIMEOUT), timeout=UP_TIMEOUT + 300)
            if result.code != 0:
                ps = docker("stack", "ps", stack.name, "--no-trunc").out
                pytest.fail(f"`monctl --runtime swarm up` failed:\n{explain(result)}\n{ps}")
            AUTH["stack"] = stack.stack.basic_auth
            yield stack
        finally:
            stack.teardown()


def test_up_then_health_wait_sees_every_service(swarm_stack: SwarmStack) -> None:
    result = swarm_stack.monctl("health", "--wait", "--timeout", "180", "--json", timeout=300)
    doc = as_json(result)
    assert result.code == 4, explain(result)  # healthy stack, absent application
    assert doc["stack_ok"] is True and doc["docker"] == "reachable"
    by_name = {s["name"]: s for s in doc["services"]}
    assert list(by_name) == list(services.names())
    for name, row in by_name.items():
        assert row["state"] == "running", row
        assert row["status"] in ("healthy", "degraded"), row
        if name in EVERY_NODE:
            # not published: judged by Prometheus' targets, one per node
            assert row["url"] is None and row["detail"].startswith("up on 1 node(s)"), row
        else:
            assert row["url"] == swarm_stack.url(name), row  # the loopback gateway


def test_status_json_counts_tasks_per_node(swarm_stack: SwarmStack) -> None:
    result = swarm_stack.monctl("status", "--json")
    doc = as_json(result)
    assert result.code == 0 and doc["runtime"] == "swarm", explain(result)
    nodes = len(docker("node", "ls", "-q").out.split())
    for row in doc["services"]:
        assert row["state"] == "running", row
        expected = f"{nodes}/{nodes}" if row["name"] in EVERY_NODE else "1/1"
        assert row["tasks"] == expected and row["problems"] == [], row
    mode = swarm_stack.service("node-exporter")["Spec"]["Mode"]
    assert "Global" in mode  # one task per node, also on nodes that join later


def test_published_on_loopback_only(swarm_stack: SwarmStack) -> None:
    """Nothing through Swarm's routing mesh; the gateways bind 127.0.0.1 only."""
    for name in services.names():
        endpoint = swarm_stack.service(name).get("Endpoint", {})
        assert not endpoint.get("Ports"), (name, endpoint)
    out = docker("ps", "--filter", f"label=org.monctl.gateway={swarm_stack.name}",
                 "--format", "{{.Ports}}").out  # fmt: skip
    bound = [p for line in out.splitlines() for p in line.split(", ") if p]
    assert bound and all(p.startswith("127.0.0.1:") for p in bound), out


def test_prometheus_finds_exporters_through_swarm_discovery(swarm_stack: SwarmStack) -> None:
    base = swarm_stack.url("prometheus")
    config = get_json(f"{base}/api/v1/status/config")["data"]["yaml"]
    hostname = docker("node", "inspect", "self", "--format", "{{.Description.Hostname}}").out
    for job in EVERY_NODE:
        block = config.split(f"job_name: {job}\n", 1)[1].split("job_name:", 1)[0]
        assert "dockerswarm_sd_configs" in block and "static_configs" not in block, block
        assert f"{swarm_stack.name}_{job}" in block  # the template filled in the stack

    def found() -> list[dict[str, Any]]:
        active = get_json(f"{base}/api/v1/targets?state=active")["data"]["activeTargets"]
        return [t for t in active if t["labels"]["job"] in EVERY_NODE and t["health"] == "up"]

    targets = wait_for(lambda: len(found()) >= len(EVERY_NODE) and found(), 90, "swarm targets")
    for target in targets:
        discovered = target["discoveredLabels"]
        assert discovered["__meta_dockerswarm_task_id"], target  # a task, not a static entry
        assert discovered["__meta_dockerswarm_service_name"].startswith(swarm_stack.name)
        assert target["labels"]["instance"] == hostname.strip() == target["labels"]["node"]


def test_secrets_are_swarm_secrets_not_environment(swarm_stack: SwarmStack) -> None:
    for name in ("grafana", "alertmanager"):
        container = swarm_stack.service(name)["Spec"]["TaskTemplate"]["ContainerSpec"]
        env = " ".join(container.get("Env") or [])
        assert "GF_SECURITY_ADMIN_PASSWORD=" not in env and "SLACK_WEBHOOK_URL" not in env
    grafana = swarm_stack.service("grafana")["Spec"]["TaskTemplate"]["ContainerSpec"]
    secrets = sorted(s["SecretName"] for s in grafana["Secrets"])
    assert len(secrets) == 2, secrets
    assert secrets[0].startswith(f"{swarm_stack.name}_grafana_admin"), secrets
    assert secrets[1].startswith(f"{swarm_stack.name}_monitoring_auth_password"), secrets
    # Grafana took its admin password from the secret: .env's is accepted by its admin API.
    password = swarm_stack.stack.env["GRAFANA_ADMIN_PASSWORD"]
    token = base64.b64encode(f"admin:{password}".encode()).decode()
    request = urllib.request.Request(
        f"{swarm_stack.url('grafana')}/api/admin/provisioning/dashboards/reload",
        method="POST",
        headers={"Authorization": f"Basic {token}"},
    )
    with urllib.request.urlopen(request, timeout=10) as response:
        assert response.status == 200


def _task_container(swarm_stack: SwarmStack, service: str) -> str:
    label = f"label=com.docker.swarm.service.name={swarm_stack.name}_{service}"
    (cid,) = docker("ps", "-q", "--filter", label).out.split()
    return cid


def test_prometheus_and_alertmanager_require_the_credentials(swarm_stack: SwarmStack) -> None:
    """The checks of tests/e2e/test_auth.py, on Swarm (the credentials are Swarm secrets)."""
    guarded = Guarded(
        swarm_stack.url("prometheus"), swarm_stack.url("alertmanager"), swarm_stack.stack.basic_auth
    )
    guarded.refused_everywhere()
    guarded.scrapes_itself_and_alertmanager()
    _, password = swarm_stack.stack.basic_auth()
    token = base64.b64encode(f"monctl:{password}".encode()).decode()
    names = [f"{swarm_stack.name}_{n}" for n in services.names()]
    specs = docker("service", "inspect", *names).out
    assert "monitoring_auth_password" in specs and password not in specs and token not in specs
    for name in ("prometheus", "alertmanager", "grafana"):
        cid = _task_container(swarm_stack, name)
        assert password not in docker("inspect", cid).out
        wait_for(
            lambda cid=cid: (
                docker("inspect", "-f", "{{.State.Health.Status}}", cid).out.strip() == "healthy"
            ),
            120,
            f"{name}'s healthcheck (config/auth/probe.sh)",
        )
    grafana_queries_prometheus(swarm_stack.root, _task_container(swarm_stack, "grafana"))
    guarded.alert_reaches_alertmanager()


def test_rotate_rolls_the_new_credentials_into_the_services(swarm_stack: SwarmStack) -> None:
    _, old = swarm_stack.stack.basic_auth()
    secrets_before = {
        s["SecretName"]
        for s in swarm_stack.service("grafana")["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]
    }
    result = swarm_stack.monctl("credentials", "rotate", "--json", timeout=900)
    assert result.code == 0, explain(result)
    assert as_json(result)["handed_over"] == ["prometheus", "alertmanager", "grafana"]
    _, new = swarm_stack.stack.basic_auth()
    assert new != old and old not in result.out + result.err and new not in result.out + result.err
    url = f"{swarm_stack.url('prometheus')}/api/v1/status/config"
    wait_for(
        lambda: httpx.get(url, auth=("monctl", new), timeout=10).status_code == 200,
        120,
        "Prometheus to take the new password",
    )
    assert httpx.get(url, auth=("monctl", old), timeout=10).status_code == 401
    am = f"{swarm_stack.url('alertmanager')}/api/v2/status"
    assert httpx.get(am, auth=("monctl", new), timeout=10).status_code == 200
    secrets_after = {
        s["SecretName"]
        for s in swarm_stack.service("grafana")["Spec"]["TaskTemplate"]["ContainerSpec"]["Secrets"]
    }
    assert secrets_after != secrets_before  # a new Swarm secret (named by its content)
    held = docker(
        "exec",
        _task_container(swarm_stack, "grafana"),
        "cat",
        "/run/secrets/monitoring_auth_password",
    )
    assert held.out == new


def _rules(swarm_stack: SwarmStack) -> str:
    return json.dumps(get_json(f"{swarm_stack.url('prometheus')}/api/v1/rules"))


def test_reload_prometheus_rolls_a_changed_rule_in(swarm_stack: SwarmStack) -> None:
    rules = swarm_stack.root / "config" / "prometheus" / "rules" / "stack.yml"
    original = rules.read_text(encoding="utf-8")
    task_before = swarm_stack.service("prometheus")["Version"]["Index"]
    # A broken rule is refused: nothing is rolled, the running configuration stays.
    rules.write_text(original + "      - alert: Broken\n        expr: rate(\n")
    refused = swarm_stack.monctl("reload", "prometheus", "--json")
    assert refused.code == 6, explain(refused)
    assert as_json(refused)["services"][0]["result"] == "refused"
    assert swarm_stack.service("prometheus")["Version"]["Index"] == task_before
    # A good one is rolled out and confirmed by Prometheus' reload metrics.
    rules.write_text(original + RULE, encoding="utf-8")
    result = swarm_stack.monctl("reload", "prometheus", "--json")
    assert result.code == 0, explain(result)
    outcome = as_json(result)["services"][0]
    assert outcome["result"] == "confirmed" and "metrics" in outcome["summary"], outcome
    assert "MonctlSwarmReloadProbe" in _rules(swarm_stack)
    again = swarm_stack.monctl("reload", "prometheus", "--json")
    assert as_json(again)["services"][0]["result"] == "unchanged", explain(again)


def _marker(swarm_stack: SwarmStack, script: str) -> Result:
    volume = f"{swarm_stack.name}_grafana_data"
    return docker("run", "--rm", "--user", "0", "--network", "none", "--entrypoint", "sh",
                  "-v", f"{volume}:/target", "monctl-test/base:local", "-c", script)  # fmt: skip


def test_backup_then_restore_brings_the_data_back(swarm_stack: SwarmStack) -> None:
    written = _marker(swarm_stack, "echo swarm-marker > /target/monctl-marker")
    assert written.code == 0, written.err
    before = time.time()
    backup = swarm_stack.monctl("backup", "--json", timeout=600)
    assert backup.code == 0, explain(backup)
    backup_id = as_json(backup)["id"]
    assert _marker(swarm_stack, "rm /target/monctl-marker").code == 0
    restore = swarm_stack.monctl("restore", backup_id, "--yes", "--json", timeout=900)
    assert restore.code == 0, explain(restore)
    states = {s["service"]: s["state"] for s in as_json(restore)["services"]}
    assert set(states.values()) == {"running, ready"}, states
    assert _marker(swarm_stack, "cat /target/monctl-marker").out.strip() == "swarm-marker"
    # Prometheus' TSDB came back from its snapshot: samples from before the backup.
    query = f"{swarm_stack.url('prometheus')}/api/v1/query?query=up&time={before:.0f}"
    assert get_json(query)["data"]["result"], "no samples from before the backup"


def test_a_corrupt_object_leaves_the_live_data_and_the_task_untouched(
    swarm_stack: SwarmStack, tmp_path: Path
) -> None:
    """Swarm restores through the engine (no direct path): the whole backup is checked
    first, so a damaged object (same size: only reading finds it) refuses the restore,
    exit 10, before the service is stopped or its volume touched."""
    from monctl.adapters.storage.local import LocalStorage
    from monctl.repository.manifest import read_manifest
    from monctl.repository.objects import object_key

    assert _marker(swarm_stack, "echo before-the-damage > /target/monctl-corrupt").code == 0
    dest = tmp_path / "repo"
    backup = swarm_stack.monctl("backup", "--service", "grafana", "--repo", str(dest), "--json")
    assert backup.code == 0, explain(backup)
    backup_id = as_json(backup)["id"]
    blobs = read_manifest(LocalStorage(dest), backup_id).files("grafana").blobs()
    target = dest / object_key(max(blobs, key=lambda b: b.ref.stored).ref.id)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.write_bytes(bytes(data))
    assert _marker(swarm_stack, "echo after-the-backup > /target/monctl-corrupt").code == 0
    task = swarm_stack.service("grafana")["Version"]["Index"]
    label = f"label=com.docker.swarm.service.name={swarm_stack.name}_grafana"
    containers = docker("ps", "-q", "--filter", label).out.split()
    restore = swarm_stack.monctl("restore", backup_id, "--repo", str(dest), "--yes", "--json")
    assert restore.code == 10, explain(restore)
    assert "corrupt" in restore.out + restore.err, explain(restore)
    assert _marker(swarm_stack, "cat /target/monctl-corrupt").out.strip() == "after-the-backup"
    assert swarm_stack.service("grafana")["Version"]["Index"] == task, "the service was updated"
    assert docker("ps", "-q", "--filter", label).out.split() == containers, "grafana restarted"
    assert _marker(swarm_stack, "rm /target/monctl-corrupt").code == 0


@pytest.mark.binaries
def test_every_command_works_over_docker_host_ssh(swarm_stack: SwarmStack, tmp_path: Path) -> None:
    """DOCKER_HOST=ssh://root@127.0.0.1:PORT through a real sshd: the engine over ssh, the
    services' loopback ports through ssh forwards (so not the URLs of the local host)."""
    with sshd(tmp_path / "ssh") as env:
        status = swarm_stack.monctl("status", "--json", env=env)
        assert status.code == 0, explain(status)
        assert {r["tasks"] for r in as_json(status)["services"]} == {"1/1"}
        health = swarm_stack.monctl("health", "--json", env=env)
        doc = as_json(health)
        assert health.code == 4 and doc["stack_ok"], explain(health)
        prometheus = next(s for s in doc["services"] if s["name"] == "prometheus")
        assert prometheus["url"] and prometheus["url"] != swarm_stack.url("prometheus")
        for args in (
            ("validate", "prometheus", "--json"),
            ("reload", "prometheus", "--json"),
            ("backup", "--service", "alertmanager", "--json"),
            ("up", "--json"),
        ):
            result = swarm_stack.monctl(*args, env=env)
            assert result.code in (0, 4), (args, explain(result))
        logs = swarm_stack.monctl("logs", "--tail", "1", "loki", env=env)
        assert logs.code == 0 and "loki" in logs.out + logs.err, explain(logs)


def test_down_removes_the_stack_and_keeps_volumes(swarm_stack: SwarmStack) -> None:
    result = swarm_stack.monctl("down", "--json")
    assert result.code == 0, explain(result)
    assert as_json(result)["volumes_deleted"] is False
    left = docker(
        "service", "ls", "-q", "--filter", f"label=com.docker.stack.namespace={swarm_stack.name}"
    )
    assert left.out.strip() == ""
    volumes = docker("volume", "ls", "-q", "--filter", f"name={swarm_stack.name}_").out.split()
    assert f"{swarm_stack.name}_prometheus_data" in volumes
    gone = swarm_stack.monctl("down", "--volumes", "--yes")
    assert gone.code == 0, explain(gone)
    assert not docker("volume", "ls", "-q", "--filter", f"name={swarm_stack.name}_").out.split()
