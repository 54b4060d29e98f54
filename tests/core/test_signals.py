"""SIGTERM and SIGHUP raise like Ctrl-C, and a signal never lands between acquiring
something (a pause, a lease) and the ``try`` that releases it.

Real signals, sent by the process to itself (``signal.raise_signal``); the handlers
are installed for the test and the previous ones restored.
"""

from __future__ import annotations

import signal
from collections.abc import Iterator
from types import SimpleNamespace
from typing import Any

import pytest

from monctl import signals
from monctl.adapters.docker import Engine
from monctl.errors import ExitCode


@pytest.fixture(autouse=True)
def installed() -> Iterator[None]:
    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signals.reset()
    signals.install()
    try:
        yield
    finally:
        for s, handler in previous.items():
            signal.signal(s, handler)
        signals.reset()


@pytest.mark.parametrize(
    ("signum", "code"), [(signal.SIGTERM, ExitCode.TERMINATED), (signal.SIGHUP, ExitCode.HANGUP)]
)
def test_sigterm_and_sighup_raise_and_carry_their_exit_code(signum: int, code: ExitCode) -> None:
    with pytest.raises(signals.Terminated) as caught:
        signal.raise_signal(signum)
    assert caught.value.exit_code == code and int(code) == 128 + signum


def test_a_second_signal_does_not_cut_the_clean_up_short() -> None:
    cleaned = []
    with pytest.raises(signals.Terminated):
        try:
            signal.raise_signal(signal.SIGTERM)
        finally:
            signal.raise_signal(signal.SIGTERM)  # impatient: ignored, said on stderr
            cleaned.append("resumed")
    assert cleaned == ["resumed"]


def test_deferred_holds_a_signal_until_the_section_ends() -> None:
    done = []
    with pytest.raises(signals.Terminated), signals.deferred():
        signal.raise_signal(signal.SIGHUP)
        done.append("the whole section ran")
    assert done == ["the whole section ran"]


def test_a_signal_during_the_pause_request_still_unpauses() -> None:
    """The pause request returns after a SIGTERM arrived: the container IS paused, so it
    must be unpaused, though the signal came before the block began."""
    calls: list[str] = []

    def pause() -> None:
        signal.raise_signal(signal.SIGTERM)  # arrives while the request is on its way
        calls.append("paused")

    container: Any = SimpleNamespace(pause=pause, unpause=lambda: calls.append("unpaused"))
    engine = Engine.__new__(Engine)  # no connection needed: only the context manager
    with pytest.raises(signals.Terminated), engine.paused(container, "grafana"):
        calls.append("copied")  # never reached: the signal is raised first
    assert calls == ["paused", "unpaused"]
