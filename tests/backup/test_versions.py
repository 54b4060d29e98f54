"""Restore refuses data written by a newer major.minor than the service now runs (a
format the older release may not read), unless --allow-downgrade; nothing is touched
when it refuses."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.fake_runtime import FakeRuntime
from support.ping_server import RecordingServer

from monctl import services
from monctl.adapters.storage.local import LocalStorage
from monctl.backup import create, restore
from monctl.errors import ConfigError, ExitCode
from monctl.project import COMPOSE_FILE, Project
from monctl.repository import versions
from monctl.repository.manifest import read_manifest, write_manifest
from monctl.runtime import ServiceState
from monctl.services.model import DataVolume, Pause, Probe, Service

ARCHIVE = Service(
    name="archive",
    title="Archive",
    role="a fictional service with data",
    container_port=7272,
    port_var="ARCHIVE_PORT",
    default_port=7272,
    image_var="ARCHIVE_IMAGE",
    liveness=Probe("/healthz"),
    data=DataVolume("archive_data", "/var/lib/archive", 1000, 1000, Pause()),
)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("v2.42.0", (2, 42)),
        ("13.2.3", (13, 2)),
        ("2.42.0+ds", (2, 42)),
        ("3.7", (3, 7)),
        ("v0.25.0-rc.1", (0, 25)),
        ("latest", None),
        ("local", None),
        ("1", None),
        ("2.x", None),
        (None, None),
    ],
)
def test_major_minor(text: str | None, expected: tuple[int, int] | None) -> None:
    assert versions.major_minor(text) == expected


class VersionedRuntime(FakeRuntime):
    """The fake runtime, its service running a chosen version."""

    running = "v2.42.0"

    def states(self) -> dict[str, ServiceState]:
        return {
            name: dataclasses.replace(state, version=self.running, image=f"x/{name}:{self.running}")
            for name, state in super().states().items()
        }


@pytest.fixture
def stack(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[Project, VersionedRuntime]]:
    from monctl import runtime as runtime_module

    monkeypatch.setattr(services, "SERVICES", [ARCHIVE])
    monkeypatch.delenv(ARCHIVE.url_var, raising=False)
    root = tmp_path / "stack"
    (root / COMPOSE_FILE).parent.mkdir(parents=True)
    (root / COMPOSE_FILE).write_text("services: {}\n", encoding="utf-8")
    project = Project(root=root, name="versions")
    with RecordingServer() as live:
        runtime = VersionedRuntime(urls={"archive": live.url}, files={"archive": {"db": b"v1"}})
        monkeypatch.setattr(runtime_module, "open_runtime", lambda p: runtime)
        yield project, runtime


def backed_up(
    project: Project, runtime: VersionedRuntime, version: str
) -> tuple[LocalStorage, str]:
    """A backup written by ``version`` of the service."""
    runtime.running = version
    storage = LocalStorage(project.root / "backups")
    report = create.run(project, runtime, storage, (ARCHIVE,))
    assert report.ok, report.error
    assert read_manifest(storage, report.backup_id).services["archive"].version == version
    return storage, report.backup_id


def test_an_older_minor_is_refused_before_anything_is_touched(
    stack: tuple[Project, VersionedRuntime],
) -> None:
    project, runtime = stack
    storage, backup_id = backed_up(project, runtime, "v2.45.1")
    runtime.running = "v2.42.0"
    runtime.log.clear()
    with pytest.raises(ConfigError) as refused:
        restore.run(project, runtime, storage, backup_id, (), confirm=lambda q: True)
    message = refused.value.message
    assert "archive: backup made by v2.45.1, the stack runs v2.42.0" in message
    assert "--allow-downgrade" in (refused.value.hint or "")
    assert refused.value.exit_code == ExitCode.CONFIG
    assert runtime.log == [], "a refused restore touched the service"


def test_allow_downgrade_restores_and_a_newer_or_patch_version_needs_nothing(
    stack: tuple[Project, VersionedRuntime],
) -> None:
    project, runtime = stack
    storage, backup_id = backed_up(project, runtime, "v2.45.1")
    runtime.running = "v2.42.0"
    report = restore.run(
        project, runtime, storage, backup_id, (), confirm=lambda q: True, allow_downgrade=True
    )
    assert [s.status for s in report.services] == ["restored"]
    for running in ("v2.45.0", "v2.46.0", "v3.0.0", "latest"):  # patch, newer, unknown
        runtime.running = running
        report = restore.run(project, runtime, storage, backup_id, (), confirm=lambda q: True)
        assert [s.status for s in report.services] == ["restored"], running


def test_an_unknown_recorded_version_is_not_compared(
    stack: tuple[Project, VersionedRuntime],
) -> None:
    project, runtime = stack
    storage, backup_id = backed_up(project, runtime, "v9.9.9")
    manifest = read_manifest(storage, backup_id)
    entry = dataclasses.replace(manifest.services["archive"], version=None)
    write_manifest(storage, dataclasses.replace(manifest, services={"archive": entry}))
    runtime.running = "v1.0.0"
    notes = versions.check(read_manifest(storage, backup_id), (ARCHIVE,), runtime.states(), False)
    assert notes == ["archive: backup made by None, the stack runs v1.0.0: versions not compared "
                     "(not MAJOR.MINOR)"]  # fmt: skip


def test_the_command_line_says_so_and_allows_it_with_the_flag(
    stack: tuple[Project, VersionedRuntime], capsys: pytest.CaptureFixture[str]
) -> None:
    from monctl.cli import _run  # the error boundary, as `monctl` runs it

    project, runtime = stack
    storage, backup_id = backed_up(project, runtime, "13.2.3")
    runtime.running = "12.4.0"
    base = ["--project-dir", str(project.root), "restore", backup_id, "--from", storage.location]
    capsys.readouterr()
    assert _run([*base, "--yes", "--json"]) == ExitCode.CONFIG
    doc = json.loads(capsys.readouterr().out)
    assert "backup made by 13.2.3, the stack runs 12.4.0" in doc["error"]["message"]
    assert _run([*base, "--yes", "--allow-downgrade", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["ok"] is True
