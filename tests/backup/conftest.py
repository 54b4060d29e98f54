"""Fixtures of the backup tests that run the real pipeline on the fake runtime
(``support.fake_runtime``, the outer edge) and a real local repository."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from support import repo
from support.fake_runtime import FakeRuntime
from support.ping_server import RecordingServer

from monctl import services
from monctl.adapters.storage.local import LocalStorage
from monctl.project import Project


@pytest.fixture
def rt(monkeypatch: pytest.MonkeyPatch) -> Iterator[FakeRuntime]:
    """The fake runtime, with both fictional services declared and answering ready."""
    monkeypatch.setattr(services, "SERVICES", [*services.SERVICES, repo.TSDB, repo.LEDGER])
    with RecordingServer() as ready:  # answers 200 to every probe
        runtime = repo.runtime()
        runtime.urls = {"tsdb": ready.url, "ledger": ready.url}
        for s in (repo.TSDB, repo.LEDGER):
            monkeypatch.delenv(s.url_var, raising=False)
        yield runtime


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    return repo.project(tmp_path / "stack")


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "repo")
