"""What every operation returns, and how it reports progress while it works.

An operation returns a ``Result``: its data (``to_json``) and the exit code it
means (``exit_code``); how it looks to a person is the CLI's business (its
renderer in ``monctl.cli.render``). The CLI has one function that prints a
result and exits with its code (``monctl.cli.common.finish``); with ``--json``
the document always has the same top-level keys, ``command``, ``ok`` (true
exactly when the exit code is 0) and ``exit_code``, followed by the result's
own keys — and on failure ``error`` with ``message`` and ``hint`` (see ``envelope``).

Operations never draw (nothing outside ``monctl/cli/`` imports rich or the
CLI's ``Output``): they report progress through a ``Progress`` object the
CLI gives them (``note`` for a message to the operator, ``status`` for a
changing line, ``moved`` for bytes of a transfer). The CLI decides how that
looks: a spinner or bars on a terminal, plain lines on a pipe, nothing with
``-q`` or ``--json``.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from monctl.errors import ExitCode, MonctlError


class Result(Protocol):
    """What an operation returns."""

    @property
    def exit_code(self) -> ExitCode: ...

    def to_json(self) -> dict[str, Any]: ...


def envelope(command: str, result: Result) -> dict[str, Any]:
    """The JSON document of ``result``: the common keys first, then its own."""
    code = result.exit_code
    doc: dict[str, Any] = {"command": command, "ok": code == ExitCode.OK, "exit_code": int(code)}
    body = result.to_json()
    for key in ("command", "ok", "exit_code"):
        body.pop(key, None)
    doc.update(body)
    return doc


def error_envelope(
    command: str, error: MonctlError | None, code: int, message: str
) -> dict[str, Any]:
    """The JSON document of a command that failed before it had a result."""
    return {
        "command": command,
        "ok": False,
        "exit_code": code,
        "error": {"message": message, "hint": error.hint if error else None},
    }


@dataclass(frozen=True)
class Failure:
    """Why (part of) an operation failed, as a result keeps it: data, not an exception."""

    message: str
    hint: str | None
    exit_code: ExitCode

    @classmethod
    def of(cls, error: MonctlError, prefix: str = "") -> Failure:
        return cls(prefix + error.message, error.hint, error.exit_code)

    def to_json(self) -> dict[str, Any]:
        return {"message": self.message, "hint": self.hint, "exit_code": int(self.exit_code)}


class Progress(Protocol):
    """How an operation tells the CLI what it is doing (all optional to show)."""

    def note(self, message: str) -> None:
        """A message for the operator (a network created, a file written)."""

    def status(self, text: str) -> None:
        """The current state of something waited for (replaces the previous one)."""

    def moved(self, name: str, n: int) -> None:
        """``n`` more bytes of ``name`` were transferred."""


class Silent:
    """Progress that goes nowhere (tests, nested operations)."""

    def note(self, message: str) -> None:
        pass

    def status(self, text: str) -> None:
        pass

    def moved(self, name: str, n: int) -> None:
        pass


SILENT: Progress = Silent()
