"""The last-resort error boundary: an exception monctl did not expect, on every command's path.

Each case runs monctl in a subprocess whose one change is an injected failure: a
function on the command's own path (the operation the command calls) is replaced,
before monctl's ``main`` runs, by one that raises an exception monctl does not know
(a RuntimeError whose message carries a secret of the project's .env and a second
line). The contract: exit 1, one ``error:`` line with the type and the redacted
message, no traceback (but one with -v), one JSON document with --json (the same
top-level keys as every failure), and for the commands that ping, the heartbeat's
failure ping.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support import REPO
from support.engine import render_env
from support.ping_server import RecordingServer

from monctl.cli import COMMANDS
from monctl.project import parse_env

SECRET = "s3cr3t-grafana-password-for-the-boundary"
BACKUP_ID = "20261126T020000Z"

# command -> (its arguments, the module and attribute on its path that will raise,
# whether it takes --json, the heartbeat setting it pings).
CASES: dict[str, tuple[list[str], str, str, bool, str | None]] = {
    "up": (["up", "--no-wait"], "monctl.lifecycle.up", "up", True, None),
    "down": (["down"], "monctl.lifecycle.down", "down", True, None),
    "status": (["status"], "monctl.lifecycle.status", "status", True, None),
    "logs": (["logs"], "monctl.runtime.compose", "ComposeRuntime.logs", False, None),
    "init": (["init", "{tmp}/copy"], "monctl.project", "init", False, None),
    "health": (["health"], "monctl.health.check", "check", True, None),
    "reload": (["reload", "prometheus"], "monctl.config.reload", "reload", True, None),
    "validate": (["validate"], "monctl.config.validate", "validate", True, None),
    "backup": (["backup"], "monctl.backup.create", "run", True, "MONCTL_BACKUP_PING_URL"),
    "backup list": (
        ["backup", "list"], "monctl.backup.listing", "list_repository", True, None
    ),
    "backup verify": (
        ["backup", "verify", BACKUP_ID], "monctl.backup.verify", "verify", True, None
    ),
    "backup prune": (
        ["backup", "prune", "--keep-last", "1"], "monctl.backup.prune", "prune", True, None
    ),
    "backup test": (
        ["backup", "test", BACKUP_ID], "monctl.backup.drill", "run", True,
        "MONCTL_RESTORE_PING_URL",
    ),
    "restore": (
        ["restore", BACKUP_ID, "--yes"], "monctl.backup.restore", "run", True,
        "MONCTL_RESTORE_PING_URL",
    ),
    "backup export": (
        ["backup", "export", BACKUP_ID, "-o", "{tmp}/x.tar"], "monctl.backup.export", "run",
        True, None,
    ),
    "credentials rotate": (
        ["credentials", "rotate"], "monctl.lifecycle.rotate", "rotate_stack", True, None
    ),
}  # fmt: skip

# Patches one attribute, then runs monctl's own entry point: nothing in monctl knows.
WRAPPER = """
import importlib, sys
module, attr, secret = sys.argv[1], sys.argv[2], sys.argv[3]

def broken(*args, **kwargs):
    raise RuntimeError(f"the flux capacitor said {secret}\\nand then a second line")

owner = importlib.import_module(module)
path = attr.split(".")
for name in path[:-1]:
    owner = getattr(owner, name)
getattr(owner, path[-1])  # it must exist: a renamed function would test nothing
setattr(owner, path[-1], broken)
from monctl.cli import main
sys.argv = ["monctl", *sys.argv[4:]]
main()
"""


def test_every_command_is_covered() -> None:
    top = {name.split()[0] for name in CASES}
    assert top == set(COMMANDS)
    assert {"backup list", "backup verify", "backup prune", "backup test"} <= set(CASES)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A stack directory with a .env whose Grafana password is ``SECRET``."""
    root = tmp_path / "stack"
    root.mkdir()
    for part in ("compose", "config"):
        shutil.copytree(REPO / part, root / part, symlinks=True)
    example = (REPO / ".env.example").read_text(encoding="utf-8")
    (root / ".env.example").write_text(example, encoding="utf-8")
    names = [n for n in parse_env(example) if "GRAFANA" in n and "PASSWORD" in n]
    assert names, "the example .env has no Grafana password to make secret"
    env_file = root / ".env"
    env_file.write_text(render_env(example, dict.fromkeys(names, SECRET)), encoding="utf-8")
    env_file.chmod(0o600)
    return root


def run(
    root: Path,
    case: str,
    before: tuple[str, ...] = (),
    after: tuple[str, ...] = (),
    env: dict[str, str] | None = None,
) -> subprocess.CompletedProcess[str]:
    """monctl [before] CASE's arguments [after], with CASE's function broken."""
    args, module, attr, _, _ = CASES[case]
    args = [a.replace("{tmp}", str(root.parent)) for a in args]
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("MONCTL_", "COMPOSE_"))}
    full_env.update({"NO_COLOR": "1", "COLUMNS": "400", **(env or {})})
    argv = [sys.executable, "-c", WRAPPER, module, attr, SECRET]
    argv += ["--project-dir", str(root), *before, *args, *after]
    return subprocess.run(
        argv, cwd=root, env=full_env, capture_output=True, text=True, timeout=120, check=False
    )


def error_lines(stderr: str) -> list[str]:
    return [line for line in stderr.splitlines() if line.startswith("error:")]


@pytest.mark.parametrize("case", list(CASES))
def test_an_unexpected_exception_ends_as_one_error_line_and_exit_1(
    project: Path, case: str
) -> None:
    takes_json, ping_var = CASES[case][3], CASES[case][4]
    with RecordingServer() as server:
        env = {ping_var: f"{server.url}/ping-uuid-1234"} if ping_var else {}
        plain = run(project, case, env=env)
        assert plain.returncode == 1, plain
        assert "Traceback" not in plain.stderr, plain.stderr
        assert plain.stdout == "", plain.stdout
        lines = error_lines(plain.stderr)
        assert lines == [
            "error: unexpected error: RuntimeError: the flux capacitor said "
            + ("****" if case != "init" else SECRET)  # init reads no .env: nothing to mask
            + " and then a second line"
        ], plain.stderr
        assert "hint:" in plain.stderr and "-v" in plain.stderr
        if ping_var:
            assert server.paths()[-1] == "/ping-uuid-1234/fail", server.paths()
            body = server.received[-1].body
            assert "RuntimeError: the flux capacitor said" in body, body
            assert SECRET not in body, body

    if takes_json:
        as_json = run(project, case, after=("--json",))
        assert as_json.returncode == 1, as_json
        doc = json.loads(as_json.stdout)  # one document, nothing else on stdout
        assert list(doc) == ["command", "ok", "exit_code", "error"], doc
        assert (doc["command"], doc["ok"], doc["exit_code"]) == (case, False, 1)
        assert doc["error"]["message"].startswith("unexpected error: RuntimeError: "), doc
        assert SECRET not in as_json.stdout + as_json.stderr
        assert "-v" in doc["error"]["hint"]
        assert "Traceback" not in as_json.stderr

    verbose = run(project, case, before=("-v",))
    assert verbose.returncode == 1, verbose
    assert "Traceback (most recent call last)" in verbose.stderr, verbose.stderr
    assert "RuntimeError" in verbose.stderr
    if case != "init":
        assert SECRET not in verbose.stderr, "the traceback showed a secret"
    assert len(error_lines(verbose.stderr)) == 1, verbose.stderr
