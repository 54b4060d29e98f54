"""What Docker says about containers, combined with the probes.

Docker is replaced at its boundary (``health._containers``, which returns what
``Docker.inspect_all`` would); the end-to-end tests use the real engine.
"""

from __future__ import annotations

import json

import pytest
import respx
from health_fakes import HEALTHY

from monctl import catalogue
from monctl.adapters.docker import ContainerInfo, PublishedPort
from monctl.errors import ExitCode
from monctl.ops import health
from monctl.project import Project


def info(
    service: str, state: str = "running", health_: str | None = None, port: int = 0
) -> ContainerInfo:
    c = catalogue.get(service)
    ports = (PublishedPort(c.container_port, "127.0.0.1", port),) if port else ()
    return ContainerInfo(service, f"x-{service}-1", "id", state, health_, None, "img", None, ports)


@pytest.fixture
def containers(monkeypatch: pytest.MonkeyPatch) -> dict[str, ContainerInfo]:
    found: dict[str, ContainerInfo] = {}

    async def fake(project: Project) -> tuple[dict[str, ContainerInfo], None]:
        return found, None

    monkeypatch.setattr(health, "_containers", fake)
    return found


def test_container_states(project: Project, containers: dict[str, ContainerInfo]) -> None:
    containers["prometheus"] = info("prometheus", "exited")
    containers["grafana"] = info("grafana", "running")  # its port is not published
    containers["loki"] = info("loki", "running", port=19400)
    containers["cadvisor"] = info("cadvisor", "running", "unhealthy", port=19401)
    with respx.mock(assert_all_mocked=True) as router:
        for path, answer in HEALTHY["loki"].items():
            router.get(f"http://127.0.0.1:19400{path}").mock(return_value=answer)
        router.get("http://127.0.0.1:19401/healthz").mock(
            return_value=HEALTHY["cadvisor"]["/healthz"]
        )
        names = ["prometheus", "grafana", "loki", "cadvisor", "node-exporter"]
        report = health.check(project, catalogue.select(names))
    rows = {s.name: (s.status, s.state, s.detail) for s in report.services}
    assert rows == {
        "prometheus": ("down", "exited", "container exited"),
        "grafana": ("down", "running", "container port 3000 is not published"),
        "loki": ("healthy", "running", ""),
        "cadvisor": ("unhealthy", "running", "Docker healthcheck reports unhealthy"),
        "node-exporter": ("down", "missing", "no container (not started?)"),
    }
    assert report.services[2].url == "http://127.0.0.1:19400"
    assert report.exit_code == ExitCode.UNHEALTHY
    assert report.docker is None
    assert json.loads(json.dumps(report.to_json(), default=str))["docker"] == "reachable"


def test_override_url_keeps_the_container_state(
    project: Project, containers: dict[str, ContainerInfo], monkeypatch: pytest.MonkeyPatch
) -> None:
    containers["cadvisor"] = info("cadvisor", "running", "healthy", port=19402)
    containers["node-exporter"] = info("node-exporter", "running", port=19403)
    monkeypatch.setenv("MONCTL_CADVISOR_URL", "http://cadvisor.test/")
    monkeypatch.setenv("MONCTL_NODE_EXPORTER_URL", "http://remote.test:9100")
    with respx.mock(assert_all_mocked=True) as router:
        router.get("http://cadvisor.test/healthz").mock(
            return_value=HEALTHY["cadvisor"]["/healthz"]
        )
        router.get("http://remote.test:9100/metrics").mock(
            return_value=HEALTHY["node-exporter"]["/metrics"]
        )
        report = health.check(project, catalogue.select(["cadvisor", "node-exporter"]))
    rows = {s.name: (s.status, s.state, s.health, s.url) for s in report.services}
    assert rows == {
        "cadvisor": ("healthy", "running", "healthy", "http://cadvisor.test"),
        "node-exporter": ("healthy", "running", None, "http://remote.test:9100"),
    }
