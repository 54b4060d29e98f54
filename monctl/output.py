"""The one renderer: rich tables for a person, plain text for a pipe, JSON for a machine.

Operations return report objects (``Report``); commands hand them to
``Output.emit``. Data goes to stdout; messages, progress and errors to stderr.
With ``--json`` stdout carries exactly one JSON document and nothing else.
"""

from __future__ import annotations

import contextlib
import json
import os
import sys
from collections.abc import Callable, Iterator
from functools import cached_property
from typing import TYPE_CHECKING, Any, Protocol

from monctl.secrets import redact

if TYPE_CHECKING:  # pragma: no cover
    from rich.console import Console
    from rich.table import Table

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


class Report(Protocol):
    """What an operation returns: data for JSON, and a way to draw itself."""

    def to_json(self) -> dict[str, Any]: ...

    def render(self, out: Output) -> None: ...


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
        return Console(no_color=self.plain, highlight=False, width=width)

    @cached_property
    def err(self) -> Console:
        from rich.console import Console

        return Console(stderr=True, no_color=_plain_stderr(), highlight=False)

    @property
    def interactive(self) -> bool:
        """True when a person watches stderr: progress bars and spinners are welcome."""
        return sys.stderr.isatty() and not self.json_mode and not self.quiet

    def emit(self, report: Report) -> None:
        if self.json_mode:
            text = json.dumps(report.to_json(), indent=2, sort_keys=False, default=str)
            sys.stdout.write(redact(text) + "\n")
            sys.stdout.flush()
        else:
            report.render(self)

    def table(self, *columns: str, title: str | None = None) -> Table:
        from rich import box
        from rich.table import Table

        if self.plain:
            return Table(*columns, title=title, box=box.SIMPLE, show_edge=False, highlight=False)
        return Table(*columns, title=title, box=box.ROUNDED, highlight=False)

    def print(self, renderable: Any = "") -> None:
        """Data for a person (stdout). Never used in JSON mode."""
        if isinstance(renderable, str):
            renderable = redact(renderable)
        self.out.print(renderable)

    def info(self, message: str) -> None:
        """A message for a person (stderr); silent with --quiet or --json."""
        if not self.quiet and not self.json_mode:
            self.err.print(redact(message))

    def warn(self, message: str) -> None:
        self.err.print(f"[yellow]warning:[/yellow] {_escape(redact(message))}")

    def error(self, message: str, hint: str | None = None) -> None:
        self.err.print(f"[red]error:[/red] {_escape(redact(message))}")
        if hint:
            self.err.print(f"  hint: {_escape(redact(hint))}")


@contextlib.contextmanager
def status_line(out: Output, first: str) -> Iterator[Callable[[str], None] | None]:
    """A spinner with a changing line on stderr while something is waited for.

    Yields a function that replaces the line, or None when nobody watches (a
    pipe, --json, --quiet): progress is for people, never for logs or CI."""
    if not out.interactive:
        yield None
        return
    from rich.markup import escape

    with out.err.status(escape(first)) as spinner:
        yield lambda text: spinner.update(escape(text))


def preload() -> None:
    """Import what rendering a table needs. Called in a background thread while
    a command waits on the network, so the import is off the critical path."""
    import rich.console
    import rich.table  # noqa: F401


def styled(value: str) -> str:
    """``value`` wrapped in the colour of its meaning (markup is ignored when plain)."""
    style = _STYLES.get(value.lower())
    text = _escape(value)
    return f"[{style}]{text}[/{style}]" if style else text


def _escape(text: str) -> str:
    # rich.markup.escape's rule, without importing rich for it: a "[" that
    # could open a tag gets a backslash.
    import re

    return re.sub(r"(\\*)(\[[a-z#/@].*?\])", r"\1\1\\\2", text)


def _plain_stderr() -> bool:
    return bool(os.environ.get("NO_COLOR")) or not sys.stderr.isatty()
