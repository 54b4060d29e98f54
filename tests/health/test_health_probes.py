"""Liveness and readiness answers of every component, read the way endpoints.md documents."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable

import httpx
import pytest
from support.health_fakes import HEALTHY, FakeStack, as_json, text

from monctl import services
from monctl.errors import ExitCode
from monctl.health import check as health
from monctl.health.report import HealthReport, ServiceHealth
from monctl.project import Project
from monctl.runtime.compose import ComposeRuntime


def run(project: Project, *names: str, deep: bool = True, timeout: float = 5.0) -> HealthReport:
    return health.check(
        project,
        ComposeRuntime(project),
        services.select(list(names)),
        deep=deep,
        probe_timeout=timeout,
    )


def row(report: HealthReport, name: str) -> ServiceHealth:
    (found,) = [s for s in report.services if s.name == name]
    return found


def test_every_service_healthy(project: Project, fake_stack: FakeStack) -> None:
    report = run(project)
    assert [s.name for s in report.services] == list(services.names())
    assert {s.status for s in report.services} == {"healthy"}
    assert all(s.live for s in report.services)
    assert report.ok and report.stack_ok and report.targets_ok
    assert report.exit_code == ExitCode.OK
    assert row(report, "grafana").detail == "version 11.3.0"
    assert row(report, "prometheus").url == "http://prometheus.test"
    # Services without a readiness endpoint are not claimed ready: they have none.
    assert row(report, "node-exporter").ready is None
    assert row(report, "cadvisor").ready is None
    assert {s.state for s in report.services} == {"unknown"}  # Docker is not reachable here
    assert report.docker is not None


@pytest.mark.parametrize("name", services.names())
def test_refused_is_down_never_skipped(project: Project, fake_stack: FakeStack, name: str) -> None:
    fake_stack.refuse(name)
    report = run(project)
    bad = row(report, name)
    assert (bad.status, bad.live, bad.ready) == ("down", False, False)
    assert bad.detail == "connection refused"
    assert [s.name for s in report.services if not s.ok] == [name]
    assert report.exit_code == ExitCode.UNHEALTHY
    assert f"{name} down" in report.summary()


def test_dns_failure_is_down(project: Project, fake_stack: FakeStack) -> None:
    error = httpx.ConnectError("[Errno -2] Name or service not known")
    fake_stack.fail("loki", "/metrics", error)
    fake_stack.fail("loki", "/ready", error)
    report = run(project, "loki")
    assert (row(report, "loki").status, row(report, "loki").detail) == ("down", "DNS lookup failed")
    assert report.exit_code == ExitCode.UNHEALTHY


def test_read_timeout_is_down(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.fail("cadvisor", "/healthz", httpx.ReadTimeout("timed out"))
    report = run(project, "cadvisor", timeout=3)
    assert row(report, "cadvisor").status == "down"
    assert row(report, "cadvisor").detail == "timed out after 3s"


@pytest.mark.timeout(30)
def test_a_server_that_never_answers_is_cut_off(project: Project, fake_stack: FakeStack) -> None:
    async def never(request: httpx.Request) -> httpx.Response:
        await asyncio.Event().wait()  # without the probe timeout this test hangs
        raise AssertionError("unreachable")

    fake_stack.fail("node-exporter", "/metrics", never)
    report = run(project, "node-exporter", "cadvisor", timeout=0.3)
    assert row(report, "node-exporter").status == "down"
    assert row(report, "node-exporter").detail == "timed out after 0.3s"
    assert row(report, "cadvisor").status == "healthy"


def test_all_probes_are_in_flight_at_once(project: Project, fake_stack: FakeStack) -> None:
    in_flight = 0
    most = 0

    def slowly(answer: httpx.Response) -> Callable[[httpx.Request], Awaitable[httpx.Response]]:
        async def slow(request: httpx.Request) -> httpx.Response:
            nonlocal in_flight, most
            in_flight += 1
            most = max(most, in_flight)
            await asyncio.sleep(0.2)
            in_flight -= 1
            return answer

        return slow

    for name in services.names():
        path = services.get(name).liveness.path
        fake_stack.fail(name, path, slowly(HEALTHY[name][path]))
    report = run(project, deep=False)
    assert report.stack_ok
    # One liveness request per service, all waiting at the same time: the check
    # costs the slowest probe, not the sum.
    assert most == len(services.names())


def test_postgres_exporter_metrics_fetched_once(project: Project, fake_stack: FakeStack) -> None:
    route = fake_stack.answer("postgres-exporter", "/metrics", text("pg_up 1\n"))
    run(project, "postgres-exporter")
    assert route.call_count == 1


# -- Prometheus -----------------------------------------------------------------


def test_prometheus_starting(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.answer("prometheus", "/-/ready", text("Service Unavailable", 503))
    report = run(project, "prometheus", deep=False)
    p = row(report, "prometheus")
    assert (p.status, p.live, p.ready) == ("not ready", True, False)
    assert p.detail == "starting (503 Service Unavailable)"
    assert report.exit_code == ExitCode.UNHEALTHY


def test_prometheus_3_starting_says_it_is_not_stopping(
    project: Project, fake_stack: FakeStack
) -> None:
    # Prometheus 3 (web.go testReady) sends the header while starting too, as "false"
    response = text("Service Unavailable", 503, **{"X-Prometheus-Stopping": "false"})
    fake_stack.answer("prometheus", "/-/ready", response)
    p = row(run(project, "prometheus", deep=False), "prometheus")
    assert p.detail == "starting (503 Service Unavailable)"


def test_prometheus_stopping(project: Project, fake_stack: FakeStack) -> None:
    response = text("Service Unavailable", 503, **{"X-Prometheus-Stopping": "true"})
    fake_stack.answer("prometheus", "/-/ready", response)
    assert row(run(project, "prometheus", deep=False), "prometheus").detail.startswith("stopping")


def test_liveness_error_status_is_unhealthy(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.answer("prometheus", "/-/healthy", text("boom", 500))
    p = row(run(project, "prometheus"), "prometheus")
    assert (p.status, p.live) == ("unhealthy", False)
    assert p.detail == "liveness answered 500: boom"


def test_alertmanager_ready_503(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.answer("alertmanager", "/-/ready", text("not ready yet", 503))
    a = row(run(project, "alertmanager", deep=False), "alertmanager")
    assert (a.status, a.detail) == ("not ready", "readiness answered 503: not ready yet")


# -- Grafana ----------------------------------------------------------------------


def test_grafana_database_failing_503(project: Project, fake_stack: FakeStack) -> None:
    doc = {"database": "failing", "version": "11.3.0"}
    fake_stack.answer("grafana", "/api/health", as_json(doc, 503))
    g = row(run(project, "grafana"), "grafana")
    assert (g.status, g.live, g.ready) == ("unhealthy", True, False)
    assert g.detail == "database: failing (503)"


def test_grafana_database_failing_with_200(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.answer("grafana", "/api/health", as_json({"database": "failing"}))
    report = run(project, "grafana")
    assert row(report, "grafana").status == "unhealthy"
    assert report.exit_code == ExitCode.UNHEALTHY


@pytest.mark.parametrize("body", ["<html>login</html>", "{not json", "[1, 2]"])
def test_grafana_malformed_json(project: Project, fake_stack: FakeStack, body: str) -> None:
    fake_stack.answer("grafana", "/api/health", text(body))
    g = row(run(project, "grafana"), "grafana")
    assert g.status == "unhealthy"
    assert "without JSON" in g.detail


def test_grafana_redirect_to_login_is_not_healthy(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.answer("grafana", "/healthz", httpx.Response(302, headers={"Location": "/login"}))
    fake_stack.answer("grafana", "/login", text("<html>login</html>"))
    g = row(run(project, "grafana"), "grafana")
    assert (g.status, g.live) == ("unhealthy", False)
    assert "redirected (302) to /login" in g.detail


def test_readiness_redirect_is_not_ready(project: Project, fake_stack: FakeStack) -> None:
    moved = httpx.Response(301, headers={"Location": "http://elsewhere.test/ready"})
    fake_stack.answer("loki", "/ready", moved)
    loki = row(run(project, "loki"), "loki")
    assert (loki.status, loki.live, loki.ready) == ("not ready", True, False)
    assert "redirected (301)" in loki.detail


# -- Loki and Promtail ---------------------------------------------------------------


def test_loki_ramp_up(project: Project, fake_stack: FakeStack) -> None:
    reason = "Ingester not ready: waiting for 15s after being ready"
    fake_stack.answer("loki", "/ready", text(reason + "\n", 503))
    loki = row(run(project, "loki"), "loki")
    assert (loki.status, loki.live, loki.ready, loki.detail) == ("not ready", True, False, reason)


def test_promtail_no_logs_to_tail(project: Project, fake_stack: FakeStack) -> None:
    body = (
        "Not ready: Unable to find any logs to tail. Please verify permissions, "
        "volumes, scrape_config, etc."
    )
    fake_stack.answer("promtail", "/ready", text(body, 500))
    report = run(project, "promtail")
    p = row(report, "promtail")
    assert (p.status, p.live, p.ready) == ("not ready", True, False)
    assert p.detail.startswith("no logs to tail")
    assert report.exit_code == ExitCode.UNHEALTHY


def test_promtail_other_500(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.answer("promtail", "/ready", text("Not ready: positions file unwritable", 500))
    assert (
        row(run(project, "promtail"), "promtail").detail == "Not ready: positions file unwritable"
    )


def test_readiness_timeout_with_live_service(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.fail("loki", "/ready", httpx.ConnectTimeout("timed out"))
    loki = row(run(project, "loki", timeout=2), "loki")
    assert (loki.status, loki.live, loki.ready) == ("not ready", True, False)
    assert loki.detail == "readiness: timed out after 2s"


# -- postgres-exporter: pg_up is the database, a watched target ------------------------


def test_pg_up_1(project: Project, fake_stack: FakeStack) -> None:
    report = run(project, "postgres-exporter")
    assert row(report, "postgres-exporter").status == "healthy"
    assert [(t.name, t.state) for t in report.targets] == [("database", "up")]
    assert report.exit_code == ExitCode.OK


def test_pg_up_0_is_a_watched_target_down(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.answer("postgres-exporter", "/metrics", text("# TYPE pg_up gauge\npg_up 0\n"))
    report = run(project)
    exporter = row(report, "postgres-exporter")
    assert (exporter.status, exporter.live, exporter.ready) == ("degraded", True, True)
    assert exporter.detail == "exporter up, database unreachable"
    assert report.stack_ok and not report.targets_ok and not report.ok
    assert [(t.name, t.state) for t in report.targets if t.state == "down"] == [
        ("database", "down")
    ]
    assert report.exit_code == ExitCode.TARGETS_DOWN
    assert report.with_policy(strict=True).exit_code == ExitCode.UNHEALTHY
    assert report.with_policy(ignore_targets=True).exit_code == ExitCode.OK


def test_pg_up_missing(project: Project, fake_stack: FakeStack) -> None:
    fake_stack.answer("postgres-exporter", "/metrics", text("go_goroutines 8\n"))
    report = run(project, "postgres-exporter")
    exporter = row(report, "postgres-exporter")
    assert (exporter.status, exporter.live, exporter.ready) == ("not ready", True, False)
    assert exporter.detail == "/metrics carries no pg_up"
    assert [(t.name, t.state) for t in report.targets] == [("database", "unknown")]
    assert report.exit_code == ExitCode.UNHEALTHY


def test_exporter_down_says_nothing_about_the_database(
    project: Project, fake_stack: FakeStack
) -> None:
    fake_stack.refuse("postgres-exporter")
    report = run(project, "postgres-exporter")
    assert report.targets == ()  # unknown, not "down": the exporter is what is broken
    assert report.exit_code == ExitCode.UNHEALTHY


@pytest.mark.timeout(30)
def test_a_failure_inside_the_probe_loop_stops_the_other_probes_quietly(
    project: Project,
    fake_stack: FakeStack,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    """When one service's probe fails outright while the others start theirs, the error
    comes out once; the other probes are cancelled, not left to die on a closed client
    (asyncio's "unhandled exception during asyncio.run() shutdown")."""
    from monctl.errors import OperationFailed

    async def no_containers(self: ComposeRuntime) -> tuple[dict[str, object], None]:
        return {}, None

    def host_urls(self: ComposeRuntime, service: object, state: object) -> list[str]:
        if service is services.get("loki"):
            raise OperationFailed("the runtime broke")
        return [fake_stack.url(getattr(service, "name", ""))]

    for name in ("loki", "cadvisor", "prometheus"):  # all three wait for the runtime
        monkeypatch.delenv(services.get(name).url_var)
    monkeypatch.setattr(ComposeRuntime, "states_async", no_containers)
    monkeypatch.setattr(ComposeRuntime, "host_urls", host_urls)
    caplog.set_level("DEBUG", logger="asyncio")
    with pytest.raises(OperationFailed):
        run(project, "cadvisor", "loki", "prometheus")
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING], caplog.text
