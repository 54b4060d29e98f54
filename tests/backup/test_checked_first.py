"""Nothing checked too late (issue 17), through the real CLI (``python -m monctl``): a bad
ping or notification URL stops the command when it starts (exit 6, the setting named, the
URL never shown, ``--json`` one document); restore and the drill verify the backup before
Docker is ever contacted (a corrupt backup is exit 10 with the engine down, not 5)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from support.backup_factory import make_backup

from monctl import project as project_module
from monctl.adapters.storage.local import LocalStorage
from monctl.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]
BACKUP = "20261126T020000Z"
TOKEN = "0123456789abcdef-secret-token"


@pytest.fixture
def stack(tmp_path: Path) -> Path:
    root = tmp_path / "stack"
    (root / "compose").mkdir(parents=True)
    shutil.copy2(REPO / project_module.COMPOSE_FILE, root / project_module.COMPOSE_FILE)
    (root / ".env").write_text("", encoding="utf-8")
    return root


def cli(root: Path, *args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    full = {k: v for k, v in os.environ.items() if not k.startswith("MONCTL_")}
    full.update(NO_COLOR="1", COLUMNS="300", **env)
    return subprocess.run(
        [sys.executable, "-m", "monctl", "--project-dir", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=full,
        check=False,
    )


# -- 6. URL settings checked when the command starts ----------------------------------------

BAD_URLS = {
    "port out of range": f"http://hc.example:99999/{TOKEN}",
    "bad IPv6": f"http://[::1/{TOKEN}",
    "control character": f"http://hc.example/{TOKEN}\x01",
    "port 0": f"http://hc.example:0/{TOKEN}",
}


@pytest.mark.parametrize("url", BAD_URLS.values(), ids=BAD_URLS.keys())
@pytest.mark.parametrize(
    ("argv", "var"),
    [
        (("backup", "--to", "{dest}"), "MONCTL_BACKUP_PING_URL"),
        (("restore", BACKUP, "--yes", "--from", "{dest}"), "MONCTL_RESTORE_PING_URL"),
        (("backup", "test", BACKUP, "--from", "{dest}"), "MONCTL_RESTORE_PING_URL"),
        (("backup", "--to", "{dest}"), "MONCTL_NOTIFY_URLS"),
    ],
    ids=["backup", "restore", "drill", "notify"],
)
def test_a_bad_url_setting_stops_the_command_at_its_start(
    stack: Path, tmp_path: Path, argv: tuple[str, ...], var: str, url: str
) -> None:
    if var == "MONCTL_NOTIFY_URLS":
        pytest.importorskip("apprise")
        url = "json" + url.removeprefix("http")
    dest = tmp_path / "dest"
    args = [a.replace("{dest}", str(dest)) for a in argv]
    for where in ("environment", ".env"):
        env = {var: url} if where == "environment" else {}
        if where == ".env":
            (stack / ".env").write_text(f"{var}='{url}'\n", encoding="utf-8")
        result = cli(stack, *args, "--json", env={"DOCKER_HOST": "unix:///nonexistent", **env})
        assert result.returncode == ExitCode.CONFIG, (where, result.stdout, result.stderr)
        doc = json.loads(result.stdout)  # one document
        assert doc["exit_code"] == ExitCode.CONFIG and var in doc["error"]["message"]
        assert "Traceback" not in result.stderr
        assert TOKEN not in result.stdout + result.stderr
        assert "hc.example" not in result.stdout + result.stderr
        assert not dest.exists()


# -- 7. restore and the drill verify before Docker is contacted ------------------------------


@pytest.mark.parametrize(
    "argv", [("restore", BACKUP, "--yes"), ("backup", "test", BACKUP)], ids=["restore", "drill"]
)
def test_a_corrupt_backup_is_told_as_such_with_the_engine_down(
    stack: Path, tmp_path: Path, argv: tuple[str, ...]
) -> None:
    dest = tmp_path / "dest"
    make_backup(LocalStorage(dest), BACKUP)
    down = {"DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock"}
    # Intact, the backup gets as far as the engine, which is down:
    intact = cli(stack, *argv, "--from", str(dest), "--json", env=down)
    assert intact.returncode == ExitCode.DOCKER, intact.stdout + intact.stderr
    # Corrupt, it never gets there: the operator learns first that the backup is bad.
    archive = dest / BACKUP / "prometheus.tar.zst"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))
    result = cli(stack, *argv, "--from", str(dest), "--json", env=down)
    assert result.returncode == ExitCode.INTEGRITY, result.stdout + result.stderr
    assert "corrupt" in json.loads(result.stdout)["error"]["message"]
