"""How backup chooses what to do: every service with data has a copy method,
services without data are refused, and where DEST points by default."""

from __future__ import annotations

from pathlib import Path

import pytest

from monctl import services
from monctl.backup import create
from monctl.errors import ExitCode, UsageError
from monctl.project import Project
from monctl.repository import destination
from monctl.services.model import Pause, Snapshot


def test_every_service_with_data_has_a_copy_method() -> None:
    assert services.with_data(), "no service keeps data"
    for service in services.with_data():
        assert service.data is not None
        assert isinstance(service.data.copy, Snapshot | Pause)
        assert service.data.strategy in ("snapshot", "pause", "flush-pause")


def test_services_without_data_are_refused() -> None:
    with pytest.raises(UsageError, match="node-exporter") as caught:
        create.services_to_back_up(["grafana", "node-exporter"])
    assert caught.value.exit_code == ExitCode.USAGE
    assert create.services_to_back_up([]) == services.with_data()
    assert [s.name for s in create.services_to_back_up(["loki"])] == ["loki"]


def test_destination_defaults_and_relative_paths(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("MONCTL_BACKUP_DEST", raising=False)
    project = Project(root=tmp_path)
    assert destination(project, None) == str(tmp_path / "backups")
    assert destination(project, "rel/dir") == str(tmp_path / "rel" / "dir")
    assert destination(project, "/abs") == "/abs"
    assert destination(project, "s3://b/p") == "s3://b/p"
    project.env["MONCTL_BACKUP_DEST"] = "s3://bucket/nightly"
    assert destination(project, None) == "s3://bucket/nightly"
