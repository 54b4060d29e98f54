"""Helpers for the stack tests (tests/stack): paths, free ports, and the rule
for missing tools: skip on a laptop, fail under CI (CI=true), so CI can never
pass by skipping what it was meant to prove."""

from __future__ import annotations

import os
import shutil
import socket
import time
import urllib.error
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
CONFIG = ROOT / "config"
PROM_DIR = CONFIG / "prometheus"
AM_DIR = CONFIG / "alertmanager"
GRAFANA_DIR = CONFIG / "grafana"
COMPOSE_FILE = ROOT / "compose" / "docker-compose.monitoring.yml"
ENV_EXAMPLE = ROOT / ".env.example"


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def missing(reason: str) -> None:
    """Skip the test with ``reason``; under CI=true fail with it instead."""
    if in_ci():
        pytest.fail(f"{reason} (CI=true: a missing tool fails the run instead of skipping)")
    pytest.skip(reason)


def need_binary(*candidates: str) -> str:
    """The path of the first of ``candidates`` found (a name on PATH or an
    absolute path); skip the test (fail under CI) when none is installed."""
    for name in candidates:
        path = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if path:
            return path
    missing(
        f"none of {', '.join(candidates)} is installed "
        "(Debian packages: see the README, section The monitoring stack)"
    )
    raise AssertionError("unreachable")


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


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


def wait_for(predicate, timeout: float, what: str, logs: Path | None = None):  # type: ignore[no-untyped-def]
    """Call ``predicate`` until it returns something truthy (returned), or fail
    after ``timeout`` seconds naming ``what``, with the tails of ``logs``/*.log."""
    deadline = time.monotonic() + timeout
    last: object = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(0.2)
    tails = "".join(
        f"\n--- {p.name} ---\n" + p.read_text(errors="replace")[-2000:]
        for p in (sorted(logs.glob("*.log")) if logs else [])
    )
    raise AssertionError(f"timed out waiting for {what}: {last!r}{tails}")
