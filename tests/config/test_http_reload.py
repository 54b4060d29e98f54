"""Grafana's provisioning API, Promtail's runtime reload and the restart strategy, with respx
(no Grafana, Loki or Promtail binary exists on this machine), and `reload all`'s keep-going."""

from __future__ import annotations

import base64
import json
import shutil
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
import respx
from support.health_fakes import HEALTHY
from support.reload_servers import HostRuntime

from monctl import redaction, services
from monctl.cli.output import Output
from monctl.config.reload import reload
from monctl.config.reload_report import ReloadReport
from monctl.errors import ExitCode
from monctl.project import Project
from monctl.services.model import ProvisioningReload, Service

REPO = Path(__file__).resolve().parents[2]
GRAFANA = services.get("grafana")
assert isinstance(GRAFANA.reload, ProvisioningReload)
GRAFANA_PARTS = GRAFANA.reload.parts
URL = "http://grafana.test:3000"
PASSWORD = "grafana-admin-secret-from-env"


@pytest.fixture
def grafana_project(project: Project) -> Project:
    project.env = {"GRAFANA_ADMIN_USER": "ops-admin", "GRAFANA_ADMIN_PASSWORD": PASSWORD}
    redaction.register_env(project.env)
    return project


def routes(router: respx.MockRouter, answers: dict[str, httpx.Response]) -> dict[str, respx.Route]:
    return {
        part: router.post(f"{URL}/api/admin/provisioning/{part}/reload").mock(
            return_value=answers.get(part, httpx.Response(200, json={"message": "reloaded"}))
        )
        for part in GRAFANA_PARTS
    }


def shown(report: ReloadReport, capsys: pytest.CaptureFixture[str]) -> str:
    capsys.readouterr()
    Output().emit("reload", report)
    Output(json_mode=True).emit("reload", report)
    return capsys.readouterr().out


def test_grafana_200_reloads_every_part_with_the_env_credentials(
    grafana_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        calls = routes(router, {})
        report = reload(grafana_project, HostRuntime(grafana_project, {"grafana": URL}), (GRAFANA,))
    assert report.exit_code == ExitCode.OK
    assert report.outcomes[0].result == "confirmed"
    expected = "Basic " + base64.b64encode(f"ops-admin:{PASSWORD}".encode()).decode()
    for part, route in calls.items():
        assert route.call_count == 1, part
        assert route.calls.last.request.headers["Authorization"] == expected
    assert all(f"{part}: reloaded" in report.outcomes[0].details for part in GRAFANA_PARTS)
    assert PASSWORD not in shown(report, capsys)


def test_grafana_401_names_the_env_password_and_stops(
    grafana_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    denied = httpx.Response(401, json={"message": "invalid username or password"})
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        calls = routes(router, dict.fromkeys(GRAFANA_PARTS, denied))
        runtime = HostRuntime(grafana_project, {"grafana": URL})
        report = reload(grafana_project, runtime, (GRAFANA,), validate=False)
    (outcome,) = report.outcomes
    assert report.exit_code == ExitCode.FAILED
    assert "refused the admin credentials from .env" in outcome.summary
    assert "only on first start of an empty volume" in outcome.summary
    assert calls["dashboards"].call_count == 1
    assert calls["datasources"].call_count == 0  # same credentials: no point going on
    assert PASSWORD not in shown(report, capsys)


def test_grafana_500_reports_each_part(grafana_project: Project) -> None:
    broken = httpx.Response(500, json={"message": "Failed to reload datasources: bad uid"})
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        calls = routes(router, {"datasources": broken})
        runtime = HostRuntime(grafana_project, {"grafana": URL})
        report = reload(grafana_project, runtime, (GRAFANA,), validate=False)
    (outcome,) = report.outcomes
    assert report.exit_code == ExitCode.FAILED
    assert outcome.summary == "1 of 3 provisioning reloads failed"
    assert "dashboards: reloaded" in outcome.details
    assert "alerting: reloaded" in outcome.details
    assert any(d.startswith("datasources: 500") and "bad uid" in d for d in outcome.details)
    assert all(route.call_count == 1 for route in calls.values())


def test_grafana_bad_dashboard_json_is_refused_with_file_and_line(
    grafana_project: Project,
) -> None:
    board = grafana_project.root / "config" / "grafana" / "dashboards" / "broken.json"
    board.write_text('{\n  "uid": "x",\n  "title": "t",,\n}\n', encoding="utf-8")
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        calls = routes(router, {})
        report = reload(grafana_project, HostRuntime(grafana_project, {"grafana": URL}), (GRAFANA,))
    (outcome,) = report.outcomes
    assert report.exit_code == ExitCode.CONFIG
    assert outcome.result == "refused"
    assert outcome.details[0].startswith("config/grafana/dashboards/broken.json:3: ")
    assert all(route.call_count == 0 for route in calls.values())


# -- Promtail and Loki -----------------------------------------------------------------
PROMTAIL = services.get("promtail")
LOKI = services.get("loki")
# What `loki -verify-config` / `promtail -check-syntax` print inside the container when the
# file is fine, or not (their real texts: tests/images/standin/UPSTREAM.md).
VALID = {"loki": (0, 'level=info msg="config is valid"'), "promtail": (0, "Valid config file!")}
INVALID = {
    "loki": (1, "failed parsing config: /etc/loki/loki-config.yml: yaml: unmarshal errors:\n"
             "  line 40: field ingestor not found in type loki.ConfigWrapper"),
    "promtail": (1, "Unable to parse config: /etc/promtail/promtail-config.yml: yaml: "
                 "line 3: did not find expected key"),
}  # fmt: skip


def tool(answers: dict[str, tuple[int, str]]) -> Callable[[Service, list[str]], tuple[int, str]]:
    """The check inside the container, as ``HostRuntime`` runs it: Loki's and Promtail's
    answer from ``answers``, anything else refused (this test expects no other check)."""
    return lambda service, argv: answers.get(service.name, (127, f"unexpected: {argv}"))


@pytest.mark.parametrize(
    ("status", "result", "restarted"),
    [(200, "confirmed", False), (404, "restarted", True), (500, "failed", False)],
)
def test_promtail_runtime_reload_or_restart(
    project: Project, status: int, result: str, restarted: bool
) -> None:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        route = router.post("http://promtail.test/reload").mock(
            return_value=httpx.Response(status, text="failed to reload config: bad stage")
        )
        for path, answer in HEALTHY["promtail"].items():  # after a restart: ready at once
            router.get(f"http://promtail.test{path}").mock(return_value=answer)
        runtime = HostRuntime(project, {"promtail": "http://promtail.test"}, checker=tool(VALID))
        report = reload(project, runtime, (PROMTAIL,))
    (outcome,) = report.outcomes
    assert route.call_count == 1
    assert outcome.result == result
    assert (runtime.restarts == ["promtail"]) is restarted
    if restarted:
        assert "runtime reload is off" in outcome.summary
    if status == 500:
        assert report.exit_code == ExitCode.FAILED
        assert "bad stage" in " ".join(outcome.details)


def test_loki_is_restarted_and_waited_for(project: Project) -> None:
    runtime = HostRuntime(project, {"loki": "http://loki.test"}, checker=tool(VALID))
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        router.get("http://loki.test/metrics").mock(return_value=httpx.Response(200))
        ready = router.get("http://loki.test/ready")
        ready.mock(return_value=httpx.Response(200, text="ready"))
        report = reload(project, runtime, (LOKI,))
        assert report.outcomes[0].result == "restarted"
        assert report.outcomes[0].summary.startswith("Loki has no reload API; restarted")
        assert runtime.restarts == ["loki"]

        ramp = "Ingester not ready: waiting for 15s after being ready"
        ready.mock(return_value=httpx.Response(503, text=ramp))
        failed = reload(project, runtime, (LOKI,), ready_timeout=1)
    assert failed.exit_code == ExitCode.FAILED
    assert "Ingester not ready" in failed.outcomes[0].summary


@pytest.mark.parametrize("name", ["loki", "promtail"])
def test_a_config_its_own_tool_refuses_is_not_applied(project: Project, name: str) -> None:
    """Loki restarted into a config it refuses is a crash loop; Promtail keeps its old one
    but says so only in its log: either way, the check inside the container comes first."""
    config = project.root / "config" / name / f"{name}-config.yml"
    config.parent.mkdir(parents=True)
    shutil.copy2(REPO / "config" / name / config.name, config)
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        reloaded = router.post(f"http://{name}.test/reload").mock(return_value=httpx.Response(200))
        runtime = HostRuntime(project, {name: f"http://{name}.test"}, checker=tool(INVALID))
        report = reload(project, runtime, (services.get(name),))
    (outcome,) = report.outcomes
    assert outcome.result == "refused" and report.exit_code == ExitCode.CONFIG
    assert "was not touched" in outcome.summary
    assert any("line" in line for line in outcome.details)  # the tool's own words
    assert runtime.restarts == [] and reloaded.call_count == 0
    (argv,) = runtime.execs
    assert argv[0] == f"/usr/bin/{name}"  # the image's binary itself: no shell needed
    assert argv[-1] == f"-config.file=/etc/{name}/{name}-config.yml"


# -- all: one table, keeps going, worst exit code --------------------------------------
def test_all_keeps_going_and_ends_with_the_worst_code(
    grafana_project: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    with respx.mock(assert_all_mocked=True, assert_all_called=False) as router:
        routes(router, {})
        router.post("http://promtail.test/reload").mock(return_value=httpx.Response(200))
        for path, answer in HEALTHY["loki"].items():  # Loki, restarted, is ready at once
            router.get(f"http://loki.test{path}").mock(return_value=answer)
        # Prometheus is refused by its check (CONFIG); Alertmanager is not running (FAILED).
        runtime = HostRuntime(
            grafana_project,
            {
                "prometheus": "http://prometheus.test",  # never asked: the check refuses first
                "alertmanager": "http://alertmanager.test",
                "grafana": URL,
                "promtail": "http://promtail.test",
                "loki": "http://loki.test",
            },
            not_running=("alertmanager",),
            checker=tool({**VALID, "prometheus": (1, "FAILED: parsing YAML file x.yml: bad")}),
        )
        report = reload(grafana_project, runtime, tuple(services.SERVICES))
    results = {o.service: o.result for o in report.outcomes}
    assert results == {
        "prometheus": "refused",
        "alertmanager": "refused",
        "grafana": "confirmed",
        "loki": "restarted",
        "promtail": "confirmed",
        "node-exporter": "nothing to reload",
        "cadvisor": "nothing to reload",
        "postgres-exporter": "nothing to reload",
    }
    assert report.exit_code == ExitCode.CONFIG  # worst of CONFIG (6) and FAILED (1)
    codes = {o["service"]: o["exit_code"] for o in report.to_json()["services"]}
    assert codes["alertmanager"] == ExitCode.FAILED and codes["prometheus"] == ExitCode.CONFIG
    out = shown(report, capsys)
    table, _, doc = out.partition("{")
    assert table.count("configured by flags only") == 3
    assert json.loads("{" + doc)["exit_code"] == 6
