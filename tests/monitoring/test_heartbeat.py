"""Heartbeat pings (healthchecks.io, Uptime Kuma, Cronitor) against a real HTTP server on
127.0.0.1 that records what it receives: start/success/fail with their bodies, secrets
never printed, and a server that never answers does not hold the run past the
documented MONCTL_PING_TIMEOUT."""

from __future__ import annotations

import fcntl
import json
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner
from support.fake_runtime import FakeRuntime
from support.ping_server import RecordingServer

from monctl import services
from monctl.cli.output import Output
from monctl.errors import ConfigError, ExitCode, LockHeld, OperationFailed
from monctl.monitoring.announce import Announcer, lock_taken
from monctl.monitoring.heartbeat import Heartbeat, build, kind_of
from monctl.project import COMPOSE_FILE, Project
from monctl.services.model import DataVolume, Pause, Probe, Service

SECRET = "0f3b8c1e-5d2a-4c9b-8e7f-1a2b3c4d5e6f"  # the check's UUID: never printed

VAULT = Service(
    name="vault",
    title="Vault",
    role="a fictional service with data",
    container_port=7171,
    port_var="VAULT_PORT",
    default_port=7171,
    image_var="VAULT_IMAGE",
    liveness=Probe("/healthz"),
    data=DataVolume("vault_data", "/var/lib/vault", 1000, 1000, Pause()),
)


@dataclass
class Done:
    """A finished operation's result, as the announcer sees one."""

    code: ExitCode = ExitCode.OK
    doc: dict[str, Any] | None = None

    @property
    def exit_code(self) -> ExitCode:
        return self.code

    def to_json(self) -> dict[str, Any]:
        return self.doc or {}

    def render(self, out: Output) -> None:
        pass


@pytest.fixture
def server() -> Iterator[RecordingServer]:
    with RecordingServer() as s:
        yield s


@pytest.fixture
def project(tmp_path: Path) -> Project:
    root = tmp_path / "stack"
    (root / COMPOSE_FILE).parent.mkdir(parents=True)
    (root / COMPOSE_FILE).write_text("services: {}\n", encoding="utf-8")
    return Project(root=root, name="hb")


@pytest.fixture(autouse=True)
def clean_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for var in (
        "MONCTL_BACKUP_PING_URL",
        "MONCTL_RESTORE_PING_URL",
        "MONCTL_PING_KIND",
        "MONCTL_PING_TIMEOUT",
        "MONCTL_NOTIFY_URLS",
        "MONCTL_NOTIFY_ON",
    ):
        monkeypatch.delenv(var, raising=False)


def announcer(project: Project, url: str, **env: str) -> Announcer:
    project.env = {"MONCTL_BACKUP_PING_URL": url, **env}
    return Announcer.for_command(project, "backup", "MONCTL_BACKUP_PING_URL")


# -- what each service is sent -------------------------------------------------------


def test_healthchecks_gets_start_then_success_with_one_run_id_and_a_body(
    project: Project, server: RecordingServer
) -> None:
    doc = {
        "id": "20261126T020000Z",
        "location": "/srv/backups",
        "bytes": 3 * 1024 * 1024,
        "services": [{"service": "grafana", "status": "ok", "bytes": 3 * 1024 * 1024}],
        "error": None,
    }
    run = announcer(project, f"{server.url}/ping/{SECRET}")
    result = run.call(lambda: Done(doc=doc), "services: grafana", Output())

    assert server.paths() == [f"/ping/{SECRET}/start", f"/ping/{SECRET}"]
    start, success = server.received
    assert start.method == success.method == "POST"
    assert start.query["rid"] == success.query["rid"]  # healthchecks pairs them by rid
    assert "services: grafana" in start.body
    assert "20261126T020000Z" in success.body and "grafana  ok  3.0 MiB" in success.body
    wrapped = run.wrap(result).to_json()
    assert [p["signal"] for p in wrapped["heartbeat"]] == ["start", "success"]
    assert SECRET not in json.dumps(wrapped)  # only the host is shown
    assert wrapped["heartbeat"][0]["target"] == server.url


def test_a_failed_result_pings_fail_with_the_error(
    project: Project, server: RecordingServer
) -> None:
    doc = {"id": "20261126T020000Z", "error": {"message": "backup failed (loki): disk full"}}
    run = announcer(project, f"{server.url}/{SECRET}")
    run.call(lambda: Done(ExitCode.STORAGE, doc), "", Output())
    assert server.paths() == [f"/{SECRET}/start", f"/{SECRET}/fail"]
    assert "error: backup failed (loki): disk full" in server.received[1].body


def test_an_operation_that_raises_pings_fail_and_the_error_goes_on(
    project: Project, server: RecordingServer
) -> None:
    run = announcer(project, f"{server.url}/{SECRET}")

    def boom() -> Done:
        raise OperationFailed("not running: prometheus", hint="start it")

    with pytest.raises(OperationFailed):
        run.call(boom, "", Output())
    assert server.paths()[-1] == f"/{SECRET}/fail"
    assert "not running: prometheus" in server.received[-1].body
    assert "hint: start it" in server.received[-1].body


def test_a_run_refused_by_the_lock_opens_no_run_and_only_logs(
    project: Project, server: RecordingServer, tmp_path: Path
) -> None:
    lock_file = tmp_path / "backup.lock"
    with open(lock_file, "a+") as held:  # another run holds the lock
        fcntl.flock(held, fcntl.LOCK_EX)
        assert lock_taken(lock_file)
        project.env = {"MONCTL_BACKUP_PING_URL": f"{server.url}/{SECRET}"}
        run = Announcer.for_command(project, "backup", "MONCTL_BACKUP_PING_URL", (lock_file,))

        def refused() -> Done:
            raise LockHeld("another backup or restore is running (pid 1, backup)")

        with pytest.raises(LockHeld):
            run.call(refused, "", Output())
    assert server.paths() == [f"/{SECRET}/log"]
    assert "skipped" in server.received[0].body
    assert not lock_taken(lock_file)


def test_uptime_kuma_gets_up_or_down_in_the_query_and_no_start(
    project: Project, server: RecordingServer
) -> None:
    # The URL as Kuma's UI shows it, with its own status/msg/ping already filled in.
    url = f"{server.url}/api/push/{SECRET[:10]}?status=up&msg=OK&ping="
    run = announcer(project, url)
    run.call(lambda: Done(doc={"id": "20261126T020000Z"}), "", Output())
    run2 = announcer(project, url)
    run2.call(lambda: Done(ExitCode.FAILED, {"error": {"message": "boom"}}), "", Output())

    assert [r.path for r in server.received] == [f"/api/push/{SECRET[:10]}"] * 2
    up, down = server.received
    assert up.query["status"] == ["up"] and down.query["status"] == ["down"]
    assert "20261126T020000Z" in up.query["msg"][0] and "FAILED" in down.query["msg"][0]
    skipped = run.wrap(Done()).to_json()["heartbeat"][0]
    assert skipped["signal"] == "start" and skipped["sent"] is False and skipped["ok"] is True


def test_cronitor_gets_run_complete_fail_states() -> None:
    url = "https://cronitor.link/p/apikey1234567/nightly-backup"
    assert kind_of(url) == "cronitor"
    start = build("cronitor", url, "start", "hello", "rid-1")
    done = build("cronitor", url, "success", "all good", "rid-1")
    assert start is not None and done is not None
    assert "state=run" in start.url and "series=rid-1" in start.url
    assert "state=complete" in done.url and "message=all+good" in done.url
    assert start.url.startswith("https://cronitor.link/p/apikey1234567/nightly-backup?")
    assert build("cronitor", url, "log", "x", "rid") is None


def test_kind_detection_and_its_override() -> None:
    assert kind_of("https://hc-ping.com/abc") == "healthchecks"
    assert kind_of("https://kuma.example.org/api/push/tok123?status=up") == "uptime-kuma"
    assert kind_of("https://hc.example.org/ping/x", "uptime-kuma") == "uptime-kuma"
    with pytest.raises(ConfigError):
        kind_of("https://hc-ping.com/abc", "pagerduty")


def test_a_healthchecks_query_string_is_kept_and_the_suffix_goes_on_the_path() -> None:
    request = build("healthchecks", "https://hc-ping.com/key/slug?create=1", "fail", "x", "r")
    assert request is not None
    assert request.url == "https://hc-ping.com/key/slug/fail?create=1&rid=r"


def test_a_bad_url_or_timeout_is_a_config_error_that_hides_the_value(project: Project) -> None:
    project.env = {"MONCTL_BACKUP_PING_URL": f"ftp://example.org/{SECRET}"}
    with pytest.raises(ConfigError) as bad:
        Heartbeat.from_project(project, "MONCTL_BACKUP_PING_URL")
    assert SECRET not in bad.value.message + (bad.value.hint or "")
    project.env = {"MONCTL_BACKUP_PING_URL": "https://hc-ping.com/x", "MONCTL_PING_TIMEOUT": "0"}
    with pytest.raises(ConfigError):
        Heartbeat.from_project(project, "MONCTL_BACKUP_PING_URL")


# -- failures of the pings themselves -------------------------------------------------------


def test_a_server_that_never_answers_is_given_up_after_the_ping_timeout(
    project: Project,
) -> None:
    with RecordingServer(hang=True) as stuck:
        run = announcer(project, f"{stuck.url}/{SECRET}", MONCTL_PING_TIMEOUT="1")
        result = run.call(lambda: Done(doc={"id": "x"}), "", Output())
        # The run is over while the server still holds both requests unanswered:
        # monctl stopped waiting for them, it did not wait for the server.
        assert stuck.waiting == 2
        pings = run.wrap(result).to_json()["heartbeat"]
        assert [(p["signal"], p["ok"]) for p in pings] == [("start", False), ("success", False)]
        assert pings[0]["detail"] == "no answer within 1 s (MONCTL_PING_TIMEOUT)"
        assert result.exit_code == ExitCode.OK  # a ping never fails the operation


def test_a_refused_ping_is_reported_not_retried_and_never_fails_the_run(
    project: Project,
) -> None:
    with RecordingServer(status=404) as wrong:
        run = announcer(project, f"{wrong.url}/{SECRET}")
        result = run.call(lambda: Done(), "", Output())
        assert len(wrong.received) == 2  # one try each: a 404 will not go away
    pings = run.wrap(result).to_json()["heartbeat"]
    assert all(p["ok"] is False and p["detail"].startswith("answered 404") for p in pings)
    assert result.exit_code == ExitCode.OK


def test_nothing_listening_is_reported(project: Project) -> None:
    from support import free_ports

    url = f"http://127.0.0.1:{free_ports()[0]}/{SECRET}"
    run = announcer(project, url, MONCTL_PING_TIMEOUT="1")
    result = run.call(lambda: Done(), "", Output())
    pings = run.wrap(result).to_json()["heartbeat"]
    assert pings[0]["ok"] is False and "refused" in pings[0]["detail"].lower()


# -- through the command line --------------------------------------------------------------


@pytest.fixture
def vault(monkeypatch: pytest.MonkeyPatch, project: Project) -> Iterator[FakeRuntime]:
    """The fictional service: its liveness answered by a server of its own."""
    from monctl import runtime as runtime_module

    monkeypatch.setattr(services, "SERVICES", [VAULT])
    monkeypatch.delenv(VAULT.url_var, raising=False)
    with RecordingServer() as live:
        fake = FakeRuntime(urls={"vault": live.url}, files={"vault": {"a": b"1"}})
        monkeypatch.setattr(runtime_module, "open_runtime", lambda p: fake)
        yield fake


def test_backup_command_pings_and_reports_without_printing_the_url(
    project: Project, vault: FakeRuntime, server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monctl.cli import cli

    url = f"{server.url}/ping/{SECRET}"
    monkeypatch.setenv("MONCTL_BACKUP_PING_URL", url)
    dest = project.root / "backups"
    argv = ["--project-dir", str(project.root), "backup", "--to", str(dest), "--json"]
    result = CliRunner().invoke(cli, argv)

    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert server.paths() == [f"/ping/{SECRET}/start", f"/ping/{SECRET}"]
    assert doc["id"] in server.received[1].body and "vault  ok" in server.received[1].body
    assert [p["ok"] for p in doc["heartbeat"]] == [True, True]
    assert SECRET not in result.output
    assert "MONCTL" not in server.received[1].body  # no settings, only the summary


def test_restore_command_pings_the_restore_url(
    project: Project, vault: FakeRuntime, server: RecordingServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monctl.cli import cli

    dest = project.root / "backups"
    base = ["--project-dir", str(project.root)]
    made = CliRunner().invoke(cli, [*base, "backup", "--to", str(dest), "--json"])
    backup_id = json.loads(made.stdout)["id"]
    monkeypatch.setenv("MONCTL_BACKUP_PING_URL", f"{server.url}/backup-check-0001")
    monkeypatch.setenv("MONCTL_RESTORE_PING_URL", f"{server.url}/restore-check-0001")
    argv = [*base, "restore", backup_id, "--from", str(dest), "--yes", "--json"]
    result = CliRunner().invoke(cli, argv)

    assert server.paths() == ["/restore-check-0001/start", "/restore-check-0001"], result.output
    assert backup_id in server.received[0].body


def test_a_secret_inside_an_error_is_masked_in_the_body(
    project: Project, server: RecordingServer
) -> None:
    from monctl import redaction

    redaction.register_env({"GRAFANA_ADMIN_PASSWORD": "pw-that-leaked-1234"})
    run = announcer(project, f"{server.url}/{SECRET}")

    def leaky() -> Done:
        raise OperationFailed("grafana said: bad login admin:pw-that-leaked-1234")

    with pytest.raises(OperationFailed):
        run.call(leaky, "", Output())
    assert "pw-that-leaked-1234" not in server.received[-1].body
    assert "admin:****" in server.received[-1].body


def test_a_hanging_check_url_does_not_hold_the_backup_command(
    project: Project, vault: FakeRuntime, monkeypatch: pytest.MonkeyPatch
) -> None:
    from monctl.cli import cli

    with RecordingServer(hang=True) as stuck:
        monkeypatch.setenv("MONCTL_BACKUP_PING_URL", f"{stuck.url}/{SECRET}")
        monkeypatch.setenv("MONCTL_PING_TIMEOUT", "1")
        dest = project.root / "backups"
        argv = ["--project-dir", str(project.root), "backup", "--to", str(dest), "--json"]
        result = CliRunner().invoke(cli, argv)
        # The backup finished while both pings are still held by the server.
        assert stuck.waiting == 2
    assert result.exit_code == 0, result.output
    doc = json.loads(result.stdout)
    assert doc["ok"] is True and [p["ok"] for p in doc["heartbeat"]] == [False, False]
    assert doc["heartbeat"][0]["detail"] == "no answer within 1 s (MONCTL_PING_TIMEOUT)"
    assert SECRET not in result.output
