"""The CLI contract: exit codes, one-line errors without tracebacks, JSON on stdout only."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from monctl import services
from monctl.cli import COMMANDS, SHORT_HELP, cli, exit_codes
from monctl.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]


def monctl(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    full_env.pop("MONCTL_PROJECT_DIR", None)
    return subprocess.run(
        [sys.executable, "-m", "monctl", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )


def test_version_and_help() -> None:
    result = monctl("--version", cwd=REPO)
    assert result.returncode == 0
    assert result.stdout.startswith("monctl, version ")
    result = monctl("--help", cwd=REPO)
    assert result.returncode == 0
    for name in COMMANDS:
        assert name in result.stdout


@pytest.mark.parametrize("name", list(COMMANDS))
def test_every_command_has_help_text(name: str) -> None:
    assert SHORT_HELP.get(name), f"{name} has no short help in monctl.cli.SHORT_HELP"
    result = CliRunner().invoke(cli, [name, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage:" in result.output
    command = cli.get_command(None, name)  # type: ignore[arg-type]
    assert command is not None and (command.help or "").strip(), f"{name} has no docstring"


DOCS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS)
def test_every_exit_code_table_in_the_docs_is_the_generated_one(doc: str) -> None:
    text = (REPO / doc).read_text()
    for name, found in exit_codes.blocks(text).items():
        assert found == exit_codes.table(name), (
            f"{doc}'s exit codes for {name!r} differ from monctl.errors.ExitCode: "
            "run `python -m monctl.cli.exit_codes README.md docs/*.md`"
        )
    assert exit_codes.rewrite(text) == text


def test_the_docs_keep_their_exit_code_tables() -> None:
    # The README keeps the table of every code; the reference keeps each command's (issue 18
    # moved health's and backup's into docs/).
    where = {name: doc for doc in DOCS for name in exit_codes.blocks((REPO / doc).read_text())}
    assert where.get("all") == "README.md", "the README lost its exit-code table"
    for name in ("health", "backup", "backup test", "backup export", "restore"):
        assert name in where, f"no document holds the exit codes of {name!r}"


@pytest.mark.parametrize("name", sorted(exit_codes.COMMAND_CODES))
def test_every_help_lists_the_exit_codes_of_its_command(name: str) -> None:
    result = CliRunner().invoke(cli, [*name.split(), "--help"])
    assert result.exit_code == 0, result.output
    text = " ".join(result.output.split())
    for code in exit_codes.codes_of(name):
        assert f"{int(code)} {code.meaning}" in text, (name, code)


def test_no_stack_gives_config_error_without_traceback(tmp_path: Path) -> None:
    result = monctl("status", cwd=tmp_path)
    assert result.returncode == ExitCode.CONFIG
    assert "no monitoring stack found" in result.stderr
    assert "Traceback" not in result.stderr
    assert result.stdout == ""


def test_unreachable_docker_gives_docker_exit_code_and_no_json_garbage(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    (stack / "compose").mkdir(parents=True)
    (stack / "compose" / "docker-compose.monitoring.yml").write_text("services: {}\n")
    result = monctl(
        "--project-dir",
        str(stack),
        "status",
        "--json",
        cwd=tmp_path,
        env={"DOCKER_HOST": f"unix://{tmp_path}/no-docker.sock"},
    )
    assert result.returncode == ExitCode.DOCKER, result.stderr
    assert "cannot reach the Docker daemon" in result.stderr
    assert "Traceback" not in result.stderr
    # With --json, stdout holds exactly one document, also on failure.
    doc = json.loads(result.stdout)
    assert doc["command"] == "status" and doc["ok"] is False
    assert doc["exit_code"] == ExitCode.DOCKER
    assert "cannot reach the Docker daemon" in doc["error"]["message"]
    assert doc["error"]["hint"]


def test_malformed_env_is_a_config_error_that_hides_the_line(tmp_path: Path) -> None:
    stack = tmp_path / "stack"
    (stack / "compose").mkdir(parents=True)
    (stack / "compose" / "docker-compose.monitoring.yml").write_text("services: {}\n")
    (stack / ".env").write_text("GRAFANA_ADMIN_PASSWORD=ok\nnot-a-valid line with s3cret\n")
    result = monctl("--project-dir", str(stack), "status", cwd=tmp_path)
    assert result.returncode == ExitCode.CONFIG
    assert ".env line 2" in result.stderr
    assert "s3cret" not in result.stderr


def test_unknown_service_is_a_usage_error() -> None:
    result = CliRunner().invoke(cli, ["up", "nosuchservice"])
    assert result.exit_code == ExitCode.USAGE
    assert "prometheus" in result.output  # the choices are listed


def test_status_json_is_one_document(monkeypatch: pytest.MonkeyPatch) -> None:
    """The renderer writes exactly one JSON document to stdout in JSON mode."""
    from monctl.cli.output import Output
    from monctl.lifecycle.status import ServiceStatus, StatusReport

    rows = tuple(
        ServiceStatus(s.name, "running", "healthy", 12.0, "img:1", "1", ("http://127.0.0.1:1",))
        for s in services.SERVICES
    )
    captured: list[str] = []
    monkeypatch.setattr(sys.stdout, "write", lambda text: captured.append(text) or len(text))
    Output(json_mode=True).emit("status", StatusReport("monitoring", "compose", rows))
    doc = json.loads("".join(captured))
    assert list(doc)[:3] == ["command", "ok", "exit_code"]
    assert (doc["command"], doc["ok"], doc["exit_code"]) == ("status", True, 0)
    assert [s["name"] for s in doc["services"]] == list(services.names())


def test_a_usage_error_with_json_is_still_one_document(tmp_path: Path) -> None:
    result = monctl("health", "--json", "--strict", "--ignore-targets", cwd=tmp_path)
    assert result.returncode == ExitCode.USAGE
    doc = json.loads(result.stdout)
    assert (doc["command"], doc["ok"], doc["exit_code"]) == ("health", False, 2)
    assert "contradict" in doc["error"]["message"]
