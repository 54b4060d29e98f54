"""The .env file from outside: its quoting rules, its encoding, its size, and what
every command does with a broken one (exit 6 naming the line, never its content)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from monctl import project, services
from monctl.cli import _run
from monctl.errors import ConfigError

REPO = Path(__file__).resolve().parents[2]
SECRET = "s3cr3t-do-not-print"


def stack(root: Path, env: bytes | None = None) -> Path:
    """A stack directory (the repo's compose file) with ``env`` as its .env (raw bytes)."""
    (root / "compose").mkdir(parents=True)
    shutil.copy2(REPO / project.COMPOSE_FILE, root / project.COMPOSE_FILE)
    shutil.copy2(REPO / ".env.example", root / ".env.example")
    if env is not None:
        (root / ".env").write_bytes(env)
    return root


# -- the rules ------------------------------------------------------------------------


def test_quoting_rules() -> None:
    text = "\n".join(
        [
            "# a comment",
            "   # an indented comment",
            "",
            "PLAIN=value",
            "SPACED = around the equals sign   ",
            "export EXPORTED=1",
            "export=not the keyword",
            "INLINE=value # a comment after a space",
            "HASH=abc#def",
            "SINGLE='literal \\n and \"double\" # not a comment'",
            'DOUBLE="a \\"quoted\\" word, a \\\\ backslash, a\\nnewline and a # hash"',
            "QUOTED_COMMENT='x'   # comment after the quotes",
            "EMPTY=",
            "EMPTY_QUOTES=''",
            "MID=it's fine",
            "CRLF=windows\r",
            "LAST=wins",
            "LAST=second",
        ]
    )
    assert project.parse_env(text) == {
        "PLAIN": "value",
        "SPACED": "around the equals sign",
        "EXPORTED": "1",
        "export": "not the keyword",
        "INLINE": "value",
        "HASH": "abc#def",
        "SINGLE": 'literal \\n and "double" # not a comment',
        "DOUBLE": 'a "quoted" word, a \\ backslash, a\nnewline and a # hash',
        "QUOTED_COMMENT": "x",
        "EMPTY": "",
        "EMPTY_QUOTES": "",
        "MID": "it's fine",
        "CRLF": "windows",
        "LAST": "second",
    }


@pytest.mark.parametrize(
    ("text", "line", "what"),
    [
        (f"A=1\nB='{SECRET}\nC=3\n", 2, "unterminated quote"),
        (f'A=1\nB="{SECRET}\\"\n', 2, "unterminated quote"),
        (f"A=1\n\nB='{SECRET}' trailing\n", 3, "after the closing quote"),
        (f"A=1\n{SECRET}\n", 2, "not KEY=VALUE"),
        (f"A=1\n1BAD={SECRET}\n", 2, "not KEY=VALUE"),
        (f"A=1\nexport {SECRET}\n", 2, "not KEY=VALUE"),
    ],
)
def test_a_broken_line_is_named_but_never_shown(text: str, line: int, what: str) -> None:
    with pytest.raises(ConfigError) as caught:
        project.parse_env(text)
    message = caught.value.message + (caught.value.hint or "")
    assert f"line {line}" in message and what in message
    assert SECRET not in message


@pytest.mark.timeout(20)
def test_parsing_is_linear_in_the_length_of_a_value() -> None:
    """A long run of spaces once took 17 s for 80k (a lazy regex backtracking); the
    pytest-timeout guard fails the test if parsing is anything but linear."""
    env = project.parse_env("A=x" + " " * 400_000 + "y\nB=2\n")  # the 17-second shape
    assert env["A"] == "x" + " " * 400_000 + "y" and env["B"] == "2"
    for value in (" " * 400_000 + "x", "x" + " " * 400_000, "'" + " " * 400_000 + "'"):
        env = project.parse_env(f"A={value}\nB=2\n" * 2)
        assert env["B"] == "2" and env["A"].strip() in ("x", "")
    env = project.parse_env("A=" + "a \t" * 200_000 + "# c\n")
    assert env["A"].endswith("a")


# -- encodings and file kinds ------------------------------------------------------------------


def test_a_utf8_bom_is_accepted(tmp_path: Path) -> None:
    """What most tools (and docker compose) do: the BOM is not part of the first name."""
    proj = project.Project(root=stack(tmp_path, b"\xef\xbb\xbfGRAFANA_PORT=3999\nA=1\n"))
    proj.load_env()
    assert proj.env == {"GRAFANA_PORT": "3999", "A": "1"}


@pytest.mark.parametrize(
    ("data", "expected"),
    [
        ("A=1\nB=2\n".encode("utf-16"), "UTF-16"),
        ("A=1\nB=2\n".encode("utf-16-le"), "UTF-16"),
        ("A=1\nB=2\n".encode("utf-32"), "UTF-16"),
        (b"A=1\nB=2\nC=caf\xe9\n", "line 3 is not UTF-8"),
        (b"A=1\n" + b"B=" + b"x" * (2 * 1024 * 1024) + b"\n", "larger than"),
    ],
)
def test_an_unreadable_encoding_is_a_config_error(
    tmp_path: Path, data: bytes, expected: str
) -> None:
    proj = project.Project(root=stack(tmp_path, data))
    with pytest.raises(ConfigError) as caught:
        proj.load_env()
    assert expected in caught.value.message
    assert caught.value.hint


def test_a_directory_named_env_is_a_config_error(tmp_path: Path) -> None:
    root = stack(tmp_path)
    (root / ".env").mkdir()
    with pytest.raises(ConfigError) as caught:
        project.Project(root=root).load_env()
    assert "is a directory" in caught.value.message


# -- every command -------------------------------------------------------------------------------

COMMANDS = [
    ["up"],
    ["down"],
    ["status"],
    ["logs"],
    ["health"],
    ["reload", "all"],
    ["validate"],
    ["validate", "--local"],
    ["backup"],
    ["backup", "list"],
    ["backup", "verify", "20260101T000000Z"],
    ["backup", "prune", "--keep-last", "1"],
    ["restore", "20260101T000000Z", "--yes"],
]
BROKEN = {
    "unterminated quote": (f"A=1\nGRAFANA_ADMIN_PASSWORD='{SECRET}\n".encode(), "line 2"),
    "not utf-8": (f"A=1\nB=2\nGRAFANA_ADMIN_PASSWORD={SECRET}\xe9\n".encode("latin-1"), "line 3"),
    "utf-16": ("A=1\n".encode("utf-16"), "UTF-16"),
}


@pytest.mark.parametrize("kind", list(BROKEN))
@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
def test_every_command_refuses_a_broken_env_with_exit_6(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], args: list[str], kind: str
) -> None:
    data, expected = BROKEN[kind]
    root = stack(tmp_path, data)
    code = _run(["--project-dir", str(root), *args])
    err = " ".join(capsys.readouterr().err.split())  # the console wraps long lines
    assert code == 6, err
    assert expected in err
    assert SECRET not in err and "Traceback" not in err


def test_every_command_refuses_a_directory_named_env(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    root = stack(tmp_path)
    (root / ".env").mkdir()
    for args in COMMANDS:
        code = _run(["--project-dir", str(root), *args])
        err = " ".join(capsys.readouterr().err.split())
        assert code == 6, (args, err)
        assert "is a directory" in err and "Traceback" not in err


# -- ports ----------------------------------------------------------------------------------------


NOT_PORTS = ["99999", "0", "-1", "abc", "80.5", "+80", "8_0", "\u0663100", ""]


@pytest.mark.parametrize("value", NOT_PORTS)
def test_a_port_that_is_not_a_port_names_its_variable(tmp_path: Path, value: str) -> None:
    proj = project.Project(root=stack(tmp_path), env={"GRAFANA_PORT": value})
    if value == "":
        assert proj.host_port(services.get("grafana")) == 3001  # unset: the default
        return
    with pytest.raises(ConfigError) as caught:
        proj.host_port(services.get("grafana"))
    assert "GRAFANA_PORT" in caught.value.message
    assert "1-65535" in caught.value.message + (caught.value.hint or "")


@pytest.mark.parametrize("value", ["99999", "abc"])
def test_health_with_a_bad_port_is_a_clean_config_error(tmp_path: Path, value: str) -> None:
    """With Docker unreachable the port comes from .env, inside the probes' event loop:
    the error must come out as exit 6 naming the variable, with no asyncio noise."""
    root = stack(tmp_path, f"GRAFANA_PORT={value}\n".encode())
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONCTL_")}
    env["DOCKER_HOST"] = f"unix://{tmp_path}/no-docker.sock"
    result = subprocess.run(
        [sys.executable, "-m", "monctl", "--project-dir", str(root), "health"],
        capture_output=True,
        text=True,
        timeout=60,
        env=env,
        check=False,
    )
    assert result.returncode == 6, result.stderr
    assert "GRAFANA_PORT" in result.stderr
    for noise in ("Traceback", "unhandled exception", "asyncio", "never awaited"):
        assert noise not in result.stderr, result.stderr
