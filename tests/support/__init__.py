"""Helpers shared by the tests (importable as ``support``: pytest puts tests/ on sys.path).

The one rule for missing prerequisites lives here: a test that needs a Docker
engine, a test image or a binary that is not installed is skipped on a
workstation, but FAILS under CI (``CI=true``), so a green CI means it ran.
A test calling ``require_binary`` must carry the ``binaries`` marker, and one
needing the engine the ``docker`` marker (checked here), so that
``python -m pytest -m "not docker and not binaries"`` is an honest fast tier.

Modules: ``engine`` (the real stack on a real engine: ``Stack``, ``make_stack``),
``data`` (data inside a running stack's volumes), ``stack_files`` and
``stack_exporters`` (the stack's configuration, fixture exporters),
``health_fakes`` (respx answers at the HTTP edge), ``reload_servers`` (real
Prometheus/Alertmanager on the host), ``backup_factory`` (backups built in
Python), ``storage_proxy`` (a TCP proxy that cuts S3 connections),
``fake_runtime`` (a runtime at the outer edge, for the ninth-service test).
"""

from __future__ import annotations

import contextvars
import os
import shutil
import socket
import time
import urllib.error
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:  # pytest is imported where it is used: bench/ uses these helpers without it
    import pytest

REPO = Path(__file__).resolve().parents[2]
IN_CI = os.environ.get("CI", "").strip().lower() in ("1", "true", "yes")

T = TypeVar("T")

# The running test, so the prerequisite checks can see its markers.
CURRENT: contextvars.ContextVar[pytest.Item | None] = contextvars.ContextVar(
    "current_test", default=None
)


def _marked(marker: str) -> None:
    item = CURRENT.get()
    if item is not None and item.get_closest_marker(marker) is None:
        import pytest

        pytest.fail(
            f"{item.nodeid} needs the `{marker}` marker (pytestmark = pytest.mark.{marker}): "
            "the fast tier must not hold it",
            pytrace=False,
        )


def require(condition: object, reason: str) -> None:
    """Skip with ``reason`` when ``condition`` is false, except under CI, where a
    missing prerequisite fails the test: a green CI must mean these tests ran."""
    if condition:
        return
    try:
        import pytest
    except ImportError:  # outside the tests (bench/ without pytest): a clear stop
        raise SystemExit(f"cannot run here: {reason}") from None
    if IN_CI:
        pytest.fail(f"{reason} (CI=true: prerequisites of the tests must exist)", False)
    pytest.skip(reason)


def require_binary(*candidates: str) -> str:
    """The path of the first of ``candidates`` found (a name on PATH or an absolute
    path); skip (fail under CI) when none is installed. Needs the ``binaries`` marker."""
    _marked("binaries")
    for name in candidates:
        path = name if os.path.isabs(name) and os.access(name, os.X_OK) else shutil.which(name)
        if path:
            return path
    require(False, f"none of {', '.join(candidates)} is installed (see .ci/run for the packages)")
    raise AssertionError("unreachable")


def require_docker_marker() -> None:
    _marked("docker")


def free_ports(count: int = 1, host: str = "127.0.0.1") -> list[int]:
    """``count`` distinct ports that nothing listens on right now."""
    holders = []
    try:
        for _ in range(count):
            s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
            s.bind((host, 0))
            holders.append(s)
        return [s.getsockname()[1] for s in holders]
    finally:
        for s in holders:
            s.close()


def wait_for(predicate: Callable[[], T], timeout: float, what: str, logs: Path | None = None) -> T:
    """Call ``predicate`` until it returns something truthy (returned), or fail
    after ``timeout`` seconds naming ``what``, with the tails of ``logs``/*.log."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last  # type: ignore[no-any-return]
        except (OSError, urllib.error.URLError, ValueError, KeyError) as exc:
            last = exc
        time.sleep(0.2)
    tails = "".join(
        f"\n--- {p.name} ---\n" + p.read_text(errors="replace")[-2000:]
        for p in (sorted(logs.glob("*.log")) if logs else [])
    )
    raise AssertionError(f"timed out waiting for {what}: {last!r}{tails}")


class Recorded:
    """A ``monctl.result.Progress`` that keeps what an operation reported."""

    def __init__(self) -> None:
        self.notes: list[str] = []
        self.statuses: list[str] = []
        self.bytes: dict[str, int] = {}

    def note(self, message: str) -> None:
        self.notes.append(message)

    def status(self, text: str) -> None:
        self.statuses.append(text)

    def moved(self, name: str, n: int) -> None:
        self.bytes[name] = self.bytes.get(name, 0) + n
