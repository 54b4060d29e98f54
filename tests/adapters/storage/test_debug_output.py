"""`monctl -vv` shows botocore's debug log (that is what -vv is for) with every secret
masked: the AWS secret key and session token, Authorization headers and signatures,
and .env secrets — raw, percent-encoded, as hex bytes or JSON-escaped. A real monctl
process against moto's S3 server, its whole stdout and stderr searched."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
from support import REPO
from support.backup_factory import make_backup
from support.debug_secrets import ENV_SECRET, SECRET_ACCESS_KEY, SESSION_TOKEN, leaks

from monctl import project
from monctl.adapters.storage.s3 import S3Storage

BACKUP_ID = "20260101T000000Z"


@pytest.fixture
def secret_env(aws_env: str, monkeypatch: pytest.MonkeyPatch) -> dict[str, str]:
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", SECRET_ACCESS_KEY)
    monkeypatch.setenv("AWS_SESSION_TOKEN", SESSION_TOKEN)
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONCTL_")}
    env.update(NO_COLOR="1", COLUMNS="300")
    return env


def stack_with_env_secret(root: Path) -> Path:
    (root / "compose").mkdir(parents=True)
    shutil.copy2(REPO / project.COMPOSE_FILE, root / project.COMPOSE_FILE)
    (root / ".env").write_text(f"GRAFANA_ADMIN_PASSWORD='{ENV_SECRET}'\n", encoding="utf-8")
    return root


def run_vv(root: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "monctl", "-vv", "--project-dir", str(root), *args],
        capture_output=True,
        text=True,
        timeout=120,
        env=env,
        check=False,
    )


@pytest.mark.parametrize(
    "args",
    [["backup", "list"], ["backup", "verify", BACKUP_ID], ["backup", "prune", "--keep-last", "1"]],
    ids=" ".join,
)
def test_debug_output_of_an_s3_run_shows_no_secret(
    tmp_path: Path,
    secret_env: dict[str, str],
    bucket: str,
    make_s3: Callable[..., S3Storage],
    args: list[str],
) -> None:
    # The .env secret is also the destination's prefix, so it is in every request
    # line botocore and urllib3 log (percent-encoded: it has a space, "+" and "ö").
    make_backup(make_s3(prefix=ENV_SECRET), BACKUP_ID, services=("grafana",))
    root = stack_with_env_secret(tmp_path / "stack")
    result = run_vv(root, secret_env, *args, "--from", f"s3://{bucket}/{ENV_SECRET}")
    assert result.returncode == 0, result.stderr[-3000:]
    shown = result.stdout + result.stderr
    # -vv shows botocore's own debug log, requests and headers included ...
    assert "DEBUG botocore.endpoint" in shown and "DEBUG urllib3" in shown
    assert "X-Amz-Security-Token" in shown and "Authorization" in shown
    # ... and none of the secrets in it, in any form.
    assert not leaks(shown), leaks(shown)


def test_debug_output_of_refused_credentials_shows_no_secret(
    tmp_path: Path,
    secret_env: dict[str, str],
    bucket: str,
    moto_auth: Callable[[bool], None],
) -> None:
    """A refusal makes S3 answer with an error body (and botocore log it)."""
    root = stack_with_env_secret(tmp_path / "stack")
    moto_auth(True)
    result = run_vv(root, secret_env, "backup", "list", "--from", f"s3://{bucket}/{ENV_SECRET}")
    assert result.returncode == 8, result.stderr[-3000:]
    shown = result.stdout + result.stderr
    assert "Response body" in shown
    assert not leaks(shown), leaks(shown)
