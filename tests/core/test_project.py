"""Project discovery, .env parsing and generation."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from monctl import project, redaction
from monctl.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]


def make_stack(root: Path, example: str = "GRAFANA_ADMIN_PASSWORD=__GENERATE__\n") -> Path:
    (root / "compose").mkdir(parents=True)
    (root / "compose" / "docker-compose.monitoring.yml").write_text("services: {}\n")
    (root / ".env.example").write_text(example)
    return root


def test_parse_env_handles_comments_quotes_export_and_inline_comments() -> None:
    env = project.parse_env(
        "# comment\n\nA=1\nexport B='two words'\nC=\"x=y\"\nD=plain # trailing\nE=\n"
    )
    assert env == {"A": "1", "B": "two words", "C": "x=y", "D": "plain", "E": ""}


def test_malformed_env_names_the_line_but_never_its_content() -> None:
    with pytest.raises(ConfigError) as caught:
        project.parse_env("A=1\nthis is s3cr3t-value\n")
    assert "line 2" in caught.value.message
    assert "s3cr3t" not in caught.value.message


def test_find_root_walks_up_from_a_subdirectory(tmp_path: Path) -> None:
    root = make_stack(tmp_path / "stack")
    deep = root / "config" / "prometheus"
    deep.mkdir(parents=True)
    assert project.find_root(None, start=deep) == root


def test_find_root_without_a_stack_says_what_to_do(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        project.find_root(None, start=tmp_path)
    assert "no monitoring stack" in caught.value.message
    assert "monctl init" in (caught.value.hint or "")
    with pytest.raises(ConfigError):
        project.find_root(tmp_path)


def test_ensure_env_generates_secrets_with_mode_0600(tmp_path: Path) -> None:
    root = make_stack(tmp_path, "GRAFANA_ADMIN_USER=admin\nGRAFANA_ADMIN_PASSWORD=__GENERATE__\n")
    proj = project.Project(root=root)
    written = project.ensure_env(proj)
    assert written == root / ".env"
    assert stat.S_IMODE(written.stat().st_mode) == 0o600
    password = proj.env["GRAFANA_ADMIN_PASSWORD"]
    assert password not in ("admin", "__GENERATE__", "")
    assert len(password) >= 20
    # Loading registered the generated password for redaction.
    assert password not in redaction.redact(f"password is {password}")
    # A second run leaves the operator's file alone.
    assert project.ensure_env(proj) is None
    assert proj.env["GRAFANA_ADMIN_PASSWORD"] == password


def test_two_generated_env_files_get_different_secrets(tmp_path: Path) -> None:
    a = project.Project(root=make_stack(tmp_path / "a"))
    b = project.Project(root=make_stack(tmp_path / "b"))
    project.ensure_env(a)
    project.ensure_env(b)
    assert a.env["GRAFANA_ADMIN_PASSWORD"] != b.env["GRAFANA_ADMIN_PASSWORD"]


def test_the_real_env_example_generates_a_usable_env(tmp_path: Path) -> None:
    example = REPO / ".env.example"
    if not example.exists():
        pytest.fail(".env.example is missing from the repository")
    root = make_stack(tmp_path, example.read_text())
    proj = project.Project(root=root)
    project.ensure_env(proj)
    assert proj.env["GRAFANA_ADMIN_PASSWORD"] not in ("", "admin", project.GENERATE_MARKER)


def test_process_environment_wins_over_env_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    proj = project.Project(root=tmp_path, env={"PROMETHEUS_PORT": "9999"})
    assert proj.setting("PROMETHEUS_PORT") == "9999"
    monkeypatch.setenv("PROMETHEUS_PORT", "19090")
    assert proj.setting("PROMETHEUS_PORT") == "19090"


def test_init_writes_an_editable_copy_of_the_stack(tmp_path: Path) -> None:
    target = project.init(tmp_path / "copy")
    assert (target / "compose" / "docker-compose.monitoring.yml").is_file()
    assert (target / "config" / "prometheus" / "prometheus.yml").is_file()
    assert (target / ".env.example").is_file()
    with pytest.raises(ConfigError):
        project.init(target)
    project.init(target, force=True)
