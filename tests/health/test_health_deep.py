"""Deep checks: scrape targets, rules, reloads, notifications, firing alerts (respx)."""

from __future__ import annotations

import httpx
from support.health_fakes import AM_METRICS, FakeStack, as_json, prom_targets, text

from monctl import services
from monctl.errors import ExitCode
from monctl.health import check as health
from monctl.health.report import HealthReport
from monctl.project import Project
from monctl.runtime.compose import ComposeRuntime
from monctl.services.answers import Check


def run(project: Project, *names: str, deep: bool = True) -> HealthReport:
    return health.check(
        project, ComposeRuntime(project), services.select(list(names)), deep=deep, probe_timeout=5
    )


def check_named(report: HealthReport, service: str, name: str) -> Check:
    (found,) = [c for c in report.checks if (c.service, c.name) == (service, name)]
    return found


def test_healthy_deep_checks(project: Project, fake_stack: FakeStack) -> None:
    report = run(project)
    assert [(c.service, c.name, c.ok) for c in report.checks] == [
        ("prometheus", "scrape targets", True),
        ("prometheus", "rule evaluation", True),
        ("prometheus", "config reload", True),
        ("alertmanager", "config reload", True),
        ("alertmanager", "notifications", True),
    ]
    assert check_named(report, "prometheus", "rule evaluation").detail == "1 rules evaluating"
    watched = {(t.name, t.instance, t.state) for t in report.targets if t.source == "prometheus"}
    assert watched == {("backend", "backend:8000", "up"), ("backend-export", "backend:8000", "up")}
    assert report.alerts == {"critical": 0, "warning": 0, "info": 0}
    assert report.exit_code == ExitCode.OK


def test_down_stack_target_is_named(project: Project, fake_stack: FakeStack) -> None:
    targets = prom_targets(
        ("prometheus", "prometheus:9090", "up", ""),
        ("loki", "loki:3100", "down", 'Get "http://loki:3100/metrics": connection refused'),
        ("cadvisor", "cadvisor:8080", "unknown", ""),
        ("backend", "backend:8000", "up", ""),
    )
    fake_stack.answer("prometheus", "/api/v1/targets", as_json(targets))
    report = run(project, "prometheus")
    scrape = check_named(report, "prometheus", "scrape targets")
    assert not scrape.ok
    assert scrape.detail.startswith("down: loki (loki:3100: Get ")
    assert "cadvisor" not in scrape.detail  # not scraped yet is not down
    assert report.exit_code == ExitCode.UNHEALTHY
    assert "prometheus scrape targets" in report.summary()


def test_pending_targets_are_not_down(project: Project, fake_stack: FakeStack) -> None:
    targets = prom_targets(
        ("prometheus", "prometheus:9090", "up", ""), ("backend", "backend:8000", "unknown", "")
    )
    fake_stack.answer("prometheus", "/api/v1/targets", as_json(targets))
    report = run(project, "prometheus")
    assert [(t.name, t.state, t.detail) for t in report.targets] == [
        ("backend", "unknown", "not scraped yet")
    ]
    assert report.ok and report.exit_code == ExitCode.OK


def test_watched_backend_down_is_its_own_exit_code(project: Project, fake_stack: FakeStack) -> None:
    error = 'Get "http://backend:8000/metrics": dial tcp: lookup backend: no such host'
    targets = prom_targets(
        ("prometheus", "prometheus:9090", "up", ""),
        ("backend", "backend:8000", "down", error),
        ("backend-export", "backend:8000", "up", ""),
    )
    fake_stack.answer("prometheus", "/api/v1/targets", as_json(targets))
    report = run(project)
    assert report.stack_ok and not report.targets_ok
    assert check_named(report, "prometheus", "scrape targets").ok
    (down,) = [t for t in report.targets if t.state == "down"]
    assert (down.name, down.instance, down.detail) == ("backend", "backend:8000", error)
    assert report.exit_code == ExitCode.TARGETS_DOWN
    assert report.summary() == "STACK HEALTHY, watched targets down: backend (exit 4)"
    assert report.with_policy(strict=True).exit_code == ExitCode.UNHEALTHY


def test_rule_evaluation_failure(project: Project, fake_stack: FakeStack) -> None:
    error = "vector contains metrics with the same labelset after applying rule labels"
    rules = {
        "status": "success",
        "data": {
            "groups": [
                {"name": "g", "rules": [{"name": "ok_rule", "health": "ok", "lastError": ""}]},
                {"name": "h", "rules": [{"name": "dup", "health": "err", "lastError": error}]},
            ]
        },
    }
    fake_stack.answer("prometheus", "/api/v1/rules", as_json(rules))
    report = run(project, "prometheus")
    rule = check_named(report, "prometheus", "rule evaluation")
    assert (rule.ok, rule.detail) == (False, f"dup: {error}")
    assert report.exit_code == ExitCode.UNHEALTHY


def test_prometheus_reload_failed(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.answer(
        "prometheus", "/metrics", text("prometheus_config_last_reload_successful 0\n")
    )
    reload = check_named(run(project, "prometheus"), "prometheus", "config reload")
    assert (reload.ok, reload.detail) == (False, "last reload FAILED: still running the old config")


def test_reload_metric_missing_is_not_assumed_fine(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.answer("prometheus", "/metrics", text("go_goroutines 1\n"))
    reload = check_named(run(project, "prometheus"), "prometheus", "config reload")
    assert not reload.ok
    assert "prometheus_config_last_reload_successful missing" in reload.detail


def test_alertmanager_reload_failed(project: Project, fake_stack: FakeStack) -> None:
    metrics = AM_METRICS.replace("reload_successful 1", "reload_successful 0")
    fake_stack.answer("alertmanager", "/metrics", text(metrics))
    report = run(project, "alertmanager")
    assert not check_named(report, "alertmanager", "config reload").ok
    assert report.exit_code == ExitCode.UNHEALTHY


def test_failed_notifications_warn_without_gating(project: Project, fake_stack: FakeStack) -> None:
    metrics = AM_METRICS.replace(
        'failed_total{integration="slack"} 0', 'failed_total{integration="slack"} 2'
    )
    metrics += 'alertmanager_notifications_failed_total{integration="email"} 1\n'
    fake_stack.answer("alertmanager", "/metrics", text(metrics))
    report = run(project, "alertmanager")
    notes = check_named(report, "alertmanager", "notifications")
    assert (notes.ok, notes.severity) == (False, "warning")
    assert notes.detail == "3 of 3 notifications failed since Alertmanager started"
    assert report.exit_code == ExitCode.OK


def test_firing_alerts_by_severity_from_alertmanager(
    project: Project, fake_stack: FakeStack
) -> None:
    alerts = [
        {"labels": {"alertname": "BackendDown", "severity": "critical"}},
        {"labels": {"alertname": "DiskFilling", "severity": "warning"}},
        {"labels": {"alertname": "Watchdog"}},
    ]
    fake_stack.answer("alertmanager", "/api/v2/alerts", as_json(alerts))
    prom_alerts = {"status": "success", "data": {"alerts": []}}
    fake_stack.answer("prometheus", "/api/v1/alerts", as_json(prom_alerts))
    report = run(project)
    assert report.alerts == {"critical": 1, "warning": 1, "info": 0, "none": 1}
    assert report.exit_code == ExitCode.OK  # alerts are reported, not judged


def test_firing_alerts_from_prometheus_without_alertmanager(
    project: Project, fake_stack: FakeStack
) -> None:
    doc = {
        "status": "success",
        "data": {
            "alerts": [
                {"labels": {"severity": "critical"}, "state": "firing"},
                {"labels": {"severity": "critical"}, "state": "pending"},
            ]
        },
    }
    fake_stack.answer("prometheus", "/api/v1/alerts", as_json(doc))
    assert run(project, "prometheus").alerts == {"critical": 1, "warning": 0, "info": 0}


def test_malformed_json_fails_the_check(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.answer("prometheus", "/api/v1/targets", text("<html>proxy error</html>"))
    report = run(project, "prometheus")
    scrape = check_named(report, "prometheus", "scrape targets")
    assert not scrape.ok
    assert scrape.detail == (
        "cannot tell: http://prometheus.test/api/v1/targets?state=active answered malformed JSON"
    )
    assert report.exit_code == ExitCode.UNHEALTHY


def test_deep_endpoint_errors_fail_the_check(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.answer("prometheus", "/api/v1/rules", text("Service Unavailable", 503))
    fake_stack.fail("alertmanager", "/api/v2/alerts", httpx.ReadTimeout("slow"))
    report = run(project, "prometheus", "alertmanager")
    assert "answered 503" in check_named(report, "prometheus", "rule evaluation").detail
    assert "timed out" in check_named(report, "alertmanager", "alerts").detail
    assert report.exit_code == ExitCode.UNHEALTHY


def test_no_deep_asks_nothing_deep(project: Project, fake_stack: FakeStack) -> None:
    targets = fake_stack.route("prometheus", "/api/v1/targets")
    am_alerts = fake_stack.route("alertmanager", "/api/v2/alerts")
    report = run(project, deep=False)
    assert report.checks == () and report.alerts is None
    assert not targets.called and not am_alerts.called
    assert [(t.name, t.source) for t in report.targets] == [
        ("database", "postgres-exporter (pg_up)")
    ]


def test_a_dead_service_gets_no_deep_noise(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.refuse("prometheus")
    report = run(project, "prometheus")
    assert report.checks == ()
    assert report.services[0].status == "down"
