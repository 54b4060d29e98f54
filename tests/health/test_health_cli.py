"""`monctl health` on the command line: JSON, JUnit, the table, exit codes, endpoints."""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path

import httpx
import pytest
import respx
from click.testing import CliRunner, Result
from support.health_fakes import HEALTHY, FakeStack, text

from monctl import services
from monctl.cli import cli
from monctl.project import Project


def monctl(project: Project, *args: str) -> Result:
    argv = ["--project-dir", str(project.root), "--project-name", project.name, "health", *args]
    # A wide "terminal", as in CI logs with COLUMNS set: rows are not wrapped.
    return CliRunner(env={"COLUMNS": "200"}).invoke(cli, argv, catch_exceptions=False)


def test_json_is_one_document(project: Project, fake_stack: FakeStack) -> None:
    result = monctl(project, "--json")
    assert result.exit_code == 0
    doc = json.loads(result.stdout)  # the whole of stdout, nothing else
    assert list(doc)[:3] == ["command", "ok", "exit_code"]
    assert doc["command"] == "health" and doc["exit_code"] == 0
    assert doc["ok"] is True and doc["stack_ok"] is True and doc["targets_ok"] is True
    assert [s["name"] for s in doc["services"]] == list(services.names())
    keys = {"name", "status", "state", "health", "live", "ready", "latency_ms", "detail", "url"}
    assert all(keys <= set(s) for s in doc["services"])
    assert doc["alerts"] == {"critical": 0, "warning": 0, "info": 0}
    assert doc["docker"] != "reachable"
    assert {"checked_at", "targets", "checks", "exit_code"} <= set(doc)


def test_json_unhealthy_exit_3(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.refuse("loki")
    result = monctl(project, "--json")
    assert result.exit_code == 3
    doc = json.loads(result.stdout)
    assert doc["ok"] is False
    assert [s["name"] for s in doc["services"] if s["status"] != "healthy"] == ["loki"]


@pytest.mark.parametrize(
    ("flags", "code"), [((), 4), (("--strict",), 3), (("--ignore-targets",), 0)]
)
def test_watched_target_exit_codes(
    project: Project, fake_stack: FakeStack, flags: tuple[str, ...], code: int
) -> None:
    fake_stack.answer("postgres-exporter", "/metrics", text("pg_up 0\n"))
    result = monctl(project, "--json", *flags)
    assert result.exit_code == code
    assert json.loads(result.stdout)["exit_code"] == code


def test_strict_and_ignore_targets_conflict(project: Project, fake_stack: FakeStack) -> None:
    assert monctl(project, "--strict", "--ignore-targets").exit_code == 2


def test_selected_services_only(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.refuse("grafana")
    result = monctl(project, "--json", "loki", "cadvisor")
    assert result.exit_code == 0
    assert [s["name"] for s in json.loads(result.stdout)["services"]] == ["loki", "cadvisor"]


def test_table_and_summary(project: Project, fake_stack: FakeStack) -> None:
    reason = "Ingester not ready: waiting for 15s after being ready"
    fake_stack.answer("loki", "/ready", text(reason, 503))
    result = monctl(project, "--no-deep")
    assert result.exit_code == 3
    lines = result.stdout.splitlines()
    header = next(line for line in lines if "service" in line)
    for column in ("status", "state", "live", "ready", "latency", "detail"):
        assert column in header
    (loki,) = [line for line in lines if line.strip().startswith("loki")]
    assert "not ready" in loki and "Ingester not ready" in loki
    assert lines[-1] == "UNHEALTHY: loki not ready (exit 3)"


def test_junit_report(project: Project, fake_stack: FakeStack, tmp_path: Path) -> None:
    fake_stack.refuse("cadvisor")
    fake_stack.answer("postgres-exporter", "/metrics", text("pg_up 0\n"))
    report = tmp_path / "reports" / "health.xml"
    result = monctl(project, "--junit", str(report))
    assert result.exit_code == 3
    suite = ET.parse(report).getroot().find("testsuite")
    assert suite is not None
    cases = suite.findall("testcase")
    assert suite.get("tests") == str(len(cases))
    failed = {
        (c.get("classname"), c.get("name")): c.find("failure").get("message")  # type: ignore[union-attr]
        for c in cases
        if c.find("failure") is not None
    }
    assert failed == {
        ("monctl.health.cadvisor", "liveness"): "down: connection refused",
        (
            "monctl.health.targets",
            "database",
        ): "database down: pg_up 0: the exporter cannot reach it",
    }
    assert suite.get("failures") == "2"
    names = {(c.get("classname"), c.get("name")) for c in cases}
    assert ("monctl.health.prometheus.deep", "scrape targets") in names
    assert ("monctl.health.loki", "readiness") in names
    assert ("monctl.health.node-exporter", "readiness") not in names  # it has none


def test_docker_unreachable_uses_env_ports(
    project: Project, monkeypatch: pytest.MonkeyPatch
) -> None:
    (project.root / ".env").write_text("LOKI_PORT=19311\nMONITORING_BIND_ADDRESS=0.0.0.0\n")
    with respx.mock(assert_all_mocked=True) as router:
        for path, answer in HEALTHY["loki"].items():
            router.get(f"http://127.0.0.1:19311{path}").mock(return_value=answer)
        result = monctl(project, "--json", "loki")
    doc = json.loads(result.stdout)
    assert result.exit_code == 0
    (loki,) = doc["services"]
    assert (loki["state"], loki["url"], loki["status"]) == (
        "unknown",
        "http://127.0.0.1:19311",
        "healthy",
    )
    assert "Docker" in doc["docker"] or "daemon" in doc["docker"]


def test_config_error_without_a_stack(tmp_path: Path) -> None:
    result = CliRunner().invoke(cli, ["--project-dir", str(tmp_path), "health"])
    assert isinstance(result.exception, Exception)
    assert getattr(result.exception, "exit_code", None) == 6


def test_help_documents_exit_codes() -> None:
    result = CliRunner().invoke(cli, ["health", "--help"])
    assert result.exit_code == 0
    text = " ".join(result.stdout.split())
    for line in (
        "0 success (health: every check passed)",
        "3 a stack service is down or not ready",
        "4 stack healthy, but a watched application target is down",
        "is exit 4, 3 with --strict, 0 with --ignore-targets",
    ):
        assert line in text


@pytest.mark.parametrize("fmt", [(), ("--json",)])
def test_secrets_are_not_printed(
    project: Project, fake_stack: FakeStack, tmp_path: Path, fmt: tuple[str, ...]
) -> None:

    secret = "s3cr3t-grafana-admin-pw"
    (project.root / ".env").write_text(f"GRAFANA_ADMIN_PASSWORD={secret}\n", encoding="utf-8")
    body = f"login failed for admin:{secret}"
    fake_stack.answer("grafana", "/healthz", httpx.Response(500, text=body))
    junit = tmp_path / "junit.xml"
    try:
        result = monctl(project, *fmt, "--junit", str(junit))
    finally:
        assert result.exit_code == 3
    assert "login failed for admin:****" in result.stdout
    assert secret not in result.stdout + result.stderr
    assert secret not in junit.read_text(encoding="utf-8")


def test_json_targets_ok_is_null_when_no_target_could_be_checked(
    project: Project, fake_stack: FakeStack
) -> None:
    # the targets are asked of Prometheus, the database of postgres-exporter
    fake_stack.refuse("prometheus")
    fake_stack.refuse("postgres-exporter")
    doc = json.loads(monctl(project, "--json").stdout)
    assert all(t["state"] not in ("up", "down") for t in doc["targets"]), doc["targets"]
    assert doc["targets_ok"] is None
