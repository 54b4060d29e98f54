"""config/grafana: provisioning files are valid, exactly one default
datasource, fixed uids, and every dashboard panel uses a provisioned
datasource. (Whether the panels' queries return data is proven against a
live Prometheus in test_stack_live_queries.py.)"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from support.stack_files import GRAFANA_DIR, load_yaml

DASHBOARDS = GRAFANA_DIR / "dashboards"
EXPECTED_DASHBOARDS = {"overview", "application-metrics", "system-metrics", "database-metrics"}
EXPECTED_DATASOURCES = {"prometheus": "prometheus", "loki": "loki", "alertmanager": "alertmanager"}
BUILTIN_DATASOURCES = {"-- Grafana --", "grafana", "-- Dashboard --", "-- Mixed --"}


def _datasources() -> list[dict]:
    found = []
    for path in sorted((GRAFANA_DIR / "provisioning" / "datasources").glob("*.y*ml")):
        data = load_yaml(path)
        assert isinstance(data, dict) and data.get("apiVersion") == 1, path
        found += data.get("datasources", [])
    return found


def _dashboards() -> dict[str, dict]:
    return {
        p.name: json.loads(p.read_text(encoding="utf-8")) for p in sorted(DASHBOARDS.glob("*.json"))
    }


def _panels(dashboard: dict) -> list[dict]:
    out = []
    for panel in dashboard.get("panels", []):
        out.append(panel)
        out += panel.get("panels", [])  # collapsed rows
    return out


def test_datasources_one_default_and_fixed_uids() -> None:
    sources = _datasources()
    assert {s["uid"]: s["type"] for s in sources} == EXPECTED_DATASOURCES
    defaults = [s["uid"] for s in sources if s.get("isDefault")]
    assert defaults == ["prometheus"], f"exactly one default datasource expected, got {defaults}"
    urls = {s["uid"]: s["url"] for s in sources}
    assert urls == {
        "prometheus": "http://prometheus:9090",
        "loki": "http://loki:3100",
        "alertmanager": "http://alertmanager:9093",
    }


def test_dashboard_provider_points_at_the_mounted_directory() -> None:
    data = load_yaml(GRAFANA_DIR / "provisioning" / "dashboards" / "dashboards.yml")
    assert isinstance(data, dict) and data["apiVersion"] == 1
    (provider,) = data["providers"]
    assert provider["type"] == "file" and provider["folder"]
    compose = load_yaml(GRAFANA_DIR.parents[1] / "compose" / "docker-compose.monitoring.yml")
    assert isinstance(compose, dict)
    mounts = compose["services"]["grafana"]["volumes"]
    assert f"../config/grafana/dashboards:{provider['options']['path']}:ro" in mounts
    assert "../config/grafana/provisioning:/etc/grafana/provisioning:ro" in mounts


def test_the_four_dashboards_with_fixed_uids() -> None:
    dashboards = _dashboards()
    assert {d["uid"] for d in dashboards.values()} == EXPECTED_DASHBOARDS
    for name, d in dashboards.items():
        assert name == f"{d['uid']}.json"
        assert d["title"] and d.get("id") is None  # provisioned: Grafana assigns ids


@pytest.mark.parametrize("name", sorted(p.name for p in DASHBOARDS.glob("*.json")))
def test_every_panel_uses_a_provisioned_datasource(name: str) -> None:
    dashboard = _dashboards()[name]
    uids = set(EXPECTED_DATASOURCES)
    problems = []
    ids = [p["id"] for p in _panels(dashboard)]
    assert len(ids) == len(set(ids)), f"duplicate panel ids in {name}"
    for panel in _panels(dashboard):
        if panel["type"] == "row":
            continue
        refs = [panel.get("datasource")] + [t.get("datasource") for t in panel.get("targets", [])]
        if not panel.get("targets"):
            problems.append(f"{panel['title']}: no queries")
        for ref in refs:
            uid = ref.get("uid") if isinstance(ref, dict) else ref
            if uid not in uids and uid not in BUILTIN_DATASOURCES:
                problems.append(f"{panel['title']}: datasource {ref!r} is not provisioned")
        for target in panel.get("targets", []):
            if not str(target.get("expr", "")).strip():
                problems.append(f"{panel['title']}: empty query {target.get('refId')}")
    for variable in dashboard.get("templating", {}).get("list", []):
        ref = variable.get("datasource")
        uid = ref.get("uid") if isinstance(ref, dict) else ref
        if variable.get("type") == "query" and uid not in uids:
            problems.append(f"variable {variable['name']}: datasource {ref!r} is not provisioned")
    assert not problems, "\n".join(problems)


def test_grafana_compose_settings() -> None:
    compose = load_yaml(Path(GRAFANA_DIR.parents[1] / "compose" / "docker-compose.monitoring.yml"))
    assert isinstance(compose, dict)
    env = compose["services"]["grafana"]["environment"]
    assert env["GF_SECURITY_ADMIN_USER"] == "${GRAFANA_ADMIN_USER:-admin}"
    assert env["GF_SECURITY_ADMIN_PASSWORD"].startswith("${GRAFANA_ADMIN_PASSWORD:?")
