"""monctl validate: --local with Debian's promtool/amtool on a copy of the repo's config, the
Grafana host checks, and the container mounts validate assumes (docker mode: tests/e2e)."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from support import require_binary

from monctl import services
from monctl.config.validate import ValidateReport, validate
from monctl.errors import ExitCode
from monctl.project import COMPOSE_FILE, Project

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def stack(tmp_path: Path) -> Project:
    """A copy of the repo's compose file and config: what a pull request would check."""
    require_binary("promtool")
    require_binary("amtool")
    root = tmp_path / "stack"
    shutil.copytree(REPO / "config", root / "config")
    (root / COMPOSE_FILE).parent.mkdir(parents=True)
    shutil.copy2(REPO / COMPOSE_FILE, root / COMPOSE_FILE)
    return Project(root=root)


def problems(report: ValidateReport) -> list[tuple[str, str, str | None, int | None]]:
    return [(r.service, r.check, p.file, p.line) for r in report.results for p in r.problems]


def test_config_mounts_match_the_compose_file() -> None:
    """Each service's declared config mount is how the compose file mounts config/."""
    compose = yaml.safe_load((REPO / COMPOSE_FILE).read_text(encoding="utf-8"))
    for service in services.SERVICES:
        binds = [
            v.split(":")[:2]
            for v in compose["services"][service.name].get("volumes", [])
            # config/auth/probe.sh: the healthcheck Prometheus and Alertmanager share,
            # not a service's configuration
            if v.startswith("../config/") and not v.startswith("../config/auth/")
        ]
        if service.config is None:
            assert not binds, service.name
            continue
        assert binds, service.name
        for host, container in binds:
            inside = host.removeprefix("../").removeprefix(service.config.host)
            assert host.startswith(f"../{service.config.host}"), (service.name, host)
            assert container == service.config.container + inside, (service.name, container)


@pytest.mark.binaries
def test_repo_config_is_valid_locally(stack: Project) -> None:
    # loki and promtail have no Debian package: their checks run in tests/config/test_validate_logs
    report = validate(stack, None, tuple(services.SERVICES), mode="local", allow_missing_tools=True)
    bad = [r for r in report.results if r.status not in ("valid", "skipped")]
    assert report.exit_code == ExitCode.OK, bad
    assert set(report.missing_tools) <= {"loki", "promtail"}, report.missing_tools
    checks = {(r.service, r.check) for r in report.results}
    assert {
        ("prometheus", "config"),
        ("prometheus", "rules"),
        ("prometheus", "rule tests"),
        ("alertmanager", "config"),
        ("grafana", "provisioning"),
        ("grafana", "dashboards"),
    } <= checks
    tests = next(r for r in report.results if r.check == "rule tests")
    assert tests.files and all(f.startswith("config/prometheus/tests/") for f in tests.files)


@pytest.mark.binaries
def test_broken_rule_and_alertmanager_config_name_file_and_line(stack: Project) -> None:
    rules = stack.root / "config" / "prometheus" / "rules" / "stack.yml"
    text = rules.read_text(encoding="utf-8")
    rules.write_text(text + "      - alert: BrokenByTest\n        expr: up ==\n", encoding="utf-8")
    broken_line = len(text.splitlines()) + 2
    am = stack.root / "config" / "alertmanager" / "alertmanager.yml"
    am_text = am.read_text(encoding="utf-8")
    am.write_text(am_text + "not_an_alertmanager_key: 1\n", encoding="utf-8")

    report = validate(stack, None, services.select(["prometheus", "alertmanager"]), mode="local")

    assert report.exit_code == ExitCode.CONFIG
    found = problems(report)
    rule_file = "config/prometheus/rules/stack.yml"
    assert ("prometheus", "rules", rule_file, broken_line) in found
    am_line = len(am_text.splitlines()) + 1
    assert ("alertmanager", "config", "config/alertmanager/alertmanager.yml", am_line) in found
    status = {(r.service, r.check): r.status for r in report.results}
    assert status[("prometheus", "config")] == "valid"  # the config itself is fine


@pytest.mark.binaries
def test_failing_rule_unit_test_is_invalid(stack: Project) -> None:
    rules = stack.root / "config" / "prometheus" / "rules"
    for path in rules.glob("*.yml"):  # make every alert wait far longer than its tests allow
        path.write_text(path.read_text().replace("for: ", "for: 1d #"), encoding="utf-8")
    report = validate(stack, None, services.select(["prometheus"]), mode="local")
    status = {r.check: r.status for r in report.results}
    assert status == {"config": "valid", "rules": "valid", "rule tests": "invalid"}
    assert report.exit_code == ExitCode.CONFIG


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_grafana_checks_syntax_uids_and_one_default(tmp_path: Path) -> None:
    project = Project(root=tmp_path)
    boards = tmp_path / "config" / "grafana" / "dashboards"
    write(boards / "a.json", json.dumps({"uid": "same", "title": "A"}, indent=2))
    write(boards / "b.json", json.dumps({"uid": "same", "title": "B"}, indent=2))
    write(boards / "c.json", '{\n  "uid": "c",\n  "panels": [\n}\n')
    sources = tmp_path / "config" / "grafana" / "provisioning" / "datasources"
    write(
        sources / "ds.yml",
        "apiVersion: 1\ndatasources:\n  - name: Prometheus\n    uid: prom\n    isDefault: true\n"
        "  - name: Loki\n    uid: loki\n    isDefault: true\n",
    )
    write(sources / "broken.yml", "apiVersion: 1\ndatasources:\n  - name: [unclosed\n")

    report = validate(project, None, services.select(["grafana"]), mode="local")

    assert report.exit_code == ExitCode.CONFIG
    found = {(p.file, p.line): p.message for r in report.results for p in r.problems}
    assert "config/grafana/dashboards/c.json" in {f for f, _ in found}
    assert found[("config/grafana/dashboards/c.json", 4)].startswith("invalid JSON")
    assert (
        "also used by config/grafana/dashboards/a.json"
        in found[("config/grafana/dashboards/b.json", 2)]
    )
    assert "second default" in found[("config/grafana/provisioning/datasources/ds.yml", 6)]
    assert any(f == "config/grafana/provisioning/datasources/broken.yml" for f, _ in found)

    write(sources / "ds.yml", "datasources:\n  - name: Prometheus\n    uid: prom\n")
    (sources / "broken.yml").unlink()
    for name in ("b.json", "c.json"):
        (boards / name).unlink()
    again = validate(project, None, services.select(["grafana"]), mode="local")
    messages = [p.message for r in again.results for p in r.problems]
    assert messages == ["no datasource has isDefault: true (exactly one must)"]


@pytest.mark.binaries
def test_cli_local_json_and_exit_code(stack: Project) -> None:
    board = stack.root / "config" / "grafana" / "dashboards" / "broken-by-test.json"
    board.write_text("{", encoding="utf-8")
    result = subprocess.run(
        [
            sys.executable,
            "-m",
            "monctl",
            "--project-dir",
            str(stack.root),
            "validate",
            "--local",
            "--json",
        ],
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == ExitCode.CONFIG, result.stderr
    doc = json.loads(result.stdout)
    assert doc["mode"] == "local" and doc["exit_code"] == 6
    bad = [c for c in doc["checks"] if c["status"] not in ("valid", "skipped")]
    assert [(c["service"], c["check"]) for c in bad] == [("grafana", "dashboards")]
    assert bad[0]["problems"][0]["file"] == "config/grafana/dashboards/broken-by-test.json"
