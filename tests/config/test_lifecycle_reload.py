"""monctl.config.reload against Debian's real Prometheus and Alertmanager on 127.0.0.1.

The runtime is ``HostRuntime``: the checks run host promtool/amtool on the same files;
the production path (``docker exec`` in the container) runs in tests/e2e/test_reload.py."""

from __future__ import annotations

import json
import time

import httpx
import pytest
from support import Recorded
from support.reload_servers import ALERTMANAGER_CONFIG, HostRuntime, Server

from monctl import services
from monctl.cli.output import Output
from monctl.config.reload import reload
from monctl.config.reload_report import ReloadReport
from monctl.errors import ExitCode
from monctl.project import Project
from monctl.services.model import Service

pytestmark = pytest.mark.binaries

PROMETHEUS = services.get("prometheus")
ALERTMANAGER = services.get("alertmanager")

NEW_JOB = """
  - job_name: added-by-test
    static_configs:
      - targets: ['127.0.0.1:{port}']
"""
NEW_RULE = """
  - name: added
    rules:
      - alert: AddedByTest
        expr: vector(1) > 2
"""
# A duration Prometheus cannot parse: promtool and the reload both reject it.
BROKEN = "global:\n  scrape_interval: 15 seconds\n"


def jobs(server: Server, expected: set[str], timeout: float = 20) -> set[str]:
    """The scrape jobs with active targets, once they equal ``expected`` (Prometheus syncs
    targets a few seconds after a (re)load) or ``timeout`` passed."""
    deadline = time.monotonic() + timeout
    while True:
        doc = httpx.get(f"{server.url}/api/v1/targets", timeout=5).json()
        found = {t["labels"]["job"] for t in doc["data"]["activeTargets"]}
        if found == expected or time.monotonic() > deadline:
            return found
        time.sleep(0.25)


def loaded_config(server: Server) -> str:
    """The configuration Prometheus is running (immediate, unlike the target list)."""
    return str(httpx.get(f"{server.url}/api/v1/status/config", timeout=5).json()["data"]["yaml"])


def alert_rules(server: Server) -> set[str]:
    doc = httpx.get(f"{server.url}/api/v1/rules", timeout=5).json()
    return {r["name"] for g in doc["data"]["groups"] for r in g["rules"]}


def rendered(report: ReloadReport, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    Output().emit("reload", report)
    return capsys.readouterr().out


def run(project: Project, server: Server, service: Service, **kw: object) -> ReloadReport:
    """Reload ``service`` (served by ``server``) with its checks, unless validate=False."""
    validate = bool(kw.pop("validate", True))
    runtime = HostRuntime(project, {service.name: server.url}, **kw)  # type: ignore[arg-type]
    return reload(project, runtime, (service,), validate=validate)


# -- Prometheus ------------------------------------------------------------------------
def test_valid_change_is_reloaded_confirmed_and_visible(
    project: Project, prometheus: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    assert jobs(prometheus, {"self"}) == {"self"}
    with prometheus.config.open("a") as fh:
        fh.write(NEW_JOB.format(port=prometheus.port))
    with (prometheus.config.parent / "rules.yml").open("a") as fh:
        fh.write(NEW_RULE)
    before = prometheus.metric("prometheus_config_last_reload_success_timestamp_seconds")

    progress = Recorded()
    runtime = HostRuntime(project, {"prometheus": prometheus.url})
    report = reload(project, runtime, (PROMETHEUS,), progress=progress)

    assert report.exit_code == ExitCode.OK
    (outcome,) = report.outcomes
    assert outcome.result == "confirmed", outcome
    assert jobs(prometheus, {"self", "added-by-test"}) == {"self", "added-by-test"}
    assert "AddedByTest" in alert_rules(prometheus)
    after = prometheus.metric("prometheus_config_last_reload_success_timestamp_seconds")
    assert before is not None and after is not None and after > before
    assert any("promtool" in line for line in progress.notes)  # the check ran before the POST
    assert runtime.execs and runtime.execs[0][:3] == ["promtool", "check", "config"]
    assert "confirmed" in rendered(report, capsys)


def test_invalid_change_is_refused_before_any_post(
    project: Project, prometheus: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    good = prometheus.config.read_text()
    prometheus.config.write_text(BROKEN + good.split("\n", 3)[3], encoding="utf-8")
    stamp = prometheus.metric("prometheus_config_last_reload_success_timestamp_seconds")
    posts = prometheus.reload_requests()

    report = run(project, prometheus, PROMETHEUS)

    assert report.exit_code == ExitCode.CONFIG
    (outcome,) = report.outcomes
    assert outcome.result == "refused"
    assert "not touched" in outcome.summary
    assert any("15 seconds" in line for line in outcome.details)  # promtool's own message
    assert prometheus.reload_requests() == posts  # no POST /-/reload was made
    assert prometheus.metric("prometheus_config_last_reload_successful") == 1
    assert prometheus.metric("prometheus_config_last_reload_success_timestamp_seconds") == stamp
    assert "job_name: self" in loaded_config(prometheus)  # the old configuration is active
    assert "15 seconds" not in loaded_config(prometheus)
    out = rendered(report, capsys)
    assert "refused" in out and "15 seconds" in out


def test_no_validate_invalid_change_gets_500_and_old_config_stays(
    project: Project, prometheus: Server
) -> None:
    with prometheus.config.open("a") as fh:
        fh.write(NEW_JOB.format(port=prometheus.port))
        fh.write("not_a_prometheus_key: 1\n")
    posts = prometheus.reload_requests()

    report = run(project, prometheus, PROMETHEUS, validate=False)

    assert report.exit_code == ExitCode.FAILED
    (outcome,) = report.outcomes
    assert outcome.result == "failed"
    assert "previous configuration is still active" in outcome.summary
    assert "(500)" in outcome.summary
    assert any("not_a_prometheus_key" in line for line in outcome.details)  # Prometheus' error
    assert prometheus.reload_requests() == posts + 1
    assert prometheus.metric("prometheus_config_last_reload_successful") == 0
    assert "added-by-test" not in loaded_config(prometheus)  # the old configuration stays


def test_lifecycle_api_off_explains_how_to_turn_it_on(
    project: Project, prometheus_files: Server
) -> None:
    prometheus_files.args.remove("--web.enable-lifecycle")
    prometheus_files.start()
    report = run(project, prometheus_files, PROMETHEUS)

    assert report.exit_code == ExitCode.FAILED
    (outcome,) = report.outcomes
    assert "403" in outcome.summary and "lifecycle API is off" in outcome.summary
    assert outcome.hint is not None and "--web.enable-lifecycle" in outcome.hint
    assert "docker-compose.monitoring.yml" in outcome.hint


# -- Alertmanager ----------------------------------------------------------------------
def original_config(server: Server) -> str:
    doc = httpx.get(f"{server.url}/api/v2/status", timeout=5).json()
    return str(doc["config"]["original"])


def test_alertmanager_change_confirmed_by_a_new_hash(
    project: Project, alertmanager: Server
) -> None:
    hash_before = alertmanager.metric("alertmanager_config_hash")
    alertmanager.config.write_text(
        ALERTMANAGER_CONFIG.replace("original", "changed-by-test"), encoding="utf-8"
    )
    report = run(project, alertmanager, ALERTMANAGER)

    assert report.exit_code == ExitCode.OK, report.outcomes
    assert report.outcomes[0].result == "confirmed"
    assert alertmanager.metric("alertmanager_config_hash") != hash_before
    assert "changed-by-test" in original_config(alertmanager)


def test_alertmanager_unchanged_file_is_success_and_says_so(
    project: Project, alertmanager: Server
) -> None:
    posts = alertmanager.reload_requests()
    report = run(project, alertmanager, ALERTMANAGER)

    assert report.exit_code == ExitCode.OK
    assert report.outcomes[0].result == "unchanged"
    assert alertmanager.reload_requests() == posts + 1  # it did reload, to be sure


def test_alertmanager_invalid_change_refused_and_no_validate_gets_500(
    project: Project, alertmanager: Server
) -> None:
    alertmanager.config.write_text(
        "route:\n  receiver: nobody-defines-me\nreceivers:\n  - name: x\n", encoding="utf-8"
    )
    posts = alertmanager.reload_requests()
    refused = run(project, alertmanager, ALERTMANAGER)
    assert refused.exit_code == ExitCode.CONFIG
    assert any("nobody-defines-me" in line for line in refused.outcomes[0].details)
    assert alertmanager.reload_requests() == posts

    failed = run(project, alertmanager, ALERTMANAGER, validate=False)
    assert failed.exit_code == ExitCode.FAILED
    assert "previous configuration is still active" in failed.outcomes[0].summary
    assert alertmanager.reload_requests() == posts + 1
    assert "receiver: original" in original_config(alertmanager)


def test_alertmanager_secrets_changed_in_env_need_a_restart_and_stay_hidden(
    project: Project, alertmanager: Server, capsys: pytest.CaptureFixture[str]
) -> None:
    started_with = "https://hooks.example.org/started-with-this-secret"
    now_in_env = "https://hooks.example.org/edited-since-secret"
    project.env = {"SLACK_WEBHOOK_URL": now_in_env, "SMTP_PASSWORD": "same-smtp-secret"}
    from monctl import redaction

    redaction.register_env(project.env)
    redaction.register(started_with)  # as load_env would have, had it been in .env before
    running = {"SLACK_WEBHOOK_URL": started_with, "SMTP_PASSWORD": "same-smtp-secret"}
    report = run(project, alertmanager, ALERTMANAGER, started_env=running)

    (outcome,) = report.outcomes
    assert outcome.result == "restart needed"
    assert report.exit_code == ExitCode.FAILED
    assert "SLACK_WEBHOOK_URL" in outcome.summary
    assert "SMTP_PASSWORD" not in outcome.summary  # unchanged: not named
    assert outcome.hint is not None and "monctl up alertmanager" in outcome.hint
    text = rendered(report, capsys) + json.dumps(report.to_json())
    for value in (started_with, now_in_env, "same-smtp-secret"):
        assert value not in text

    running["SLACK_WEBHOOK_URL"] = now_in_env  # after `monctl up`: nothing left to say
    assert run(project, alertmanager, ALERTMANAGER, started_env=running).exit_code == ExitCode.OK
