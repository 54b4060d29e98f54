"""`monctl init --upgrade DIR` (issue 19, item 3), run as the operator runs it.

An older monctl's stack is made from this one's: `monctl init` writes it, then files
are changed as an older release would have shipped them (its record of what it
wrote says so), and others as an operator edits them. The upgrade must replace
the untouched ones, put the new file beside each edited one (FILE.new), add what
is missing, report .env's image pins against the shipped ones, and lose no edit.
"""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from monctl.project import packaged_stack

SHIPPED = packaged_stack()
PROMETHEUS = "config/prometheus/prometheus.yml"
ALERTMANAGER = "config/alertmanager/alertmanager.yml"
COMPOSE = "compose/docker-compose.monitoring.yml"
TEMPLATE = "config/alertmanager/templates/slack.tmpl"


def monctl(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if k != "MONCTL_PROJECT_DIR"}
    return subprocess.run(
        [sys.executable, "-m", "monctl", *args],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def as_older_release_shipped(stack: Path, rel: str, text: str) -> None:
    """``rel`` as an older monctl wrote it (and recorded it): not an operator's edit."""
    (stack / rel).write_text(text, encoding="utf-8")
    record = stack / ".monctl" / "shipped.json"
    doc = json.loads(record.read_text(encoding="utf-8"))
    doc["files"][rel] = hashlib.sha256(text.encode()).hexdigest()
    record.write_text(json.dumps(doc), encoding="utf-8")


@pytest.fixture
def older(tmp_path: Path) -> Path:
    stack = tmp_path / "stack"
    assert monctl("init", str(stack), cwd=tmp_path).returncode == 0
    as_older_release_shipped(stack, ALERTMANAGER, "route: {receiver: old}\n")
    as_older_release_shipped(stack, COMPOSE, "services: {}\n")
    (stack / TEMPLATE).unlink()  # a file the newer release adds
    with open(stack / PROMETHEUS, "a", encoding="utf-8") as fh:
        fh.write("# the operator's own scrape job\n")  # an edit
    (stack / ".env").write_text(
        "GRAFANA_ADMIN_PASSWORD=s3cret-value\nPROMETHEUS_IMAGE=prom/prometheus:v2.0.0\n",
        encoding="utf-8",
    )
    return stack


def test_dry_run_shows_what_differs_and_writes_nothing(older: Path, tmp_path: Path) -> None:
    before = {p: p.read_bytes() for p in older.rglob("*") if p.is_file()}
    done = monctl("init", "--upgrade", "--dry-run", "--json", str(older), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    doc = json.loads(done.stdout)
    actions = {f["path"]: f["action"] for f in doc["files"]}
    assert actions[ALERTMANAGER] == "updated" and actions[COMPOSE] == "updated"
    assert actions[TEMPLATE] == "added" and actions[PROMETHEUS] == "review"
    pins = {p["var"]: (p["env"], p["shipped"]) for p in doc["image_pins"]}
    assert pins["PROMETHEUS_IMAGE"][0] == "prom/prometheus:v2.0.0"
    assert "s3cret-value" not in done.stdout
    after = {p: p.read_bytes() for p in older.rglob("*") if p.is_file()}
    assert after == before


def test_upgrade_replaces_untouched_files_and_keeps_every_edit(older: Path, tmp_path: Path) -> None:
    edited = (older / PROMETHEUS).read_text(encoding="utf-8")
    env = (older / ".env").read_bytes()
    done = monctl("init", "--upgrade", str(older), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    # untouched since the older release wrote them: now the shipped files
    for rel in (ALERTMANAGER, COMPOSE, TEMPLATE):
        assert (older / rel).read_bytes() == (SHIPPED / rel).read_bytes(), rel
    # edited: kept as it is, the shipped file beside it
    assert (older / PROMETHEUS).read_text(encoding="utf-8") == edited
    assert (older / f"{PROMETHEUS}.new").read_bytes() == (SHIPPED / PROMETHEUS).read_bytes()
    assert (older / ".env").read_bytes() == env  # never written
    assert f"{PROMETHEUS}.new" in done.stdout and "PROMETHEUS_IMAGE" in done.stdout
    assert "review" in done.stdout
    # Once merged (the operator takes the new file), the next upgrade has nothing to do.
    os.replace(older / f"{PROMETHEUS}.new", older / PROMETHEUS)
    again = json.loads(monctl("init", "--upgrade", "--json", str(older), cwd=tmp_path).stdout)
    assert {f["action"] for f in again["files"]} == {"unchanged"}


def test_a_stack_without_a_record_keeps_every_differing_file(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    assert monctl("init", str(stack), cwd=tmp_path).returncode == 0
    (stack / ".monctl" / "shipped.json").unlink()  # written by a monctl before the record
    (stack / ALERTMANAGER).write_text("route: {receiver: mine}\n", encoding="utf-8")
    done = monctl("init", "--upgrade", str(stack), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    assert (stack / ALERTMANAGER).read_text(encoding="utf-8") == "route: {receiver: mine}\n"
    assert (stack / f"{ALERTMANAGER}.new").read_bytes() == (SHIPPED / ALERTMANAGER).read_bytes()


def test_init_on_an_existing_stack_points_at_upgrade(older: Path, tmp_path: Path) -> None:
    done = monctl("init", str(older), cwd=tmp_path)
    assert done.returncode == 6 and "init --upgrade" in done.stderr
    assert monctl("init", "--upgrade", "--force", str(older), cwd=tmp_path).returncode == 2
