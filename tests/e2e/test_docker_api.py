"""The lean async Docker view (health's) tells the same as the SDK (everything else's)."""

from __future__ import annotations

import asyncio

import pytest
from docker_support import Stack

from monctl import catalogue
from monctl.adapters import docker_api
from monctl.adapters.docker import Docker

pytestmark = pytest.mark.docker


def test_async_inspection_matches_the_sdk(running_stack: Stack) -> None:
    fast, reason = asyncio.run(docker_api.inspect_project(running_stack.project_name))
    assert reason is None and fast is not None
    sdk = Docker(running_stack.project_name).inspect_all()
    assert set(fast) == set(catalogue.NAMES)
    assert fast == sdk
    prometheus = fast["prometheus"]
    assert prometheus.state == "running"
    assert [p.host_port for p in prometheus.ports] == [running_stack.port("prometheus")]


def test_unreachable_engine_is_a_reason_not_an_exception(
    monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory
) -> None:
    sock = tmp_path_factory.mktemp("nodocker") / "docker.sock"
    monkeypatch.setenv("DOCKER_HOST", f"unix://{sock}")
    found, reason = asyncio.run(docker_api.inspect_project("anything"))
    assert found is None
    assert reason is not None and "cannot reach the Docker daemon" in reason


def test_tls_hosts_are_left_to_the_sdk(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DOCKER_HOST", "tcp://docker.example.org:2376")
    monkeypatch.setenv("DOCKER_TLS_VERIFY", "1")
    with pytest.raises(docker_api.Unsupported):
        asyncio.run(docker_api.inspect_project("anything"))
