"""Numbers, ids and paths from the command line are checked before anything runs:
out of range or not a number is a usage error (exit 2), so is a path the system
cannot even name; never a traceback, a hang, or a date overflow."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monctl import project
from monctl.cli import _run

REPO = Path(__file__).resolve().parents[2]
LONG_NAME = "x" * 300  # longer than any file name may be (NAME_MAX 255)
NAN = ("--timeout", "nan")
LONG_PATH = "/tmp/" + "/".join(["d" * 200] * 25)  # longer than PATH_MAX (4096)


@pytest.fixture
def root(tmp_path: Path) -> Path:
    root = tmp_path / "stack"
    (root / "compose").mkdir(parents=True)
    shutil.copy2(REPO / project.COMPOSE_FILE, root / project.COMPOSE_FILE)
    (root / ".env").write_text("GRAFANA_ADMIN_PASSWORD=x\n", encoding="utf-8")
    return root


def run(root: Path, *args: str, capsys: pytest.CaptureFixture[str]) -> tuple[int, str]:
    code = _run(["--project-dir", str(root), *args])
    captured = capsys.readouterr()
    return code, " ".join((captured.err + captured.out).split())  # the console wraps lines


@pytest.mark.parametrize(
    "args",
    [
        ["up", "--timeout", "nan"],
        ["up", "--timeout", "-5"],
        ["up", "--timeout", "1e308"],
        ["health", "--timeout", "nan"],
        ["health", "--interval", "nan"],
        ["health", "--probe-timeout", "inf"],
        ["backup", "--keep-days", "99999999999999999999"],
        ["backup", "prune", "--keep-days", "1e9"],
        ["backup", "prune", "--keep-days", str(10**6)],
        ["backup", "prune", "--keep-last", str(10**30)],
        ["logs", "--tail", "abc"],
        ["logs", "--tail", "-3"],
    ],
    ids=" ".join,
)
def test_numbers_out_of_range_are_usage_errors(
    root: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(root, *args, capsys=capsys)
    assert code == 2, output
    assert "Traceback" not in output


@pytest.mark.timeout(60)
def test_a_nan_timeout_does_not_hang_health(root: Path) -> None:
    """`health --wait --timeout nan` once polled for ever (no deadline is ever reached)."""
    env = {**os.environ, "DOCKER_HOST": f"unix://{root}/no-docker.sock"}
    result = subprocess.run(
        [sys.executable, "-m", "monctl", "--project-dir", str(root), "health", "--wait", *NAN],
        capture_output=True,
        text=True,
        timeout=50,
        env=env,
        check=False,
    )
    assert result.returncode == 2, result.stderr


@pytest.mark.parametrize(
    "args",
    [
        ["backup", "verify", "x" * 5000],
        ["backup", "verify", "not-an-id"],
        ["backup", "verify", "20261301T000000Z"],  # month 13
        ["restore", "y" * 100_000, "--yes"],
        ["restore", "../20260101T000000Z", "--yes"],
    ],
    ids=lambda a: " ".join(x[:20] for x in a),
)
def test_a_backup_id_of_the_wrong_shape_is_a_usage_error(
    root: Path, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(root, *args, capsys=capsys)
    assert code == 2, output[-2000:]
    assert "backup id" in output
    assert "Traceback" not in output
    assert "x" * 200 not in output and "y" * 200 not in output  # not echoed whole


@pytest.mark.parametrize("path", [f"/tmp/{LONG_NAME}", LONG_PATH], ids=["name", "path"])
@pytest.mark.parametrize(
    "args",
    [
        ["backup", "list", "--from", "{p}"],
        ["backup", "prune", "--keep-last", "1", "--from", "{p}"],
        ["backup", "--to", "{p}"],
        ["backup", "verify", "20260101T000000Z", "--from", "{p}"],
        ["restore", "20260101T000000Z", "--from", "{p}", "--yes"],
        ["health", "--junit", "{p}/h.xml"],
    ],
    ids=lambda a: " ".join(a[:2]),
)
def test_a_path_too_long_to_exist_is_a_usage_error(
    root: Path, path: str, args: list[str], capsys: pytest.CaptureFixture[str]
) -> None:
    code, output = run(root, *(a.format(p=path) for a in args), capsys=capsys)
    assert code == 2, output[-2000:]
    assert "too long" in output and "Traceback" not in output


@pytest.mark.parametrize("path", [f"/tmp/{LONG_NAME}", LONG_PATH], ids=["name", "path"])
def test_a_project_dir_too_long_to_exist_is_a_usage_error(
    path: str, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    code = _run(["--project-dir", path, "status"])
    err = capsys.readouterr().err
    assert code == 2, err
    assert "too long" in err and "Traceback" not in err
    monkeypatch.setenv("MONCTL_PROJECT_DIR", path)
    code = _run(["status"])
    err = capsys.readouterr().err
    assert code == 2, err
    code = _run(["init", path])
    err = capsys.readouterr().err
    assert code == 2, err


def test_a_destination_in_env_too_long_to_exist_is_refused_cleanly(
    root: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    (root / ".env").write_text(f"MONCTL_BACKUP_DEST={LONG_PATH}\n", encoding="utf-8")
    code, output = run(root, "backup", "list", capsys=capsys)
    assert code in (2, 6, 8), output[-2000:]
    assert "too long" in output and "Traceback" not in output
