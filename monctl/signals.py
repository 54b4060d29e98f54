"""SIGTERM and SIGHUP are Ctrl-C too: every clean-up runs, then monctl exits 143 or 129.

``systemctl stop`` (and a timer unit's stop) sends SIGTERM; a closed terminal
sends SIGHUP. Python's default for both is to die on the spot, skipping every
``finally``: a paused container stays paused, a snapshot stays in the volume,
a partial file stays at the destination, a multipart upload stays open.
``install`` makes them raise ``Terminated`` instead — a BaseException like
KeyboardInterrupt, so no ``except Exception`` swallows it and every context
manager that resumes, deletes, aborts or releases does its work on the way out.

Once one signal has arrived, further ones (an impatient second Ctrl-C or
SIGTERM) do not interrupt the clean-up they would cut short: they are
recorded and said, not raised. ``deferred`` holds signals back for a section
that must not be cut in the middle (replacing a volume's data): they take
effect when it ends.
"""

from __future__ import annotations

import contextlib
import signal
import sys
from collections.abc import Iterator
from types import FrameType

from monctl.errors import ExitCode


class Terminated(BaseException):
    """The process was asked to stop by a signal (SIGTERM, SIGHUP)."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.HANGUP if self.signum == signal.SIGHUP else ExitCode.TERMINATED


class _State:
    stopping = False  # a signal was already raised: the clean-up runs now
    deferring = 0  # depth of ``deferred`` sections
    pending: int | None = None  # a signal held back by ``deferred``


_STATE = _State()


def _raise(signum: int) -> None:
    if signum == signal.SIGINT:
        raise KeyboardInterrupt
    raise Terminated(signum)


def _handle(signum: int, frame: FrameType | None) -> None:
    if _STATE.stopping or _STATE.deferring:
        if _STATE.deferring and _STATE.pending is None:
            _STATE.pending = signum
        name = signal.Signals(signum).name
        sys.stderr.write(f"monctl: {name} received; finishing what must not be cut short…\n")
        return
    _STATE.stopping = True
    _raise(signum)


def install() -> None:
    """Handle SIGINT, SIGTERM and SIGHUP as described above (main thread only)."""
    for signum in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _handle)


@contextlib.contextmanager
def deferred() -> Iterator[None]:
    """Hold signals back for the block; one that arrived is raised when it ends."""
    _STATE.deferring += 1
    try:
        yield
    finally:
        _STATE.deferring -= 1
        pending, _STATE.pending = _STATE.pending, None
    if pending is not None and not _STATE.deferring and not _STATE.stopping:
        _STATE.stopping = True
        _raise(pending)


def reset() -> None:
    """Forget an earlier signal (tests that run several commands in one process)."""
    _STATE.stopping = False
    _STATE.deferring = 0
    _STATE.pending = None
