"""monctl reload and validate against the real compose file on a real Docker engine.

This is the production path: promtool/amtool run inside the running containers
(`docker exec`) for reload, and in one-off containers (`docker compose run`) for validate.
Prometheus and Alertmanager are Debian's real binaries; Grafana, Loki and Promtail are
stand-ins (tests/images/standin/standin.py), so their rows show monctl's handling of the
documented API, not the real programs.
"""

from __future__ import annotations

import json
import time

import httpx
import pytest
from support.engine import Result, Stack

from monctl import services
from monctl.services.answers import metric_value

pytestmark = pytest.mark.docker

NEW_RULE = """\
groups:
  - name: added-by-e2e
    rules:
      - alert: AddedByReloadTest
        expr: vector(1) > 2
"""


def explain(stack: Stack, result: Result) -> str:
    logs = stack.compose("logs", "--tail", "15").out
    return f"exit {result.code}\n--- stdout\n{result.out}\n--- stderr\n{result.err}\n{logs[-3000:]}"


def alert_rules(stack: Stack) -> set[str]:
    doc = httpx.get(
        f"{stack.url('prometheus')}/api/v1/rules", auth=stack.basic_auth(), timeout=5
    ).json()
    return {r["name"] for g in doc["data"]["groups"] for r in g["rules"]}


def loaded_config(stack: Stack) -> str:
    doc = httpx.get(
        f"{stack.url('prometheus')}/api/v1/status/config", auth=stack.basic_auth(), timeout=5
    ).json()
    return str(doc["data"]["yaml"])


def reload_posts(stack: Stack) -> float:
    text = httpx.get(f"{stack.url('prometheus')}/metrics", auth=stack.basic_auth(), timeout=5).text
    name = "prometheus_http_request_duration_seconds_count"
    return metric_value(text, name, {"handler": "/-/reload"}) or 0.0


def test_reload_prometheus_applies_a_new_rule_file(running_stack: Stack) -> None:
    rule_file = running_stack.root / "config" / "prometheus" / "rules" / "added_by_e2e.yml"
    rule_file.write_text(NEW_RULE, encoding="utf-8")
    try:
        result = running_stack.monctl("reload", "prometheus", "--json")
        assert result.code == 0, explain(running_stack, result)
        doc = json.loads(result.out)
        (outcome,) = doc["services"]
        assert outcome["result"] == "confirmed"
        assert "AddedByReloadTest" in alert_rules(running_stack)
    finally:
        rule_file.unlink()
        restored = running_stack.monctl("reload", "prometheus")
    assert restored.code == 0, explain(running_stack, restored)
    assert "AddedByReloadTest" not in alert_rules(running_stack)
    assert "confirmed" in restored.out


def test_reload_all_reports_every_service_in_one_table(running_stack: Stack) -> None:
    result = running_stack.monctl("reload", "all", timeout=400)
    assert result.code == 0, explain(running_stack, result)
    rows = {line.split()[0]: line for line in result.out.splitlines() if line.strip()}
    for service in services.SERVICES:
        assert service.name in rows, result.out
    assert "confirmed" in rows["prometheus"]
    assert "unchanged" in rows["alertmanager"] or "confirmed" in rows["alertmanager"]
    assert "confirmed" in rows["grafana"]
    assert "Loki has no reload API; restarted" in rows["loki"]
    assert "nothing to reload" in rows["node-exporter"]
    # Loki was restarted and waited for: the shared stack is whole again.
    assert httpx.get(f"{running_stack.url('loki')}/ready", timeout=5).status_code == 200


def test_invalid_prometheus_yml_is_refused_and_the_old_config_stays(stack_dir: Stack) -> None:
    # validate needs no running stack: one-off containers of the pinned images
    valid = stack_dir.monctl("validate", "--json", timeout=300)
    assert valid.code == 0, explain(stack_dir, valid)
    assert json.loads(valid.out)["mode"] == "docker"

    up = stack_dir.monctl("up", "prometheus", "--timeout", "120", timeout=300)
    assert up.code == 0, explain(stack_dir, up)
    config = stack_dir.root / "config" / "prometheus" / "prometheus.yml"
    original = config.read_text(encoding="utf-8")
    config.write_text(
        original.replace("scrape_interval: 15s", "scrape_interval: fifteen", 1), encoding="utf-8"
    )
    posts = reload_posts(stack_dir)

    refused = stack_dir.monctl("reload", "prometheus")
    assert refused.code == 6, explain(stack_dir, refused)
    assert "refused" in refused.out and "fifteen" in refused.out  # promtool's own message
    assert reload_posts(stack_dir) == posts  # Prometheus was not touched
    assert "scrape_interval: 15s" in loaded_config(stack_dir)

    invalid = stack_dir.monctl("validate", "prometheus", "--json", timeout=300)
    assert invalid.code == 6, explain(stack_dir, invalid)
    bad = [c for c in json.loads(invalid.out)["checks"] if c["status"] == "invalid"]
    assert [c["check"] for c in bad] == ["config"]
    assert bad[0]["problems"][0]["file"] == "config/prometheus/prometheus.yml"

    forced = stack_dir.monctl("reload", "prometheus", "--no-validate")
    assert forced.code == 1, explain(stack_dir, forced)
    assert "previous configuration is still active" in forced.out
    assert reload_posts(stack_dir) == posts + 1
    assert "scrape_interval: 15s" in loaded_config(stack_dir)

    config.write_text(original, encoding="utf-8")
    time.sleep(0.1)
    fixed = stack_dir.monctl("reload", "prometheus")
    assert fixed.code == 0, explain(stack_dir, fixed)


def test_reload_refuses_a_service_that_is_not_running(stack_dir: Stack) -> None:
    result = stack_dir.monctl("reload", "alertmanager", "--json")
    assert result.code == 1, explain(stack_dir, result)
    (outcome,) = json.loads(result.out)["services"]
    assert outcome["result"] == "refused"
    assert "not running" in outcome["summary"]
