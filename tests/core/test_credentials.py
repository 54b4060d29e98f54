"""The stack's credentials in .env (monctl/credentials.py): generated, hashed, kept in step,
rewritten safely, read alike by monctl and compose, and never shown."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import bcrypt
import httpx
import pytest
import respx
from support import require, require_binary

from monctl import credentials, redaction
from monctl import services as declared
from monctl.errors import ConfigError, OperationFailed
from monctl.project import Project, parse_env

REPO = Path(__file__).resolve().parents[2]
PASSWORD_VAR = credentials.PASSWORD_VAR
WEB_VAR = credentials.WEB_CONFIG_VAR


def project_with(tmp_path: Path, text: str) -> Project:
    (tmp_path / ".env").write_text(text)
    (tmp_path / ".env").chmod(0o600)
    project = Project(root=tmp_path)
    project.load_env()
    return project


def hashed_password(config: str) -> str:
    return str(json.loads(config)["basic_auth_users"]["monctl"])


def test_ensure_generates_the_password_and_its_hash_into_env(tmp_path: Path) -> None:
    project = project_with(tmp_path, "# stack\nGRAFANA_ADMIN_USER=admin\n")
    done = credentials.ensure(project)
    env = parse_env((tmp_path / ".env").read_text())
    password, config = env[PASSWORD_VAR], env[WEB_VAR]
    assert len(password) == 32
    assert bcrypt.checkpw(password.encode(), hashed_password(config).encode())
    assert env["GRAFANA_ADMIN_USER"] == "admin"
    assert (tmp_path / ".env").read_text().startswith("# stack\n")
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert done == [f"generated {PASSWORD_VAR} in .env"]
    assert all(password not in line for line in done)
    assert redaction.redact(f"x {password} y") == "x **** y"
    # Nothing to do the second time: the file is left as it is.
    before = (tmp_path / ".env").read_text()
    assert credentials.ensure(project) == []
    assert (tmp_path / ".env").read_text() == before


def test_ensure_replaces_the_generate_marker_of_env_example(tmp_path: Path) -> None:
    project = project_with(tmp_path, f"{PASSWORD_VAR}=__GENERATE__\n{WEB_VAR}=\n")
    credentials.ensure(project)
    text = (tmp_path / ".env").read_text()
    assert "__GENERATE__" not in text
    assert text.count(f"{PASSWORD_VAR}=") == 1 and text.count(f"{WEB_VAR}=") == 1


def test_a_password_set_by_hand_gets_a_new_hash_and_is_kept(tmp_path: Path) -> None:
    chosen = "Chosen-By-Hand-0123456789"
    old = credentials.web_config("another-password-0123456789")
    project = project_with(tmp_path, f"{PASSWORD_VAR}={chosen}\n{WEB_VAR}='{old}'\n")
    done = credentials.ensure(project)
    env = parse_env((tmp_path / ".env").read_text())
    assert env[PASSWORD_VAR] == chosen
    assert bcrypt.checkpw(chosen.encode(), hashed_password(env[WEB_VAR]).encode())
    assert done == [f"wrote {WEB_VAR} in .env (the password's hash)"]


@pytest.mark.parametrize("bad", ["short", "has a space in it 12345", "quote'inside-1234567890"])
def test_an_unusable_password_is_refused_without_showing_it(tmp_path: Path, bad: str) -> None:
    project = Project(root=tmp_path, env={PASSWORD_VAR: bad})
    (tmp_path / ".env").write_text("")
    with pytest.raises(ConfigError) as caught:
        credentials.ensure(project)
    assert bad not in caught.value.message and bad not in (caught.value.hint or "")


def test_env_text_replaces_the_winning_assignment_and_appends_the_rest() -> None:
    text = "A=1\n# B=comment\nB=2\nexport B=3\nC=4\n"
    out = credentials.env_text(text, {"B": "new", "D": "$2b$10$x"})
    assert out == "A=1\n# B=comment\nB=2\nB=new\nC=4\nD='$2b$10$x'\n"
    assert parse_env(out) == {"A": "1", "B": "new", "C": "4", "D": "$2b$10$x"}


def test_rotate_changes_both_and_keeps_everything_else(tmp_path: Path) -> None:
    project = project_with(tmp_path, "SMTP_PASSWORD=keep-me-please\n")
    credentials.ensure(project)
    first = parse_env((tmp_path / ".env").read_text())
    credentials.rotate(project)
    second = parse_env((tmp_path / ".env").read_text())
    assert second["SMTP_PASSWORD"] == "keep-me-please"
    assert second[PASSWORD_VAR] != first[PASSWORD_VAR]
    assert bcrypt.checkpw(second[PASSWORD_VAR].encode(), hashed_password(second[WEB_VAR]).encode())
    assert project.setting(PASSWORD_VAR) == second[PASSWORD_VAR]  # reloaded
    assert (tmp_path / ".env").stat().st_mode & 0o777 == 0o600
    assert [p.name for p in tmp_path.iterdir()] == [".env"]  # no temporary file left


def test_only_the_declared_services_get_the_credentials(tmp_path: Path) -> None:
    project = Project(root=tmp_path, env={PASSWORD_VAR: "p" * 32})
    guarded = {s.name for s in declared.SERVICES if credentials.auth(project, s)}
    assert guarded == {"prometheus", "alertmanager"}
    assert credentials.auth(project, declared.get("prometheus")) == ("monctl", "p" * 32)


def test_a_401_says_the_credentials_disagree_and_never_shows_them(tmp_path: Path) -> None:
    secret = "s" * 32
    project = Project(root=tmp_path, env={PASSWORD_VAR: secret})
    prometheus = declared.get("prometheus")
    with respx.mock(assert_all_called=True) as router:
        route = router.post("http://127.0.0.1:9090/-/reload").mock(
            return_value=httpx.Response(401, text="Unauthorized")
        )
        with pytest.raises(OperationFailed) as caught:
            credentials.to_service(
                project, prometheus, "POST", "http://127.0.0.1:9090/-/reload", what="reloading"
            )
    sent = route.calls.last.request.headers["authorization"]
    assert sent.startswith("Basic ")
    assert "refused the stack's credentials" in caught.value.message
    assert secret not in caught.value.message + (caught.value.hint or "")


@pytest.mark.binaries
def test_compose_reads_the_written_values_as_monctl_does(tmp_path: Path) -> None:
    """The hash is full of $: compose must take it literally from .env, as monctl does."""
    docker = require_binary("docker")
    version = subprocess.run([docker, "compose", "version"], capture_output=True, check=False)
    require(version.returncode == 0, "docker compose v2 is not available")
    shutil.copytree(REPO / "compose", tmp_path / "compose")
    project = project_with(tmp_path, "GRAFANA_ADMIN_PASSWORD=x-admin-password\n")
    credentials.ensure(project)
    result = subprocess.run(
        [docker, "compose", "-f", str(tmp_path / "compose/docker-compose.monitoring.yml"),
         "--env-file", str(tmp_path / ".env"), "config", "--format", "json"],
        capture_output=True, text=True, check=False, env={"PATH": "/usr/bin:/bin:/usr/local/bin"},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    # `compose config` writes a literal $ as $$ (its own escape, for reading it again).
    seen = json.loads(result.stdout)["x-monctl-credentials-required"].replace("$$", "$")
    assert seen == project.setting(PASSWORD_VAR) + project.setting(WEB_VAR)
