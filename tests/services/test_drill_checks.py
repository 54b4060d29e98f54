"""Each service's drill check (declared in its module) reads real-shaped answers right:
usable data passes, missing data fails with a reason. The answers are those of the
upstream APIs (Prometheus query_range, Grafana /api/search, Loki query_range,
Alertmanager /api/v2/silences), given here as a fake at the outer edge; the drill
against the real engine is tests/e2e/test_drill.py."""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from monctl import services
from monctl.backup.reports import DrillReport, DrillService
from monctl.errors import ExitCode
from monctl.services import alertmanager, grafana
from monctl.services.answers import Check, Fetched

NOW = float(int(time.time()))  # whole seconds: the queries print 3 decimals


@dataclass
class Ask:
    """A DrillAsk answering from a table: path -> (status, body)."""

    answers: dict[str, tuple[int | None, Any]]
    facts: Mapping[str, Any] = field(default_factory=dict)
    window: tuple[float, float] = (NOW - 60, NOW - 30)
    service: str = "x"
    settings: dict[str, str] = field(default_factory=dict)
    asked: list[tuple[str, Mapping[str, str] | None, tuple[str, str] | None]] = field(
        default_factory=list
    )

    def get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Fetched:
        self.asked.append((path, params, auth))
        status, body = self.answers[path]
        if callable(body):  # an answer that depends on the query
            body = body(params or {})
        if status is None:
            return Fetched(path, None, error=str(body))
        text = body if isinstance(body, str) else json.dumps(body)
        return Fetched(path, status, text)

    def setting(self, name: str, default: str = "") -> str:
        return self.settings.get(name, default)


def drill_of(name: str) -> Any:
    declared = services.get(name).drill
    assert declared is not None
    return declared


def oks(checks: tuple[Check, ...]) -> list[tuple[str, bool]]:
    return [(c.name, c.ok) for c in checks]


def test_every_service_with_data_declares_a_drill() -> None:
    for service in services.with_data():
        assert service.drill is not None, service.name
    assert any(s.http_client for s in services.SERVICES), "nothing can reach the drill's services"


def _vector(counts: dict[str, int]) -> dict[str, Any]:
    """Prometheus' answer to count_over_time(up[1h]): one sample count per target."""
    rows = [{"metric": {"job": job, "instance": f"{job}:9100"}, "value": [NOW, str(n)]}
            for job, n in counts.items()]  # fmt: skip
    return {"status": "success", "data": {"resultType": "vector", "result": rows}}


def test_prometheus_records_samples_and_the_drill_needs_every_one_back() -> None:
    prometheus = drill_of("prometheus")
    at_backup = Ask({"/api/v1/query": (200, _vector({"node": 240, "app": 238}))})
    facts = prometheus.record(at_backup)
    _, params, _ = at_backup.asked[0]
    assert params == {"query": "count_over_time(up[1h])", "time": f"{at_backup.window[1]:.3f}"}
    assert [row["samples"] for row in facts["series"]] == [238, 240]
    facts = json.loads(json.dumps(facts))  # as the manifest keeps them

    restored = Ask({"/api/v1/query": (200, _vector({"node": 241, "app": 238}))}, facts)
    (check,) = prometheus.check(restored)
    assert check.ok and "every one of the 2 series the backup recorded" in check.detail
    _, params, _ = restored.asked[0]
    assert params is not None and params["time"] == f"{at_backup.window[1]:.3f}"  # same hour

    # Most of the data lost: one series with a sample left is not enough.
    lost = Ask({"/api/v1/query": (200, _vector({"node": 1, "app": 238}))}, facts)
    (check,) = prometheus.check(lost)
    assert not check.ok and "holds 1 of 240" in check.detail
    gone = Ask({"/api/v1/query": (200, _vector({}))}, facts)
    assert not prometheus.check(gone)[0].ok


def test_prometheus_of_a_quiet_stack_has_nothing_to_compare_and_passes() -> None:
    prometheus = drill_of("prometheus")
    quiet = prometheus.record(Ask({"/api/v1/query": (200, _vector({}))}))
    assert quiet["series"] == []
    (check,) = prometheus.check(Ask({"/api/v1/query": (200, _vector({}))}, quiet))
    assert check.ok and "nothing to compare" in check.detail
    (check,) = prometheus.check(Ask({"/api/v1/query": (200, _vector({}))}))  # an older backup
    assert check.ok and "nothing to compare" in check.detail
    (check,) = prometheus.check(Ask({"/api/v1/query": (None, "bad address")}))
    assert not check.ok and "bad address" in check.detail


def test_a_malformed_prometheus_record_fails_the_check() -> None:
    prometheus = drill_of("prometheus")
    answer = {"/api/v1/query": (200, _vector({"node": 240}))}
    at = int((NOW - 30) * 1e9)
    for facts in (
        {"series": [{"series": "{}", "samples": 1e400}], "samples_at_ns": at},
        {"series": [{"series": "{}", "samples": -1}], "samples_at_ns": at},
        {"series": [], "samples_at_ns": 10**30},  # not the backup's time
        {"series": "all of them", "samples_at_ns": at},
    ):
        (check,) = prometheus.check(Ask(answer, facts))
        assert not check.ok and "record is unusable" in check.detail, facts


def _health(database: str = "ok") -> tuple[int, dict[str, str]]:
    return (200 if database == "ok" else 503), {"database": database, "version": "13.2.3"}


def test_grafana_lists_every_dashboard_the_backup_recorded() -> None:
    hits = [{"uid": "overview", "type": "dash-db"}, {"uid": "system-metrics", "type": "dash-db"}]
    answers = {"/api/health": _health(), "/api/search": (200, hits)}
    settings = {"GRAFANA_ADMIN_USER": "boss", "GRAFANA_ADMIN_PASSWORD": "pw"}
    ask = Ask(answers, {"dashboards": ["overview", "system-metrics"]}, settings=settings)
    assert oks(drill_of("grafana").check(ask)) == [("database", True), ("dashboards", True)]
    assert ("/api/search", {"type": "dash-db", "limit": "5000"}, ("boss", "pw")) in ask.asked

    lost = Ask(answers, {"dashboards": ["overview", "gone-1", "gone-2"]})
    database, dashboards = drill_of("grafana").check(lost)
    assert database.ok and not dashboards.ok
    assert dashboards.detail.startswith("2 of the 3 dashboards the backup had are missing")

    refused = Ask({"/api/health": _health(), "/api/search": (401, {"message": "no"})})
    _, dashboards = drill_of("grafana").check(refused)
    assert not dashboards.ok and "refused the admin credentials" in dashboards.detail

    broken = Ask({"/api/health": _health("failing"), "/api/search": (200, [])}, {})
    database, dashboards = drill_of("grafana").check(broken)
    assert not database.ok and dashboards.ok and "recorded none" in dashboards.detail


def test_grafana_records_what_it_lists_and_says_when_it_cannot() -> None:
    hits = [{"uid": u} for u in ("b", "a", "a")]
    assert grafana.record(Ask({"/api/search": (200, hits)})) == {
        "dashboards": ["a", "b"],
        "dashboard_count": 2,
    }
    try:
        grafana.record(Ask({"/api/search": (401, {})}))
    except ValueError as exc:
        assert "refused the admin credentials" in str(exc)
    else:
        raise AssertionError("a refused search must not record an empty list")


def _streams(lines: dict[str, int]) -> Any:
    """Loki's answer to a query_range: ``lines`` per service_name, the selector honoured."""

    def answer(params: Mapping[str, str]) -> dict[str, Any]:
        query = params["query"]
        result = [
            {"stream": {"service_name": name, "job": name},
             "values": [[str(int(NOW * 1e9) - i), f"line {i}"] for i in range(count)]}
            for name, count in lines.items()
            if count and (query == '{service_name=~".+"}' or f'"{name}"' in query)
        ]  # fmt: skip
        return {"status": "success", "data": {"resultType": "streams", "result": result}}

    return answer


def test_loki_records_lines_and_the_drill_needs_every_one_back() -> None:
    loki = drill_of("loki")
    at_backup = Ask({"/loki/api/v1/query_range": (200, _streams({"app": 30, "drill": 1}))})
    facts = json.loads(json.dumps(loki.record(at_backup)))
    assert facts["streams"] == [
        {"service_name": "app", "lines": 30},
        {"service_name": "drill", "lines": 1},
    ]
    _, params, _ = at_backup.asked[1]
    assert params is not None and params["query"] == '{service_name="app"}'
    assert int(params["end"]) - int(params["start"]) == 3600 * 10**9

    restored = Ask({"/loki/api/v1/query_range": (200, _streams({"app": 31, "drill": 1}))}, facts)
    (check,) = loki.check(restored)
    assert check.ok and "every line of the 2 streams the backup recorded" in check.detail
    assert {p["end"] for _, p, _ in restored.asked if p} == {str(facts["lines_end_ns"])}

    # Most of the data lost: one line left is not enough.
    lost = Ask({"/loki/api/v1/query_range": (200, _streams({"app": 1, "drill": 1}))}, facts)
    (check,) = loki.check(lost)
    assert not check.ok and "holds 1 of 30" in check.detail


def test_loki_of_a_quiet_stack_has_nothing_to_compare_and_passes() -> None:
    loki = drill_of("loki")
    quiet = loki.record(Ask({"/loki/api/v1/query_range": (200, _streams({}))}))
    assert quiet["streams"] == []
    (check,) = loki.check(Ask({"/loki/api/v1/query_range": (200, _streams({}))}, quiet))
    assert check.ok and "nothing to compare" in check.detail
    (check,) = loki.check(Ask({"/loki/api/v1/query_range": (200, _streams({}))}))
    assert check.ok and "nothing to compare" in check.detail
    (check,) = loki.check(Ask({"/loki/api/v1/query_range": (503, "not ready")}))
    assert not check.ok and "cannot tell" in check.detail
    bad = {"streams": [{"service_name": "app", "lines": 10**9}], "lines_end_ns": int(NOW * 1e9)}
    (check,) = loki.check(Ask({"/loki/api/v1/query_range": (200, _streams({}))}, bad))
    assert not check.ok and "record is unusable" in check.detail


def _silence(sid: str, state: str, ends: float, updated: float) -> dict[str, Any]:
    def iso(t: float) -> str:
        return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(t)) + ".123456789Z"

    return {"id": sid, "status": {"state": state}, "endsAt": iso(ends), "updatedAt": iso(updated)}


def test_alertmanager_loads_the_silences_the_backup_recorded() -> None:
    live = [
        _silence("old-enough", "active", NOW + 86400, NOW - 3600),
        _silence("just-made", "active", NOW + 86400, NOW - 5),  # maybe not on disk yet
        _silence("expired", "expired", NOW - 60, NOW - 7200),
    ]
    facts = alertmanager.record(Ask({"/api/v2/silences": (200, live)}, window=(NOW, NOW)))
    assert [s["id"] for s in facts["silences"]] == ["old-enough"]

    restored = Ask({"/api/v2/silences": (200, live)}, facts)
    (check,) = drill_of("alertmanager").check(restored)
    assert check.ok and "every one of the 1" in check.detail
    (check,) = drill_of("alertmanager").check(Ask({"/api/v2/silences": (200, [])}, facts))
    assert not check.ok and "1 of the 1 silences the backup had are missing" in check.detail

    aged_out = {"silences": [{"id": "long-gone", "endsAt": "2020-01-01T00:00:00Z"}]}
    (check,) = drill_of("alertmanager").check(Ask({"/api/v2/silences": (200, [])}, aged_out))
    assert check.ok  # Alertmanager drops a silence that long expired: not expected


def test_the_report_passes_only_when_every_check_passed_and_nothing_is_left() -> None:
    good = DrillService("prometheus", "restored", "running, ready", (Check("p", "q", True),))
    bad = DrillService("grafana", "restored", "exited", ())
    report = DrillReport("20261126T020000Z", "/b", "monitoring-drill-1", services=[good])
    assert report.exit_code == ExitCode.OK
    report.services.append(bad)
    assert report.exit_code == ExitCode.FAILED
    assert [s["status"] for s in report.to_json()["services"]] == ["passed", "failed"]
    left = DrillReport("x", "/b", "s", services=[good], leftovers=["left behind: volume v"])
    assert left.exit_code == ExitCode.FAILED and left.to_json()["removed"] is False
    assert DrillReport("x", "/b", "s").exit_code == ExitCode.FAILED  # nothing drilled
