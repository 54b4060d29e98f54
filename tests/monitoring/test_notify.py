"""Notifications through real Apprise (the `notify` extra) to a real HTTP server on
127.0.0.1 (Apprise's json:// webhook): sent on failure, on success only with
MONCTL_NOTIFY_ON=always; the URLs' secrets never printed; a clear message when the
extra is not installed."""

from __future__ import annotations

import importlib.util
import json
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import require
from support.ping_server import RecordingServer

from monctl.cli.output import Output
from monctl.errors import ConfigError, ExitCode, UsageError
from monctl.monitoring.announce import Announcer
from monctl.monitoring.notify import Notifier, label, split_urls
from monctl.project import COMPOSE_FILE, Project


@pytest.fixture(autouse=True)
def _apprise_installed() -> None:
    """A skip on a workstation without the extra; a failure under CI (it is in monctl[test])."""
    require(importlib.util.find_spec("apprise"), "the notify extra (pip install 'monctl[notify]')")


PASSWORD = "s3cr3t-passw0rd-xyz"


class Finished:
    def __init__(self, code: ExitCode, doc: dict[str, object]) -> None:
        self._code, self._doc = code, doc

    @property
    def exit_code(self) -> ExitCode:
        return self._code

    def to_json(self) -> dict[str, object]:
        return self._doc

    def render(self, out: Output) -> None:
        pass


@pytest.fixture
def hook() -> Iterator[RecordingServer]:
    with RecordingServer() as s:
        yield s


@pytest.fixture
def project(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Project:
    for var in ("MONCTL_NOTIFY_URLS", "MONCTL_NOTIFY_ON", "MONCTL_NOTIFY_TIMEOUT"):
        monkeypatch.delenv(var, raising=False)
    root = tmp_path / "stack"
    (root / COMPOSE_FILE).parent.mkdir(parents=True)
    (root / COMPOSE_FILE).write_text("services: {}\n", encoding="utf-8")
    return Project(root=root, name="nt")


def webhook(server: RecordingServer, path: str = "hook") -> str:
    host = server.url.removeprefix("http://")
    return f"json://monctl:{PASSWORD}@{host}/{path}"


def run(project: Project, code: ExitCode, **env: str) -> Announcer:
    project.env = env
    announcer = Announcer.for_command(project, "backup", "MONCTL_BACKUP_PING_URL")
    doc = {"id": "20261126T020000Z", "services": [{"service": "loki", "status": "failed"}]}
    if code != ExitCode.OK:
        doc["error"] = {"message": "backup failed (loki): flush refused"}
    announcer.call(lambda: Finished(code, doc), "", Output())
    return announcer


def test_a_failure_is_notified_with_its_summary(project: Project, hook: RecordingServer) -> None:
    announcer = run(project, ExitCode.FAILED, MONCTL_NOTIFY_URLS=webhook(hook))
    assert len(hook.received) == 1
    sent = json.loads(hook.received[0].body)
    assert sent["type"] == "failure"
    assert sent["title"].startswith("monctl backup FAILED on ")
    assert "backup failed (loki): flush refused" in sent["message"]
    report = announcer.wrap(Finished(ExitCode.FAILED, {})).to_json()
    assert report["notifications"] == [{"target": "json #1", "ok": True, "detail": "sent"}]
    assert PASSWORD not in json.dumps(report)


def test_success_is_notified_only_when_asked(project: Project, hook: RecordingServer) -> None:
    run(project, ExitCode.OK, MONCTL_NOTIFY_URLS=webhook(hook))
    assert hook.received == []
    run(project, ExitCode.OK, MONCTL_NOTIFY_URLS=webhook(hook), MONCTL_NOTIFY_ON="always")
    assert len(hook.received) == 1
    assert json.loads(hook.received[0].body)["type"] == "success"


def test_every_url_is_sent_to_and_a_failing_one_is_reported(
    project: Project, hook: RecordingServer
) -> None:
    with RecordingServer(status=500) as broken:
        urls = f"{webhook(hook, 'a')}, {webhook(broken, 'b')}\n{webhook(hook, 'c')}"
        announcer = run(project, ExitCode.FAILED, MONCTL_NOTIFY_URLS=urls)
        assert len(broken.received) >= 1
    assert sorted(r.path for r in hook.received) == ["/a", "/c"]
    sent = announcer.wrap(Finished(ExitCode.FAILED, {})).to_json()["notifications"]
    assert [(s["target"], s["ok"]) for s in sent] == [
        ("json #1", True),
        ("json #2", False),
        ("json #3", True),
    ]


def test_a_hanging_receiver_is_given_up_after_the_notify_timeout(project: Project) -> None:
    with RecordingServer(hang=True) as stuck:
        announcer = run(
            project,
            ExitCode.FAILED,
            MONCTL_NOTIFY_URLS=webhook(stuck),
            MONCTL_NOTIFY_TIMEOUT="1",
        )
        assert stuck.waiting == 1  # still held by the server: monctl stopped waiting
    (sent,) = announcer.wrap(Finished(ExitCode.FAILED, {})).to_json()["notifications"]
    assert sent["ok"] is False


def test_splitting_keeps_commas_inside_a_url() -> None:
    text = "mailto://u:p@mail.example.org?to=a@x.org,b@x.org, ntfy://ntfy.sh/topic json://h/x"
    assert split_urls(text) == [
        "mailto://u:p@mail.example.org?to=a@x.org,b@x.org",
        "ntfy://ntfy.sh/topic",
        "json://h/x",
    ]
    assert label("slack://TokenA/TokenB/TokenC", 2) == "slack #2"


def test_a_url_apprise_does_not_understand_is_a_config_error_without_its_text(
    project: Project,
) -> None:
    project.env = {"MONCTL_NOTIFY_URLS": f"nosuchscheme://{PASSWORD}@host/x"}
    with pytest.raises(ConfigError) as bad:
        Notifier.from_project(project)
    assert PASSWORD not in bad.value.message and "nosuchscheme #1" in bad.value.message


def test_without_the_extra_the_setting_says_how_to_install_it(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "apprise", None)  # as if not installed
    project.env = {"MONCTL_NOTIFY_URLS": "json://127.0.0.1:1/x"}
    with pytest.raises(UsageError) as missing:
        Notifier.from_project(project)
    assert "pip install 'monctl[notify]'" in (missing.value.hint or "")
    assert missing.value.exit_code == ExitCode.USAGE
    project.env = {}
    assert Notifier.from_project(project) is None  # unset: apprise is never imported
