"""The lifecycle verbs are callable without click (issue 18, item 2), as the backup verbs
are: a request in (the project, its runtime, the options), a result out that carries its
exit code. The runtime here is the fake at the outer edge (support.fake_runtime); the same
verbs run against the real engine in tests/e2e."""

from __future__ import annotations

from pathlib import Path

from support import repo
from support.fake_runtime import FakeRuntime

from monctl import services as declared
from monctl.credentials import PASSWORD_VAR, WEB_CONFIG_VAR
from monctl.errors import ExitCode
from monctl.lifecycle import down, status, up, upgrade
from monctl.result import Progress
from monctl.services.model import Service


class Recording(FakeRuntime):
    """The fake runtime, recording what up and down ask of it."""

    def up(self, services: tuple[Service, ...], progress: Progress) -> None:
        self.log.append("up " + ",".join(s.name for s in services))

    def down(self, volumes: bool) -> None:
        self.log.append(f"down volumes={volumes}")


def test_status_is_one_row_per_declared_service(tmp_path: Path) -> None:
    proj = repo.project(tmp_path / "stack")
    rt = Recording(urls={"grafana": "http://127.0.0.1:3000"})
    report = status.perform(status.StatusRequest(proj, rt))
    assert report.exit_code == ExitCode.OK
    rows = {row.name: row for row in report.services}
    assert list(rows) == [s.name for s in declared.SERVICES]
    assert rows["grafana"].state == "running" and rows["grafana"].urls == ("http://127.0.0.1:3000",)
    assert rows["prometheus"].state == "missing"


def test_down_asks_the_runtime_and_says_whether_data_went(tmp_path: Path) -> None:
    proj, rt = repo.project(tmp_path / "stack"), Recording(urls={})
    kept = down.perform(down.DownRequest(proj, rt))
    gone = down.perform(down.DownRequest(proj, rt, volumes=True))
    assert rt.log == ["down volumes=False", "down volumes=True"]
    assert (kept.to_json()["volumes_deleted"], gone.to_json()["volumes_deleted"]) == (False, True)
    assert kept.exit_code == gone.exit_code == ExitCode.OK


def test_up_without_waiting_starts_what_was_asked_with_the_credentials_in_env(
    tmp_path: Path,
) -> None:
    proj, rt = repo.project(tmp_path / "stack"), Recording(urls={})
    grafana = declared.select(("grafana",))
    report = up.perform(up.UpRequest(proj, rt, grafana, wait=False))
    assert rt.log == ["up grafana"]
    assert report.exit_code == ExitCode.OK and report.health is None
    env = (tmp_path / "stack" / ".env").read_text(encoding="utf-8")
    assert f"{PASSWORD_VAR}=" in env and f"{WEB_CONFIG_VAR}=" in env


def test_upgrade_dry_run_writes_nothing(tmp_path: Path) -> None:
    from monctl import project

    target = project.init(tmp_path / "stack")
    missing = target / "compose" / "docker-compose.swarm.yml"
    missing.unlink()
    request = upgrade.UpgradeRequest(project.packaged_stack(), target, dry_run=True)
    report = upgrade.perform(request)
    assert report.exit_code == ExitCode.OK
    files = {f["path"]: f["action"] for f in report.to_json()["files"]}
    assert files["compose/docker-compose.swarm.yml"] == "added"
    assert not missing.exists()
