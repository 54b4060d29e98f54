"""Fixtures every test gets. The helpers they use are the package tests/support.

Docker fixtures (a real engine, the real compose file, locally built images) are
in tests/e2e/conftest.py; they skip on a laptop without an engine and fail under
CI (``CI=true``): see ``support.require``.
"""

from __future__ import annotations

import json
import os
import urllib.request
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from support import CURRENT

from monctl import redaction

# The pinned upstream programs, built from their Go modules by tests/images/build.sh, which links
# their binaries here (prometheus, promtool, alertmanager, amtool, node_exporter ...): first on
# PATH, so the host-side tests run promtool 3.15 and amtool 0.34, not Debian's older packages.
UPSTREAM_BIN = Path(os.environ.get("MONCTL_TEST_CACHE", "/var/cache/monctl-test")) / "go" / "path"
if UPSTREAM_BIN.is_dir():
    os.environ["PATH"] = os.pathsep.join([str(UPSTREAM_BIN), os.environ.get("PATH", "")])


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """Tests marked ``settles`` run last, in their order: each waits for time to pass on a
    session stack (an alert's ``for: 1m`` before it fires), which the other tests' run has
    let pass by then instead of the wait."""
    late = [item for item in items if item.get_closest_marker("settles")]
    if late:
        items[:] = [item for item in items if not item.get_closest_marker("settles")] + late


@pytest.fixture(autouse=True)
def _current_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let the prerequisite checks see the running test's markers."""
    token = CURRENT.set(request.node)
    yield
    CURRENT.reset(token)


@pytest.fixture(autouse=True)
def _no_secrets_from_other_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with an empty registry of secrets to mask."""
    monkeypatch.setattr(redaction, "_known", set())


# -- S3: moto in server mode (tests/adapters/storage, tests/e2e) ----------------------------


@pytest.fixture(scope="session")
def moto_endpoint() -> Iterator[str]:
    """The URL of a moto S3 server (server mode, real HTTP) on 127.0.0.1."""
    from moto.server import ThreadedMotoServer

    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    host, port = server.get_host_and_port()
    yield f"http://{host}:{port}"
    server.stop()


@pytest.fixture
def moto_auth(moto_endpoint: str) -> Iterator[Callable[[bool], None]]:
    """``moto_auth(True)`` makes moto check credentials against its IAM; always off again
    afterwards (moto's default accepts any key)."""

    def switch(on: bool) -> None:
        req = urllib.request.Request(
            f"{moto_endpoint}/moto-api/reset-auth",
            data=str(0 if on else float("inf")).encode(),
            method="POST",
            headers={"Content-Type": "text/plain"},
        )
        with urllib.request.urlopen(req, timeout=10) as r:
            assert json.load(r)["status"] == "ok"

    yield switch
    switch(False)
