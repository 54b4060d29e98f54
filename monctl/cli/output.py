"""The one renderer: rich tables for a person, plain text for a pipe, JSON for a machine.

Operations return results (``monctl.result``); the CLI hands them to ``emit``,
which prints the JSON document or hands the result to its renderer
(``monctl.cli.render``), which draws it with this ``Output``. Data goes to
stdout; messages, progress and errors to stderr.
With ``--json`` stdout carries exactly one JSON document and nothing else.

Anything that came from outside (member names, paths, ids, server messages)
is printed as inert text: ``text()`` / ``print_text()`` never interpret rich
markup, and ``inert`` escapes control bytes, so a name cannot change colours,
make a link, or send escape sequences to the terminal. Tables from ``table()``
take every str (title, header, cell) as inert text too, so a report cannot
let markup through by passing a plain string; messages (``info``/``warn``/
``error``), progress lines, log records (``monctl.redaction``' filter), click's
usage errors and the JUnit report go through ``inert`` as well.
"""

from __future__ import annotations

import functools
import json
import os
import sys
from functools import cached_property
from typing import TYPE_CHECKING, Any, Literal

from monctl.redaction import redact
from monctl.text import human_size as human_size  # re-exported for the renderers
from monctl.text import inert as inert
from monctl.text import shown as shown

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    from monctl.result import Result

# Colour by meaning, so every table reads the same way.
_STYLES = {
    "ok": "green",
    "healthy": "green",
    "ready": "green",
    "running": "green",
    "up": "green",
    "success": "green",
    "confirmed": "green",
    "not ready": "yellow",
    "starting": "yellow",
    "degraded": "yellow",
    "skipped": "yellow",
    "not configured": "yellow",
    "unknown": "yellow",
    "restarted": "cyan",
    "down": "red",
    "failed": "red",
    "unhealthy": "red",
    "exited": "red",
    "missing": "red",
    "refused": "red",
}


def _plain() -> bool:
    return bool(os.environ.get("NO_COLOR")) or not sys.stdout.isatty()


class Output:
    """Where a command's output goes. rich is imported on first use only: a
    --json run never needs it, and start-up time is part of every command."""

    def __init__(self, json_mode: bool = False, quiet: bool = False) -> None:
        self.json_mode = json_mode
        self.quiet = quiet
        self.plain = _plain()

    @cached_property
    def out(self) -> Console:
        from rich.console import Console

        # A pipe has no width: rich would assume 80 columns and cut URLs and
        # image names short; a wide virtual line keeps plain output whole.
        width = None if sys.stdout.isatty() else 250
        return Console(
            no_color=self.plain, color_system=_color_system(), highlight=False, width=width
        )

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(
            stderr=True, no_color=_plain_stderr(), color_system=_color_system(), highlight=False
        )

    @property
    def interactive(self) -> bool:
        """True when a person watches stderr: progress bars and spinners are welcome."""
        return sys.stderr.isatty() and not self.json_mode and not self.quiet

    def emit(self, command: str, result: Result) -> None:
        """Print ``result``: its JSON document with ``--json``, else its renderer's drawing."""
        if self.json_mode:
            from monctl.result import envelope

            self.json(envelope(command, result))
        else:
            from monctl.cli.render import draw

            draw(self, result)

    def json(self, doc: dict[str, Any]) -> None:
        """One JSON document on stdout (secrets masked), nothing else."""
        text = json.dumps(doc, indent=2, sort_keys=False, default=str)
        sys.stdout.write(redact(text) + "\n")
        sys.stdout.flush()

    def text(self, value: str, style: str = "") -> Text:
        """``value`` as an inert table cell: no markup, control bytes escaped."""
        from rich.text import Text

        return Text(inert(redact(value)), style=style)

    def print_text(self, value: str, style: str = "") -> None:
        """A line of data that may hold outside text (stdout)."""
        self.out.print(self.text(value, style))

    def table(self, *columns: str, title: str | Text | None = None) -> Table:
        """A table whose every str (title, header, cell) is taken as inert text: a
        report cannot put outside text into markup by forgetting ``text()``."""
        from rich import box

        inert_table = _inert_table_class()
        shown_title = self.text(title) if isinstance(title, str) else title
        if self.plain:
            table = inert_table(title=shown_title, box=box.SIMPLE, show_edge=False, highlight=False)
        else:
            table = inert_table(title=shown_title, box=box.ROUNDED, highlight=False)
        for column in columns:
            table.add_column(header=self.text(column))
        return table

    def print(self, renderable: Any) -> None:
        """A table (or other rich renderable) for a person (stdout); text goes
        through ``print_text``. Never used in JSON mode."""
        self.out.print(self.text(renderable) if isinstance(renderable, str) else renderable)

    def info(self, message: str) -> None:
        """A message for a person (stderr); silent with --quiet or --json."""
        if not self.quiet and not self.json_mode:
            self._err_line("", message)

    def warn(self, message: str) -> None:
        self._err_line("warning: ", message, "yellow")

    def error(self, message: str, hint: str | None = None) -> None:
        self._err_line("error: ", message, "red")
        if hint:
            self._err_line("  hint: ", hint)

    def _err_line(self, label: str, message: str, style: str = "") -> None:
        from rich.text import Text

        line = Text(label, style=style)
        line.append(inert(redact(message)))
        # Only a terminal wraps: in a pipe (cron, journald, CI) a message is one line
        # whatever its length, so `grep error:` finds all of it.
        self.err.print(line, soft_wrap=not sys.stderr.isatty())


@functools.cache
def _inert_table_class() -> type[Table]:
    """rich's Table, reading str cells as inert text instead of markup (made on first
    use: rich is imported only when a table is drawn)."""
    from rich.table import Table

    class InertTable(Table):
        def add_row(self, *renderables: Any, style: Any = None, end_section: bool = False) -> None:
            cells = [_inert_cell(r) for r in renderables]
            super().add_row(*cells, style=style, end_section=end_section)

    return InertTable


def _inert_cell(value: Any) -> Any:
    if isinstance(value, str):
        from rich.text import Text

        return Text(inert(redact(value)))
    return value


def preload() -> None:
    """Import what rendering a table needs. Called in a background thread while
    a command waits on the network, so the import is off the critical path."""
    import rich.console
    import rich.table  # noqa: F401


def styled(value: str) -> Text:
    """``value`` as inert text in the colour of its meaning (none when plain)."""
    from rich.text import Text

    return Text(inert(value), style=_STYLES.get(value.lower(), ""))


def _color_system() -> Literal["auto"] | None:
    """NO_COLOR means no styling at all: rich's no_color drops colours but keeps bold."""
    return None if os.environ.get("NO_COLOR") else "auto"


def _plain_stderr() -> bool:
    return bool(os.environ.get("NO_COLOR")) or not sys.stderr.isatty()
