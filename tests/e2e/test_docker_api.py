"""The compose runtime's lean async view of the engine (health's) tells the same as
the SDK (everything else's), and an unreachable engine is a reason, not an error."""

from __future__ import annotations

import asyncio

import pytest
from support.engine import Stack

from monctl import services
from monctl.adapters import docker_api
from monctl.project import Project
from monctl.runtime.compose import ComposeRuntime

pytestmark = pytest.mark.docker


def test_async_inspection_matches_the_sdk(running_stack: Stack) -> None:
    runtime = ComposeRuntime(Project(running_stack.root, running_stack.project_name))
    fast, reason = asyncio.run(runtime.states_async())
    assert reason is None and fast is not None
    assert set(fast) == set(services.names())
    assert fast == runtime.states()
    prometheus = fast["prometheus"]
    assert prometheus.state == "running"
    assert [p.host_port for p in prometheus.ports] == [running_stack.port("prometheus")]


def test_unreachable_engine_is_a_reason_not_an_exception(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sock = tmp_path_factory.mktemp("nodocker") / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    runtime = ComposeRuntime(Project(sock.parent, "anything"))
    found, reason = asyncio.run(runtime.states_async())
    assert found is None
    assert reason is not None and "cannot reach the Docker daemon" in reason


def test_tls_hosts_are_left_to_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://docker.example.org:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    with pytest.raises(docker_api.Unsupported):
        asyncio.run(docker_api.inspect_containers(["com.docker.compose.project=anything"]))
