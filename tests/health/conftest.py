"""Fixtures for the health tests: a project on disk, a whole stack answered by respx
(see health_fakes.py), and Debian's real Prometheus and Alertmanager on 127.0.0.1."""

from __future__ import annotations

import secrets
from collections.abc import Iterator
from pathlib import Path

import pytest
import respx
from support.health_fakes import HEALTHY, FakeStack

from monctl import services
from monctl.project import COMPOSE_FILE, Project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    """A minimal stack directory; no Docker, no service URLs set yet."""
    root = tmp_path / "stack"
    (root / COMPOSE_FILE).parent.mkdir(parents=True)
    (root / COMPOSE_FILE).write_text("services: {}\n", encoding="utf-8")
    monkeypatch.setenv("DOCKER_HOST", f"unix://{tmp_path}/no-docker-here.sock")
    for service in services.SERVICES:
        monkeypatch.delenv(service.url_var, raising=False)
        monkeypatch.delenv(service.port_var, raising=False)
    monkeypatch.delenv("MONITORING_BIND_ADDRESS", raising=False)
    return Project(root=root, name=f"monctlunit{secrets.token_hex(3)}")


@pytest.fixture
def fake_stack(project: Project, monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeStack]:
    with respx.mock(assert_all_called=False, assert_all_mocked=True) as router:
        stack = FakeStack(router)
        for service, answers in HEALTHY.items():
            monkeypatch.setenv(services.get(service).url_var, stack.url(service))
            for path, response in answers.items():
                stack.answer(service, path, response)
        yield stack
