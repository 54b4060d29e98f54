"""config/prometheus proven by promtool (Debian's Prometheus 2.42 tools):
the config and rules load, every rule unit test passes, every alert has a
firing and a silent unit test, and the scrape jobs are the agreed ones."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from support import require_binary
from support.stack_files import (
    PROM_DIR,
    ROOT,
    alerting_rules,
    load_yaml,
    prometheus_config_copy,
    rule_files,
    rule_test_files,
)

from monctl import services
from monctl.services import application


def run(argv: list[str], cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120, check=False)


@pytest.mark.binaries
def test_promtool_check_config(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    main = prometheus_config_copy(tmp_path)
    result = run([promtool, "check", "config", str(main)])
    assert result.returncode == 0, result.stdout + result.stderr
    # every rule file was found through the rewritten /etc/prometheus/rules/*.yml
    for path in rule_files():
        assert path.name in result.stdout, result.stdout


@pytest.mark.binaries
def test_promtool_check_rules() -> None:
    promtool = require_binary("promtool")
    result = run([promtool, "check", "rules", *map(str, rule_files())])
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.binaries
@pytest.mark.parametrize("test_file", rule_test_files(), ids=lambda p: p.name)
def test_promtool_test_rules(test_file: Path) -> None:
    promtool = require_binary("promtool")
    result = run([promtool, "test", "rules", test_file.name], cwd=test_file.parent)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "SUCCESS" in result.stdout


def _unit_test_cases() -> dict[str, dict[str, int]]:
    """alertname -> {"firing": n, "silent": n} over every promtool test file."""
    cases: dict[str, dict[str, int]] = {}
    for path in rule_test_files():
        data = load_yaml(path)
        assert isinstance(data, dict)
        for test in data.get("tests", []):
            for case in test.get("alert_rule_test", []):
                counts = cases.setdefault(case["alertname"], {"firing": 0, "silent": 0})
                counts["firing" if case.get("exp_alerts") else "silent"] += 1
    return cases


def test_every_alert_has_firing_and_silent_unit_tests() -> None:
    cases = _unit_test_cases()
    names = sorted({rule["alert"] for _, rule in alerting_rules()})
    assert names, "no alerting rules found"
    lacking = [n for n in names if cases.get(n, {}).get("firing", 0) < 1 or cases[n]["silent"] < 1]
    assert not lacking, f"alerts without a firing and a silent promtool test: {lacking}"
    unknown = sorted(set(cases) - set(names))
    assert not unknown, f"unit tests for alerts that do not exist: {unknown}"


REQUIRED_ALERTS = {
    "APIServiceDown",
    "HighErrorRate",
    "HighLatencyP95",
    "ACGMEComplianceViolations",
    "HighCPUUsage",
    "HighMemoryUsage",
    "DiskSpaceWarning",
    "ContainerRestarting",
    "PostgreSQLDown",
    "PostgreSQLHighConnections",
    "PostgreSQLSlowQueries",
    "PostgreSQLDeadlocks",
    "PrometheusConfigReloadFailed",
    "AlertmanagerConfigReloadFailed",
    "TargetDown",
    "PrometheusRuleEvaluationFailures",
    "AlertmanagerNotificationsFailing",
    "BackupTooOld",
    "BackupFailed",
    "BackupDrillTooOld",
    "BackupNeverDrilled",
}


def test_the_designed_alerts_exist() -> None:
    names = {rule["alert"] for _, rule in alerting_rules()}
    assert names >= REQUIRED_ALERTS, sorted(REQUIRED_ALERTS - names)


def test_every_alert_has_severity_summary_description_runbook() -> None:
    problems = []
    for path, rule in alerting_rules():
        where = f"{path.name}:{rule['alert']}"
        if rule.get("labels", {}).get("severity") not in ("critical", "warning", "info"):
            problems.append(f"{where}: severity must be critical, warning or info")
        annotations = rule.get("annotations", {})
        for key in ("summary", "description", "runbook"):
            if not str(annotations.get(key, "")).strip():
                problems.append(f"{where}: no {key} annotation")
        if "$value" not in str(annotations.get("description", "")):
            problems.append(f"{where}: the description does not show the value")
    assert not problems, "\n".join(problems)


def test_alerts_from_backend_metrics_are_muted_by_api_service_down() -> None:
    """Rules on the backend's metrics carry source="backend", which the
    APIServiceDown inhibition in alertmanager.yml targets."""
    wrong = []
    for _, rule in alerting_rules():
        on_backend = re.search(r'job="backend(-export)?"', rule["expr"]) is not None
        if rule["alert"] == "APIServiceDown" or not on_backend:
            continue
        if rule.get("labels", {}).get("source") != "backend":
            wrong.append(rule["alert"])
    assert not wrong, f"backend-derived alerts without source=backend: {wrong}"


def test_scrape_jobs_match_the_declarations_and_never_scrape_health() -> None:
    config = load_yaml(PROM_DIR / "prometheus.yml")
    assert isinstance(config, dict)
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    expected = set(services.names()) | set(application.WATCHED_JOBS)
    assert set(jobs) == expected
    for service in services.SERVICES:
        targets = [t for sc in jobs[service.name]["static_configs"] for t in sc["targets"]]
        assert targets == [f"{service.name}:{service.container_port}"], service.name
    assert jobs["backend"].get("metrics_path", "/metrics") == "/metrics"
    assert jobs["backend-export"]["metrics_path"] == "/api/v1/metrics/export"
    for job in jobs.values():
        assert "health" not in job.get("metrics_path", "/metrics"), job["job_name"]
    am = config["alerting"]["alertmanagers"][0]["static_configs"][0]["targets"]
    assert am == ["alertmanager:9093"]


@pytest.mark.parametrize(
    "path",
    [
        PROM_DIR / "prometheus.yml",
        *rule_files(),
        ROOT / "config" / "alertmanager" / "alertmanager.yml",
        ROOT / "config" / "loki" / "loki-config.yml",
        ROOT / "config" / "promtail" / "promtail-config.yml",
    ],
    ids=lambda p: p.name,
)
def test_no_environment_placeholders(path: Path) -> None:
    """None of these programs expands ${VAR} here: such text would be used literally."""
    # comments may explain the rule; only the values count
    text = "\n".join(
        line.split(" #")[0]
        for line in path.read_text(encoding="utf-8").splitlines()
        if not line.lstrip().startswith("#")
    )
    assert not re.search(r"\$\{?[A-Z_][A-Z0-9_]*\}?", text), f"{path} holds a ${{VAR}} placeholder"
