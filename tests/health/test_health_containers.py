"""What the runtime says about containers, combined with the probes.

The engine is replaced at the runtime seam (``Runtime.states_async``, which
returns what the engine's inspection would); the end-to-end tests use the real engine.
"""

from __future__ import annotations

import json

import pytest
import respx
from support.health_fakes import HEALTHY

from monctl import services
from monctl.errors import ExitCode
from monctl.health import check as health
from monctl.project import Project
from monctl.runtime import PublishedPort, ServiceState
from monctl.runtime.compose import ComposeRuntime


def info(
    service: str, state: str = "running", health_: str | None = None, port: int = 0
) -> ServiceState:
    c = services.get(service)
    ports = (PublishedPort(c.container_port, "127.0.0.1", port),) if port else ()
    return ServiceState(service, f"x-{service}-1", "id", state, health_, None, "img", None, ports)


class Seen(ComposeRuntime):
    """The compose runtime, with the engine's answer given by the test."""

    found: dict[str, ServiceState] = {}

    async def states_async(self) -> tuple[dict[str, ServiceState] | None, str | None]:
        return self.found, None


@pytest.fixture
def containers(monkeypatch: pytest.MonkeyPatch) -> dict[str, ServiceState]:
    found: dict[str, ServiceState] = {}
    monkeypatch.setattr(Seen, "found", found)
    return found


def test_container_states(project: Project, containers: dict[str, ServiceState]) -> None:
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
        report = health.check(project, Seen(project), services.select(names))
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
    project: Project, containers: dict[str, ServiceState], monkeypatch: pytest.MonkeyPatch
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
        report = health.check(
            project, Seen(project), services.select(["cadvisor", "node-exporter"])
        )
    rows = {s.name: (s.status, s.state, s.health, s.url) for s in report.services}
    assert rows == {
        "cadvisor": ("healthy", "running", "healthy", "http://cadvisor.test"),
        "node-exporter": ("healthy", "running", None, "http://remote.test:9100"),
    }
