"""Telling the outside about a backup, restore or drill, through the monitoring hooks.

The commands wrap their operation in ``Announcer.call``: it tells every hook
(``monctl.monitoring.Hook``: heartbeat pings, notifications) of the ``start``
(unless the backup lock is taken by another run: that run's own announcements
speak for the night), runs the operation, then of its ``success`` or ``failure``
with a short summary (id, services, sizes, error); each hook decides what to
send. An operation that raises is announced as failed and re-raised; a run
refused because another holds the lock is only ``skipped`` (a heartbeat logs it,
healthchecks ``/log``), so it neither opens nor fails a run. Nothing here ever
changes an exit code:
``wrap`` adds what was sent to the result's JSON (``heartbeat``,
``notifications``) and shows failures as warnings.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import socket
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from monctl.errors import ExitCode, LockHeld, MonctlError
from monctl.monitoring.heartbeat import Heartbeat, Ping
from monctl.monitoring.notify import Notifier, Sent
from monctl.text import human_size

if TYPE_CHECKING:  # pragma: no cover
    from monctl.monitoring import Hook
    from monctl.project import Project
    from monctl.result import Result

R = TypeVar("R", bound="Result")


class Warns(Protocol):
    """Where a failed announcement is shown when the run fails before its result (the
    CLI's ``Output``): this module never draws itself."""

    def warn(self, message: str) -> None: ...


def lock_taken(path: Path) -> bool:
    """Whether another process holds the flock at ``path`` now (a look, nothing held)."""
    try:
        fd = os.open(path, os.O_RDONLY)
    except OSError:
        return False  # no lock file: nobody ever held it
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return True
    except OSError:
        return False
    finally:
        os.close(fd)  # closing drops a lock taken just now
    return False


def summary(command: str, doc: dict[str, Any], ok: bool, host: str) -> tuple[str, str]:
    """(title, body) of a finished run, from its result's JSON document."""
    name = doc.get("id") or ""
    verdict = "OK" if ok else "FAILED"
    title = f"monctl {command} {verdict} on {host}" + (f": {name}" if name else "")
    lines = [title]
    where = doc.get("location")
    total = doc.get("bytes")
    head = " ".join(
        str(x)
        for x in (
            f"{name}" if name else "",
            f"at {where}" if where else "",
            f"({human_size(total)})" if isinstance(total, int) and total else "",
        )
        if x
    )
    if head:
        lines.append(head)
    for s in doc.get("services") or []:
        if not isinstance(s, dict):
            continue
        parts = [str(s.get("service", "?")), str(s.get("status", ""))]
        if isinstance(s.get("bytes"), int) and s["bytes"]:
            parts.append(human_size(s["bytes"]))
        if s.get("state"):
            parts.append(str(s["state"]))
        failed = [c.get("name") for c in s.get("checks") or [] if not c.get("ok")]
        if failed:
            parts.append("failed checks: " + ", ".join(map(str, failed)))
        if s.get("error"):
            parts.append(f"error: {s['error']}")
        lines.append("  " + "  ".join(p for p in parts if p))
    error = doc.get("error")
    if isinstance(error, dict) and error.get("message"):
        lines.append(f"error: {error['message']}")
        if error.get("hint"):
            lines.append(f"hint: {error['hint']}")
    return title, "\n".join(lines)


@dataclass
class Announced:
    """A result with what was announced about it: same exit code, more JSON."""

    inner: Result
    pings: list[Ping] = field(default_factory=list)
    sent: list[Sent] = field(default_factory=list)
    heartbeat: bool = False
    notifications: bool = False

    @property
    def exit_code(self) -> ExitCode:
        return self.inner.exit_code

    def to_json(self) -> dict[str, Any]:
        doc = dict(self.inner.to_json())
        if self.heartbeat:
            doc["heartbeat"] = [p.to_json() for p in self.pings]
        if self.notifications:
            doc["notifications"] = [s.to_json() for s in self.sent]
        return doc


def problems(pings: Iterable[Ping], sent: Iterable[Sent]) -> list[str]:
    found = [
        f"heartbeat {p.signal} ping to {p.target} failed: {p.detail}" for p in pings if not p.ok
    ]
    found += [f"notification {s.target} failed: {s.detail}" for s in sent if not s.ok]
    return found


class Announcer:
    """The heartbeat and notifications of one command's run."""

    def __init__(
        self,
        command: str,
        heartbeat: Heartbeat | None,
        notifier: Notifier | None,
        locks: tuple[Path, ...] = (),
    ) -> None:
        self.command = command
        self.heartbeat = heartbeat
        self.notifier = notifier
        self.locks = locks
        self.host = socket.gethostname()

    @property
    def hooks(self) -> list[Hook]:
        """The hooks of this run, in the order they are told (a ping first: it is bounded
        by seconds, notifications may take longer)."""
        return [h for h in (self.heartbeat, self.notifier) if h is not None]

    @property
    def sent(self) -> list[Sent]:
        return self.notifier.sent if self.notifier else []

    @classmethod
    def for_command(
        cls, project: Project, command: str, ping_var: str, locks: tuple[Path, ...] = ()
    ) -> Announcer:
        """Read the settings now, so a bad URL or a missing extra stops the command
        before it starts (UsageError, ConfigError)."""
        heartbeat = Heartbeat.from_project(project, ping_var)
        return cls(command, heartbeat, Notifier.from_project(project), locks)

    def call(self, operation: Callable[[], R], start_text: str, out: Warns) -> R:
        """Run ``operation`` between the start and the end announcements."""
        # When another run holds the lock, this one will be refused: a start ping
        # would open a run that never ends (healthchecks then reports it down).
        hooks = self.hooks
        if hooks and not any(lock_taken(p) for p in self.locks):
            text = f"monctl {self.command} started on {self.host}\n{start_text}"
            for hook in hooks:
                hook.start(text)
        try:
            result = operation()
        except LockHeld as exc:
            for hook in hooks:
                hook.skipped(f"monctl {self.command} skipped: {exc.message}")
            self._warn(out)
            raise
        except BaseException as exc:
            self._failed(exc)
            self._warn(out)
            raise
        self._finished(result)
        return result

    def wrap(self, result: Result) -> Announced:
        return Announced(
            result,
            list(self.heartbeat.pings) if self.heartbeat else [],
            list(self.sent),
            heartbeat=self.heartbeat is not None,
            notifications=self.notifier is not None,
        )

    # -- the end of a run --------------------------------------------------------------
    def _finished(self, result: Result) -> None:
        ok = result.exit_code == ExitCode.OK
        title, body = summary(self.command, result.to_json(), ok, self.host)
        self._end(ok, title, body)

    def _failed(self, exc: BaseException) -> None:
        if isinstance(exc, MonctlError):
            message, hint = exc.message, exc.hint
        elif isinstance(exc, KeyboardInterrupt):
            message, hint = "interrupted (Ctrl-C or a signal)", None
        else:
            message, hint = f"{type(exc).__name__}: {exc}", None
        title = f"monctl {self.command} FAILED on {self.host}"
        body = f"{title}\nerror: {message}" + (f"\nhint: {hint}" if hint else "")
        self._end(False, title, body)

    def _end(self, ok: bool, title: str, body: str) -> None:
        for hook in self.hooks:
            if ok:
                hook.success(title, body)
            else:
                hook.failure(title, body)

    def _warn(self, out: Warns) -> None:
        pings = self.heartbeat.pings if self.heartbeat else []
        for warning in problems(pings, self.sent):
            with contextlib.suppress(Exception):  # a warning must not hide the real error
                out.warn(warning)
