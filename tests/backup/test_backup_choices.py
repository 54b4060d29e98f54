"""How backup chooses what to do: a strategy for every backup kind the catalogue uses,
services without data refused, and where DEST points by default."""

from __future__ import annotations

import typing
from pathlib import Path

import pytest

from monctl import catalogue
from monctl.catalogue import BackupKind
from monctl.cli.backup import destination
from monctl.errors import ConfigError
from monctl.ops import backup
from monctl.project import Project


def test_every_backup_kind_has_a_strategy() -> None:
    assert set(backup.STRATEGIES) == set(typing.get_args(BackupKind))
    for service in catalogue.BACKED_UP:
        assert service.data is not None and service.data.backup in backup.STRATEGIES


def test_services_without_data_are_refused() -> None:
    with pytest.raises(ConfigError, match="node-exporter"):
        backup.backed_up_services(["grafana", "node-exporter"])
    assert backup.backed_up_services([]) == catalogue.BACKED_UP
    assert [s.name for s in backup.backed_up_services(["loki"])] == ["loki"]


def test_destination_defaults_and_relative_paths(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    monkeypatch.delenv("MONCTL_BACKUP_DEST", raising=False)
    project = Project(root=tmp_path)
    assert destination(project, None) == str(tmp_path / "backups")
    assert destination(project, "rel/dir") == str(tmp_path / "rel" / "dir")
    assert destination(project, "/abs") == "/abs"
    assert destination(project, "s3://b/p") == "s3://b/p"
    project.env["MONCTL_BACKUP_DEST"] = "s3://bucket/nightly"
    assert destination(project, None) == "s3://bucket/nightly"
