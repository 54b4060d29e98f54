"""`monctl health` against the real compose stack on a real Docker engine.

Grafana, Loki, Promtail and cAdvisor are stand-ins here (tests/images/standin/), the
other four are Debian's real binaries. There is no application in the test: the
backend's scrape jobs cannot resolve `backend` and postgres-exporter cannot reach a
database (pg_up 0). So the honest verdict on a healthy stack is exit 4 ("stack
healthy, watched targets down"), with every stack service healthy — which is what
these tests expect, precisely.
"""

from __future__ import annotations

import json
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from support.engine import Result, Stack, docker

from monctl import services

pytestmark = pytest.mark.docker

WAIT = ("--wait", "--timeout", "180", "--interval", "2")


def health(stack: Stack, *args: str) -> tuple[Result, dict[str, Any]]:
    result = stack.monctl("health", "--json", *args, timeout=300)
    try:
        doc = json.loads(result.out)
    except ValueError:
        pytest.fail(
            f"stdout is not one JSON document (exit {result.code}):\n{result.out}\n"
            f"stderr:\n{result.err}"
        )
    return result, doc


def why(result: Result, doc: dict[str, Any]) -> str:
    bad = [s for s in doc["services"] if s["status"] not in ("healthy", "degraded")]
    checks = [c for c in doc["checks"] if not c["ok"]]
    return f"exit {result.code}\nservices: {bad}\nchecks: {checks}\nstderr: {result.err[-2000:]}"


def assert_stack_green(result: Result, doc: dict[str, Any], stack: Stack) -> None:
    """Every stack service healthy, discovered through Docker; only the absent
    application is down (exit 4)."""
    assert result.code == 4, why(result, doc)
    assert doc["stack_ok"] is True and doc["targets_ok"] is False and doc["ok"] is False
    assert doc["docker"] == "reachable"
    by_name = {s["name"]: s for s in doc["services"]}
    assert list(by_name) == list(services.names())
    for name, s in by_name.items():
        assert s["state"] == "running", s
        assert s["live"] is True, s
        assert s["url"] == stack.url(name), s  # the published port, found through Docker
        expected = "degraded" if name == "postgres-exporter" else "healthy"
        assert s["status"] == expected, s
    assert by_name["postgres-exporter"]["detail"] == "exporter up, database unreachable"
    down = {t["name"] for t in doc["targets"] if t["state"] == "down"}
    assert "database" in down
    assert down <= {"database", "backend", "backend-export"}
    failed_checks = [c for c in doc["checks"] if not c["ok"] and c["severity"] == "stack"]
    assert failed_checks == [], failed_checks
    assert set(doc["alerts"]) >= {"critical", "warning", "info"}


def test_health_green_on_the_running_stack(running_stack: Stack, tmp_path: Path) -> None:
    junit = tmp_path / "health.xml"
    result, doc = health(running_stack, *WAIT, "--junit", str(junit))
    assert_stack_green(result, doc, running_stack)
    # The same findings for CI: one failing testcase per down watched target only.
    suite = ET.parse(junit).getroot().find("testsuite")
    assert suite is not None
    failed = [c for c in suite.findall("testcase") if c.find("failure") is not None]
    assert failed and {c.get("classname") for c in failed} == {"monctl.health.targets"}
    # --strict makes the absent application fatal; --ignore-targets lets it pass.
    assert health(running_stack, "--strict")[0].code == 3
    assert health(running_stack, "--ignore-targets")[0].code == 0


def _container(stack: Stack, service: str) -> str:
    label = f"label=com.docker.compose.service={service}"
    project = f"label=com.docker.compose.project={stack.project_name}"
    (cid,) = docker("ps", "-aq", "--filter", label, "--filter", project).out.split()
    return cid


def test_red_when_loki_stops_and_green_again(running_stack: Stack) -> None:
    stack = running_stack
    cid = _container(stack, "loki")
    assert docker("stop", "--time", "5", cid).code == 0
    try:
        result, doc = health(stack)
        assert result.code == 3, why(result, doc)
        assert doc["stack_ok"] is False
        not_ok = [s for s in doc["services"] if s["status"] not in ("healthy", "degraded")]
        assert [s["name"] for s in not_ok] == ["loki"], not_ok
        (loki,) = not_ok
        assert (loki["status"], loki["state"], loki["live"]) == ("down", "exited", False)
        assert "container exited" in loki["detail"]
        plain = stack.monctl("health", "loki", timeout=120)
        assert plain.code == 3
        assert plain.out.strip().splitlines()[-1] == "UNHEALTHY: loki down (exit 3)"
    finally:
        # Leave the shared stack as we found it, whatever happened above.
        started = docker("start", cid)
    assert started.code == 0, started.err
    result, doc = health(stack, *WAIT)
    assert_stack_green(result, doc, stack)
