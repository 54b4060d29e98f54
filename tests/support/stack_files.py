"""The stack's own files, for the stack tests (tests/stack): paths, YAML, rules, and
copies of the configuration with container paths rewritten for host tools."""

from __future__ import annotations

import shutil
from pathlib import Path

import yaml

from support import REPO as ROOT

CONFIG = ROOT / "config"
PROM_DIR = CONFIG / "prometheus"
AM_DIR = CONFIG / "alertmanager"
GRAFANA_DIR = CONFIG / "grafana"
COMPOSE_FILE = ROOT / "compose" / "docker-compose.monitoring.yml"
ENV_EXAMPLE = ROOT / ".env.example"


def load_yaml(path: Path) -> object:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def rule_files() -> list[Path]:
    return sorted((PROM_DIR / "rules").glob("*.yml"))


def rule_test_files() -> list[Path]:
    return sorted((PROM_DIR / "tests").glob("*.yml"))


def alerting_rules() -> list[tuple[Path, dict]]:
    """Every alerting rule of every rule file, with the file it came from."""
    found = []
    for path in rule_files():
        data = load_yaml(path)
        assert isinstance(data, dict), path
        for group in data["groups"]:
            for rule in group["rules"]:
                if "alert" in rule:
                    found.append((path, rule))
    return found


def prometheus_config_copy(tmp: Path) -> Path:
    """config/prometheus copied into ``tmp`` with the container path
    /etc/prometheus/ rewritten to the copy, so promtool can resolve rule files."""
    dest = tmp / "prometheus"
    shutil.copytree(PROM_DIR, dest)
    main = dest / "prometheus.yml"
    main.write_text(
        main.read_text(encoding="utf-8").replace("/etc/prometheus/", f"{dest}/"), encoding="utf-8"
    )
    return main


def alertmanager_config_copy(tmp: Path) -> Path:
    """config/alertmanager copied into ``tmp`` with /etc/alertmanager/ rewritten
    (so the templates are really loaded and checked)."""
    dest = tmp / "alertmanager"
    shutil.copytree(AM_DIR, dest)
    main = dest / "alertmanager.yml"
    main.write_text(
        main.read_text(encoding="utf-8").replace("/etc/alertmanager/", f"{dest}/"),
        encoding="utf-8",
    )
    return main
