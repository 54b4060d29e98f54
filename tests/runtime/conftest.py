"""Fixtures of the runtime tests: a stack directory for the FAKE Swarm engine
(``support.fake_swarm``), whose CLI runs are ``support.fake_swarm.monctl``."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import REPO
from support.fake_swarm import STACK

from monctl import services
from monctl.project import Project


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    for part in ("compose", "config"):
        shutil.copytree(REPO / part, tmp_path / part)
    (tmp_path / ".env").write_text("GRAFANA_ADMIN_PASSWORD=x\nMONCTL_RUNTIME=swarm\n")
    for s in services.SERVICES:
        monkeypatch.delenv(s.url_var, raising=False)
    return Project(root=tmp_path, name=STACK, env={"MONCTL_RUNTIME": "swarm"})


@pytest.fixture
def docker_host(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    monkeypatch.delenv("DOCKER_TLS_VERIFY", raising=False)
    yield
