"""Text from outside (member names, paths, ids, server messages, names in a listing) is
printed inert: rich markup stays literal text, control bytes and bidi overrides are
escaped — in tables, messages, progress, logs, click's usage errors and the JUnit XML."""

from __future__ import annotations

import io
import logging
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path
from typing import Any

import pytest
from rich.console import Console

from monctl import redaction
from monctl.cli import _run, output
from monctl.cli.render import draw, junit
from monctl.config.reload_report import Outcome, ReloadReport
from monctl.config.validate import CheckResult, ValidateReport
from monctl.health.report import HealthReport, ServiceHealth
from monctl.services.answers import Check, Target

REPO = Path(__file__).resolve().parents[2]

MARKUP = "[/bold] [link=http://evil.example]click[/link] [red]"
ESC = "\x1b[5;41mblink\x1b[0m"  # rich never emits this SGR itself
OSC8 = "\x1b]8;;http://evil.example\x07link\x1b]8;;\x07"
HOSTILE = f"{MARKUP} {ESC} a\rb \u202eevil {OSC8} bell\x07"
RAW = ("\x1b[5;41m", "\x1b]8", "\r", "\u202e", "\x07")  # none of these may reach a terminal


def consoles(out: output.Output, terminal: bool) -> tuple[io.StringIO, io.StringIO]:
    """Point ``out`` at in-memory consoles: a pipe (plain) or a colour terminal."""
    stdout, stderr = io.StringIO(), io.StringIO()
    kw: dict[str, Any] = {"width": 200, "highlight": False}
    if terminal:
        kw.update(force_terminal=True, color_system="truecolor")
    else:
        kw.update(no_color=True)
    out.__dict__["out"] = Console(file=stdout, **kw)
    out.__dict__["err"] = Console(file=stderr, stderr=True, **kw)
    out.plain = not terminal
    return stdout, stderr


def assert_inert(rendered: str, live: bool = False) -> None:
    """Nothing of HOSTILE reaches the output raw. A live display moves the cursor
    with CR itself, so there only the CR inside HOSTILE ("a\rb") is looked for."""
    for raw in RAW:
        if live and raw == "\r":
            raw = "a\rb"
        assert raw not in rendered, (raw, rendered)
    assert "[/bold]" in rendered and "[link=http://evil.example]" in rendered  # shown as text
    assert "\\x1b[5;41m" in rendered and "\\u202e" in rendered  # escaped, visible


REPORTS = {
    "reload": ReloadReport(
        (Outcome(HOSTILE, "failed", HOSTILE, (HOSTILE, HOSTILE), HOSTILE),)  # type: ignore[arg-type]
    ),
    "validate": ValidateReport(
        "docker", (CheckResult(HOSTILE, HOSTILE, "invalid", HOSTILE, (), HOSTILE),)
    ),
    "health": HealthReport(
        (ServiceHealth(HOSTILE, "down", HOSTILE, HOSTILE, False, False, None, HOSTILE, HOSTILE),),
        (Check(HOSTILE, HOSTILE, False, HOSTILE),),
        (Target(HOSTILE, "down", HOSTILE, HOSTILE, HOSTILE, HOSTILE),),
        docker=HOSTILE,
    ),
}


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
@pytest.mark.parametrize("name", list(REPORTS))
def test_reports_print_outside_text_inert(name: str, terminal: bool) -> None:
    out = output.Output()
    stdout, stderr = consoles(out, terminal)
    draw(out, REPORTS[name])
    assert_inert(stdout.getvalue() + stderr.getvalue())


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
def test_every_table_cell_and_title_is_inert_whoever_builds_the_table(terminal: bool) -> None:
    """A plain str in a cell would be read as rich markup ("[/bold]" crashes the
    render; "[link=…]" makes a live link): tables from Output take it as text."""
    out = output.Output()
    stdout, _ = consoles(out, terminal)
    table = out.table("ID", HOSTILE, title=HOSTILE)
    table.add_row(HOSTILE, HOSTILE)
    table.add_row(output.styled("failed"), out.text(HOSTILE))
    out.print(table)
    assert_inert(stdout.getvalue())


@pytest.mark.parametrize("terminal", [False, True], ids=["pipe", "terminal"])
def test_messages_are_inert(terminal: bool) -> None:
    out = output.Output()
    stdout, stderr = consoles(out, terminal)
    out.info(HOSTILE)
    out.warn(HOSTILE)
    out.error(HOSTILE, HOSTILE)
    out.print(HOSTILE)
    out.print_text(HOSTILE)
    assert_inert(stdout.getvalue() + stderr.getvalue())


def test_progress_lines_are_inert(monkeypatch: pytest.MonkeyPatch) -> None:
    """The live display on a terminal: notes, the status line, the per-transfer lines."""
    from monctl.cli.progress import CliProgress

    out = output.Output()
    _, stderr = consoles(out, terminal=True)
    monkeypatch.setattr(output.Output, "interactive", property(lambda self: True))
    with CliProgress(out, "copying") as progress:
        progress.status(HOSTILE)
        progress.moved(HOSTILE, 1024)
        progress.note(HOSTILE)
        assert progress._live is not None
        progress._live.refresh()
    assert_inert(stderr.getvalue(), live=True)


def test_log_lines_are_inert() -> None:
    """What a library logs (a member name in a warning, a server's answer) is escaped
    by the same filter that masks secrets."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        redaction.install_log_filter()
        logging.getLogger("monctl.test").warning("member %s", HOSTILE)
    finally:
        root.removeHandler(handler)
    logged = stream.getvalue()
    for raw in RAW:
        assert raw not in logged, (raw, logged)
    assert "\\x1b[5;41m" in logged


def test_a_usage_error_quoting_a_value_is_inert(capsys: pytest.CaptureFixture[str]) -> None:
    """click quotes bad values back, some with repr() ("No such option '…'"), some
    as they are ("Got unexpected extra argument (…)"): escaped either way."""
    cases = (
        (["status", "--no-such-option" + ESC], ("--no-such-option\\x1b[5;41m",)),
        (["status", "x\u202ey" + ESC], ("x\\u202ey\\x1b[5;41m",)),
    )
    for args, shown in cases:
        code = _run(args)
        err = capsys.readouterr().err
        assert code == 2
        assert "\x1b" not in err and "\u202e" not in err, err
        for text in shown:  # the value is shown, escaped
            assert text in err, err


def test_junit_xml_stays_well_formed_with_control_characters(tmp_path: Path) -> None:
    """XML 1.0 cannot carry ESC, BEL or NUL at all: a report holding them must still parse."""
    nasty = HOSTILE + " nul\x00 \ufffe \ud800"
    report = HealthReport(
        (ServiceHealth(nasty, "down", "exited", None, False, False, None, nasty, nasty),),
        (Check("prometheus", nasty, False, nasty),),
        (Target(nasty, "down", nasty, "backend", nasty, "prometheus"),),
    )
    path = tmp_path / "health.xml"
    junit.write(report, path)
    root = ET.parse(path).getroot()  # raises on a character XML forbids
    text = ET.tostring(root, encoding="unicode")
    assert "\\x1b[5;41m" in text and "[/bold]" in text


@pytest.mark.parametrize("command", ["list", "prune"])
def test_backup_list_and_prune_from_a_path_with_brackets(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], command: str
) -> None:
    from support.backup_factory import make_backup

    from monctl.adapters.storage import open_storage

    root = tmp_path / "stack"
    (root / "compose").mkdir(parents=True)
    shutil.copy2(REPO / "compose" / "docker-compose.monitoring.yml", root / "compose")
    dest = tmp_path / "b[/bold]x[link=mailto:x][red]\x1b[5;41m"
    dest.mkdir(parents=True)
    storage = open_storage(str(dest))
    for backup_id in ("20260101T000000Z", "20260102T000000Z", "20260103T000000Z"):
        make_backup(storage, backup_id, services=("grafana",))
    args = ["backup", command, "--from", str(dest)]
    if command == "prune":
        args += ["--keep-last", "1"]
    code = _run(["--project-dir", str(root), *args])
    captured = capsys.readouterr()
    assert code == 0, captured.err
    shown = captured.out + captured.err
    assert "\x1b[5;41m" not in shown
    assert "[/bold]x[link=mailto:x][red]" in "".join(shown.split())  # a long title wraps
    assert "20260103T000000Z" in shown
    left = sorted(p.name for p in dest.iterdir())
    assert left == (["20260103T000000Z"] if command == "prune" else [
        "20260101T000000Z", "20260102T000000Z", "20260103T000000Z"])  # fmt: skip
