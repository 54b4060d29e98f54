"""How operations' progress looks on the command line (they only call ``monctl.result.Progress``).

On a terminal (stderr is a tty, not ``--json``/``-q``): one live display with
a spinner line for what is being waited for and a line per transfer with its
bytes and time. Elsewhere (a pipe, cron, CI): notes as plain lines on stderr
(none with ``-q``/``--json``), and no spinner or counter at all — progress is
for people, never for logs.
"""

from __future__ import annotations

import time
from types import TracebackType
from typing import TYPE_CHECKING, Any

from monctl.cli.output import human_size, inert
from monctl.redaction import redact

if TYPE_CHECKING:  # pragma: no cover
    from rich.progress import Progress as RichProgress

    from monctl.cli.output import Output


class CliProgress:
    """A ``monctl.result.Progress`` for the command line; use it as a context manager."""

    def __init__(self, out: Output, label: str = "") -> None:
        self.out = out
        self.label = label
        self._live: RichProgress | None = None
        self._status: Any = None
        self._moved: dict[str, tuple[Any, int]] = {}
        self._started = time.monotonic()
        # Asked once: progress is reported per chunk read (tens of thousands per GiB).
        self._interactive = out.interactive

    def __enter__(self) -> CliProgress:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop()

    def _display(self) -> RichProgress | None:
        if not self._interactive:
            return None
        if self._live is None:
            from rich.progress import Progress, SpinnerColumn, TextColumn, TimeElapsedColumn

            self._live = Progress(
                SpinnerColumn(),
                TextColumn("{task.description}", markup=False),
                TimeElapsedColumn(),
                console=self.out.err,
                transient=True,
            )
            self._live.start()
        return self._live

    def stop(self) -> None:
        """End the live display (before a question, and at the end)."""
        if self._live is not None:
            self._live.stop()
            self._live = None
            self._status = None
            self._moved = {}

    # -- monctl.result.Progress ------------------------------------------------------
    def note(self, message: str) -> None:
        if self._live is not None:
            self._live.console.print(_shown(message), markup=False, highlight=False)
        else:
            self.out.info(message)

    def status(self, text: str) -> None:
        live = self._display()
        if live is None:
            return
        text = _shown(text)
        if self._status is None:
            self._status = live.add_task(text, total=None)
        else:
            live.update(self._status, description=text)

    def moved(self, name: str, n: int) -> None:
        live = self._display()
        if live is None:
            return
        task, total = self._moved.get(name, (None, 0))
        total += n
        description = _shown(f"{self.label} {name}: {human_size(total)}".strip())
        if task is None:
            task = live.add_task(description, total=None)
        else:
            live.update(task, description=description)
        self._moved[name] = (task, total)


def _shown(text: str) -> str:
    """Progress text may hold outside names (backup ids, members): inert, secrets masked."""
    return inert(redact(text))
