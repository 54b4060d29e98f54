"""Loki's and Promtail's own checks (`loki -verify-config`, `promtail -check-syntax`) in
`monctl validate`, and what validate says about a service with nothing to check.

`--local` runs the tools from PATH. Neither Loki nor Promtail can be installed here, so
the "installed" case runs the STAND-INS (tests/images/standin/standin.py, which print
what the pinned releases print: UPSTREAM.md) behind a `loki`/`promtail` on PATH. That
shows monctl's handling of the documented output, not the real programs; the docker
mode against the images is tests/e2e/test_validate_logs.py."""

from __future__ import annotations

import os
import shutil
import stat
import sys
from pathlib import Path

import pytest

from monctl import services
from monctl.cli import _run
from monctl.config.validate import validate
from monctl.errors import ExitCode
from monctl.project import COMPOSE_FILE, Project
from monctl.services.model import ToolCheck

REPO = Path(__file__).resolve().parents[2]
STANDIN = REPO / "tests" / "images" / "standin" / "standin.py"
LOKI = "config/loki/loki-config.yml"
PROMTAIL = "config/promtail/promtail-config.yml"


@pytest.fixture
def stack(tmp_path: Path) -> Project:
    root = tmp_path / "stack"
    shutil.copytree(REPO / "config", root / "config")
    (root / COMPOSE_FILE).parent.mkdir(parents=True)
    shutil.copy2(REPO / COMPOSE_FILE, root / COMPOSE_FILE)
    return Project(root=root)


@pytest.fixture
def standins_on_path(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """`loki` and `promtail` on PATH, running the stand-ins."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    for role in ("loki", "promtail"):
        tool = bin_dir / role
        tool.write_text(
            f'#!/bin/sh\nexec "{sys.executable}" "{STANDIN}" --role {role} "$@"\n',
            encoding="utf-8",
        )
        tool.chmod(tool.stat().st_mode | stat.S_IXUSR)
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}{os.environ['PATH']}")
    return bin_dir


DECLARED = [("loki", "/usr/bin/loki", LOKI), ("promtail", "/usr/bin/promtail", PROMTAIL)]


@pytest.mark.parametrize(("name", "binary", "config"), DECLARED)
def test_loki_and_promtail_declare_their_own_check(name: str, binary: str, config: str) -> None:
    """The image's own binary, run without a shell (distroless Loki has none), gating reload."""
    (check,) = services.get(name).checks
    assert isinstance(check, ToolCheck)
    assert check.argv[0] == binary and check.program == name
    assert check.gates_reload
    assert check.file_arg == "-config.file={}"
    assert sorted(p.relative_to(REPO).as_posix() for p in REPO.glob(check.files)) == [config]


def test_local_mode_without_the_tools_says_skipped(
    stack: Project, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    report = validate(stack, None, services.select(["loki", "promtail"]), mode="local")
    rows = {(r.service, r.status): r.summary for r in report.results}
    assert rows[("loki", "skipped")].startswith("loki is not on PATH")
    assert rows[("promtail", "skipped")].startswith("promtail is not on PATH")
    # a check that did not run is no pass, unless the operator allows it (issue 19)
    assert report.exit_code == ExitCode.FAILED
    assert report.missing_tools == ("loki", "promtail")
    allowed = validate(
        stack, None, services.select(["loki", "promtail"]), mode="local", allow_missing_tools=True
    )
    assert allowed.exit_code == ExitCode.OK


@pytest.mark.usefixtures("standins_on_path")
def test_local_mode_runs_the_tools_on_the_repo_config(stack: Project) -> None:
    report = validate(stack, None, services.select(["loki", "promtail"]), mode="local")
    assert [(r.service, r.check, r.status) for r in report.results] == [
        ("loki", "config", "valid"),
        ("promtail", "config", "valid"),
    ]


@pytest.mark.usefixtures("standins_on_path")
def test_a_broken_loki_or_promtail_config_names_file_and_line(stack: Project) -> None:
    loki = stack.root / LOKI
    text = loki.read_text(encoding="utf-8")
    loki.write_text(text + "ingestor:\n  lifecycler: {}\n", encoding="utf-8")
    loki_line = len(text.splitlines()) + 1
    promtail = stack.root / PROMTAIL
    lines = promtail.read_text(encoding="utf-8").splitlines()
    lines.insert(3, "server: INVALID")
    promtail.write_text("\n".join(lines) + "\n", encoding="utf-8")

    report = validate(stack, None, services.select(["loki", "promtail"]), mode="local")

    assert report.exit_code == ExitCode.CONFIG
    found = {(r.service, p.file, p.line): p.message for r in report.results for p in r.problems}
    assert "field ingestor not found" in found[("loki", LOKI, loki_line)]
    assert ("promtail", PROMTAIL, 4) in found
    for message in found.values():  # the tools' boilerplate is not a problem
        assert "expand-env" not in message


def test_validate_names_a_service_with_nothing_to_check(
    stack: Project, capsys: pytest.CaptureFixture[str]
) -> None:
    code = _run(["--project-dir", str(stack.root), "validate", "--local", "node-exporter"])
    out = " ".join(capsys.readouterr().out.split())
    assert code == 0
    assert "node-exporter" in out and "nothing to check" in out
