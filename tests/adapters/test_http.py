"""One-off requests to the stack's services (monctl/adapters/http.py) against a real local
server: plain http loads no CA bundle; https still verifies."""

from __future__ import annotations

import ssl
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monctl.adapters import http
from monctl.errors import OperationFailed


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        self.send_response(200)
        self.send_header("Content-Length", "2")
        self.end_headers()
        self.wfile.write(b"ok")

    do_POST = do_GET

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


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
    assert http.call("POST", f"{server}/snapshot", what="a snapshot").text == "ok"
    assert http.get(f"{server}/api/v1/query").text == "ok"
    assert bundles_loaded == []


def test_https_still_verifies(server: str, bundles_loaded: list[object]) -> None:
    """An https URL gets a verifying context: a plain-http server's answer to the TLS
    handshake fails it, and the failure is the operation's."""
    with pytest.raises(OperationFailed, match="cannot reach"):
        http.call("GET", server.replace("http://", "https://"), what="a check", timeout=5)
    assert bundles_loaded
