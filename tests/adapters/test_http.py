"""One-off requests to the stack's services (monctl/adapters/http.py) against a real local
server: plain http loads no CA bundle; https still verifies."""

from __future__ import annotations

import ssl
from collections.abc import Iterator

import pytest
from support.ping_server import RecordingServer

from monctl.adapters import http
from monctl.errors import OperationFailed


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    with RecordingServer() as recording:
        yield recording.url


@pytest.fixture
def bundles_loaded(monkeypatch: pytest.MonkeyPatch) -> list[object]:
    """Every CA bundle a TLS context loads from now on (~16 ms each)."""
    loaded: list[object] = []
    real = ssl.SSLContext.load_verify_locations

    def load(self: ssl.SSLContext, *args: object, **kwargs: object) -> None:
        loaded.append(args or kwargs)
        real(self, *args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ssl.SSLContext, "load_verify_locations", load)
    return loaded


def test_plain_http_requests_load_no_ca_bundle(server: str, bundles_loaded: list[object]) -> None:
    assert http.call("POST", f"{server}/snapshot", what="a snapshot").text == "OK"
    assert http.get(f"{server}/api/v1/query").text == "OK"
    assert bundles_loaded == []


def test_https_still_verifies(server: str, bundles_loaded: list[object]) -> None:
    """An https URL gets a verifying context: a plain-http server's answer to the TLS
    handshake fails it, and the failure is the operation's."""
    with pytest.raises(OperationFailed, match="cannot reach"):
        http.call("GET", server.replace("http://", "https://"), what="a check", timeout=5)
    assert bundles_loaded
