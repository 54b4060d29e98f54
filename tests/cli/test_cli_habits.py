"""The habits of the CLI as an operator meets them (issue 19, items 4-9), run as the
operator runs it: ``python -m monctl`` in a subprocess, stderr a pipe as under cron.

- one repository option for every backup command; options of `backup` that a
  subcommand cannot use are usage errors (4);
- an error in a pipe is exactly one `error:` line and one `hint:` line (5);
- `latest` wherever a backup id is taken (6);
- usage errors as `error:` + the --help pointer as the hint, also in --json (7);
- the Docker-unreachable message names the address tried; `logs` without an engine
  is exit 5 with an error line and hint (8);
- a broken .env stops every command with exit 6 (9).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from support.backup_factory import make_backup

from monctl.adapters.storage.local import LocalStorage
from monctl.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]


def monctl(
    *args: str, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    full_env = {**os.environ, **(env or {})}
    for var in ("MONCTL_PROJECT_DIR", "MONCTL_BACKUP_DEST", "DOCKER_HOST", "NO_COLOR"):
        full_env.pop(var, None)
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "monctl", *args],
        cwd=cwd,
        env=full_env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    """A stack as `monctl init` writes it."""
    target = tmp_path / "stack"
    done = monctl("init", str(target), cwd=tmp_path)
    assert done.returncode == 0, done.stderr
    return target


def one_error(stderr: str) -> tuple[str, str]:
    """The error and hint lines of a failure in a pipe: exactly one of each."""
    lines = stderr.splitlines()
    errors = [line for line in lines if line.startswith("error: ")]
    hints = [line for line in lines if line.strip().startswith("hint: ")]
    assert len(errors) == 1 and len(hints) == 1, stderr
    assert len(lines) == 2, f"nothing but the error and its hint:\n{stderr}"
    return errors[0], hints[0]


# -- 4: one repository option ---------------------------------------------------------------


def test_the_backup_groups_destination_is_the_subcommands(stack: Path, tmp_path: Path) -> None:
    elsewhere = tmp_path / "elsewhere"
    make_backup(LocalStorage(str(elsewhere)), "20260101T020000Z")
    for args in (
        ["backup", "--to", str(elsewhere), "list"],
        ["backup", "--repo", str(elsewhere), "list"],
        ["backup", "list", "--repo", str(elsewhere)],
        ["backup", "list", "--from", str(elsewhere)],
    ):
        done = monctl(*args, "--json", cwd=stack)
        doc = json.loads(done.stdout)
        assert doc["location"] == str(elsewhere), (args, doc)
        assert [b["id"] for b in doc["backups"]] == ["20260101T020000Z"], args


@pytest.mark.parametrize(
    "subcommand",
    [["list"], ["verify", "latest"], ["prune", "--keep-last", "1", "--dry-run"]],
)
def test_every_backup_command_takes_repo(
    stack: Path, tmp_path: Path, subcommand: list[str]
) -> None:
    repo = tmp_path / "repo"
    make_backup(LocalStorage(str(repo)), "20260101T020000Z")
    done = monctl("backup", *subcommand, "--repo", str(repo), "--json", cwd=stack)
    assert done.returncode == 0, done.stdout + done.stderr
    assert str(repo) in done.stdout


@pytest.mark.parametrize("option", [["--full"], ["--compression", "zstd"], ["-q"]])
def test_a_group_option_a_subcommand_cannot_use_is_a_usage_error(
    stack: Path, option: list[str]
) -> None:
    done = monctl("backup", *option, "list", cwd=stack)
    assert done.returncode == ExitCode.USAGE, done.stdout + done.stderr
    error, _hint = one_error(done.stderr)
    assert option[0] in error and "backup list" in error


def test_two_different_repositories_are_a_usage_error(stack: Path, tmp_path: Path) -> None:
    done = monctl("backup", "--to", str(tmp_path / "a"), "list", "--from", str(tmp_path / "b"),
                  cwd=stack)  # fmt: skip
    assert done.returncode == ExitCode.USAGE
    one_error(done.stderr)


# -- 5 and 7: one error line, one hint line ---------------------------------------------------


def test_a_long_error_in_a_pipe_is_one_line(stack: Path, tmp_path: Path) -> None:
    far = tmp_path / ("a-directory-with-a-long-name-" * 3) / "docker.sock"
    done = monctl("status", cwd=stack, env={"DOCKER_HOST": f"unix://{far}"})
    assert done.returncode == ExitCode.DOCKER
    error, _hint = one_error(done.stderr)
    assert len(error) > 100 and str(far) in error  # whole, on its line


@pytest.mark.parametrize(
    ("args", "help_of"),
    [
        (["backup", "list", "--bogus"], "monctl backup list"),
        (["backup", "verify", "not-an-id"], "monctl backup verify"),
        (["up", "nosuchservice"], "monctl up"),
        (["nosuchcommand"], "monctl"),
    ],
)
def test_usage_errors_are_an_error_line_and_the_help_as_hint(
    stack: Path, args: list[str], help_of: str
) -> None:
    done = monctl(*args, cwd=stack)
    assert done.returncode == ExitCode.USAGE
    assert "Usage:" not in done.stderr
    _error, hint = one_error(done.stderr)
    assert hint.strip() == f"hint: see `{help_of} --help`"
    done = monctl(*args, "--json", cwd=stack)
    doc = json.loads(done.stdout)
    assert doc["exit_code"] == ExitCode.USAGE and doc["ok"] is False
    assert doc["error"]["hint"] == f"see `{help_of} --help`"


def test_monctl_alone_still_shows_the_help(stack: Path) -> None:
    done = monctl(cwd=stack)
    assert "Usage: monctl" in done.stdout + done.stderr


# -- 6: latest --------------------------------------------------------------------------------


def test_latest_is_the_newest_complete_backup_for_verify_and_restore(
    stack: Path, tmp_path: Path
) -> None:
    repo = LocalStorage(str(tmp_path / "repo"))
    make_backup(repo, "20260101T020000Z")
    make_backup(repo, "20260102T020000Z")
    make_backup(repo, "20260103T020000Z", manifest=False)  # incomplete: not `latest`
    done = monctl("backup", "verify", "latest", "--repo", repo.location, "--json", cwd=stack)
    assert done.returncode == 0, done.stdout + done.stderr
    assert json.loads(done.stdout)["id"] == "20260102T020000Z"
    # restore takes it too (no engine here: it gets past the command line, to Docker)
    done = monctl(
        "restore", "latest", "--from", repo.location, "--yes", cwd=stack,
        env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"},
    )  # fmt: skip
    assert done.returncode != ExitCode.USAGE, done.stderr
    assert "not a backup id" not in done.stderr


def test_latest_of_an_empty_repository_is_a_storage_error(stack: Path, tmp_path: Path) -> None:
    done = monctl("backup", "verify", "latest", "--repo", str(tmp_path / "none"), cwd=stack)
    assert done.returncode == ExitCode.STORAGE
    one_error(done.stderr)


# -- 8: Docker -------------------------------------------------------------------------------


def test_the_docker_message_names_the_address_tried(stack: Path, tmp_path: Path) -> None:
    host = f"unix://{tmp_path}/nothing-here.sock"
    done = monctl("status", "--json", cwd=stack, env={"DOCKER_HOST": host})
    assert done.returncode == ExitCode.DOCKER
    doc = json.loads(done.stdout)
    assert host in doc["error"]["message"]
    assert "set DOCKER_HOST" not in doc["error"]["hint"]  # it is set: correct it


def test_logs_without_an_engine_is_an_error_line_hint_and_exit_5(
    stack: Path, tmp_path: Path
) -> None:
    done = monctl("logs", cwd=stack, env={"DOCKER_HOST": f"unix://{tmp_path}/none.sock"})
    assert done.returncode == ExitCode.DOCKER, done.stderr
    error, _ = one_error(done.stderr)
    assert "cannot reach the Docker daemon" in error


# -- 9: .env checked eagerly -----------------------------------------------------------------


@pytest.mark.parametrize(
    "args",
    [["validate", "--local"], ["backup", "list"], ["status"], ["backup", "verify", "--all"]],
)
def test_a_bad_port_in_env_stops_every_command_with_6(stack: Path, args: list[str]) -> None:
    (stack / ".env").write_text("PROMETHEUS_PORT=70000\n", encoding="utf-8")
    done = monctl(*args, cwd=stack)
    assert done.returncode == ExitCode.CONFIG, done.stdout + done.stderr
    error, _ = one_error(done.stderr)
    assert "PROMETHEUS_PORT" in error


# -- 10: validate --local with tools missing -------------------------------------------------


def test_validate_local_with_tools_missing_is_no_pass(stack: Path, tmp_path: Path) -> None:
    # A PATH holding only the interpreter: promtool, amtool, loki and promtail are all missing.
    bare = tmp_path / "bin"
    bare.mkdir()
    (bare / "python3").symlink_to(sys.executable)
    env = {"PATH": str(bare)}
    done = monctl("validate", "--local", "--json", cwd=stack, env=env)
    doc = json.loads(done.stdout)
    assert done.returncode == ExitCode.FAILED and doc["ok"] is False, done.stdout
    assert set(doc["missing_tools"]) == {"promtool", "amtool", "loki", "promtail"}
    rows = {c["service"] + " " + c["check"]: c for c in doc["checks"]}
    assert rows["prometheus config"]["status"] == "skipped"
    assert "package prometheus" in rows["prometheus config"]["summary"]
    assert "prometheus-alertmanager" in rows["alertmanager config"]["summary"]
    assert "grafana/loki image" in rows["loki config"]["summary"]
    done = monctl("validate", "--local", cwd=stack, env=env)
    assert done.returncode == ExitCode.FAILED
    assert "--allow-missing-tools" in done.stdout
    # The operator says skipping is fine: a pass (what was checked is valid).
    done = monctl("validate", "--local", "--allow-missing-tools", "--json", cwd=stack, env=env)
    doc = json.loads(done.stdout)
    assert done.returncode == 0 and doc["ok"] is True and doc["allow_missing_tools"] is True


# -- 11: smaller habits ----------------------------------------------------------------------


def on_a_terminal(*args: str, cwd: Path, env: dict[str, str]) -> bytes:
    """What ``monctl ARGS`` writes to a terminal (stdout and stderr on one pty)."""
    import pty

    leader, follower = pty.openpty()
    full_env = {**os.environ, "COLUMNS": "120", **env}
    full_env.pop("MONCTL_PROJECT_DIR", None)
    proc = subprocess.Popen(
        [sys.executable, "-m", "monctl", *args],
        cwd=cwd,
        env=full_env,
        stdin=subprocess.DEVNULL,
        stdout=follower,
        stderr=follower,
    )
    os.close(follower)
    chunks = []
    while True:
        try:
            data = os.read(leader, 65536)
        except OSError:  # EIO: the child closed the terminal
            break
        if not data:
            break
        chunks.append(data)
    proc.wait(timeout=60)
    os.close(leader)
    return b"".join(chunks)


def test_no_color_on_a_terminal_has_no_escape_sequences(stack: Path, tmp_path: Path) -> None:
    repo = LocalStorage(str(tmp_path / "repo"))
    make_backup(repo, "20260101T020000Z")
    args = ("backup", "list", "--repo", repo.location)
    styled = on_a_terminal(*args, cwd=stack, env={"TERM": "xterm-256color"})
    assert b"\x1b[" in styled and b"20260101T020000Z" in styled  # the check can fail
    plain = on_a_terminal(*args, cwd=stack, env={"TERM": "xterm-256color", "NO_COLOR": "1"})
    assert b"20260101T020000Z" in plain and b"\x1b[" not in plain, plain


@pytest.mark.parametrize(
    "command",
    ["up", "down", "status", "logs", "init", "health", "reload", "validate", "backup",
     "backup list", "backup verify", "backup prune", "backup test", "restore"],
)  # fmt: skip
def test_every_help_has_examples(stack: Path, command: str) -> None:
    done = monctl(*command.split(), "--help", cwd=stack)
    assert done.returncode == 0
    examples = done.stdout.split("Examples:\n", 1)
    assert len(examples) == 2, done.stdout
    assert examples[1].lstrip().startswith(f"monctl {command.split()[0]}")


def test_the_drills_timeout_is_seconds_like_every_other(stack: Path) -> None:
    done = monctl("backup", "test", "--help", cwd=stack)
    assert "--timeout SECONDS" in done.stdout and "FLOAT RANGE" not in done.stdout


def complete(words: str, cwd: Path) -> list[str]:
    """What bash completion offers for the last word of ``words``."""
    env = {
        "_MONCTL_COMPLETE": "bash_complete",
        "COMP_WORDS": words,
        "COMP_CWORD": str(len(words.split(" ")) - 1),
    }
    done = monctl(cwd=cwd, env=env)
    return [line.split(",", 1)[1] for line in done.stdout.splitlines() if "," in line]


def test_completion_offers_service_names_and_backup_ids(stack: Path) -> None:
    assert complete("monctl logs prom", stack) == ["prometheus", "promtail"]
    assert "grafana" in complete("monctl backup --service ", stack)
    repo = LocalStorage(str(stack / "backups"))
    make_backup(repo, "20260101T020000Z")
    make_backup(repo, "20260102T020000Z")
    offered = complete("monctl backup verify ", stack)
    assert offered == ["latest", "20260102T020000Z", "20260101T020000Z"]
    assert complete("monctl restore 202601", stack) == ["20260102T020000Z", "20260101T020000Z"]


def test_a_drill_on_swarm_says_it_runs_on_plain_containers(stack: Path, tmp_path: Path) -> None:
    """Issue 18: the drill does not use the project's runtime; with --runtime swarm it
    says so (once, before it starts) instead of silently running on compose."""
    empty = tmp_path / "none"
    empty.mkdir()
    on_swarm = monctl(
        "--runtime", "swarm", "backup", "test", "latest", "--repo", str(empty), cwd=stack
    )
    note = "the drill runs as plain containers on this engine, not on the swarm runtime"
    assert on_swarm.stderr.count(note) == 1, on_swarm.stderr
    on_compose = monctl("backup", "test", "latest", "--repo", str(empty), cwd=stack)
    assert note not in on_compose.stderr
    assert on_swarm.returncode == on_compose.returncode != 0
    helped = monctl("backup", "test", "--help", cwd=stack)
    assert "also with --runtime swarm" in " ".join(helped.stdout.split())


def test_a_usage_error_of_credentials_rotate_names_the_subcommand(stack: Path) -> None:
    """Its JSON document names the command as its success does ("credentials rotate")."""
    done = monctl("credentials", "rotate", "--timeout", "soon", "--json", cwd=stack)
    assert done.returncode == ExitCode.USAGE
    assert json.loads(done.stdout)["command"] == "credentials rotate"
