"""The health probes' HTTP (monctl/adapters/http_probe.py) against real local servers:
every answer is a Reply whatever its status, every missing answer a NoAnswer with the
reason in words; redirects are not followed and a body without end is cut."""

from __future__ import annotations

import asyncio
import socket
import threading
import time
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from monctl.adapters.http_probe import MAX_BODY, NoAnswer, ProbeClient, Reply


class Handler(BaseHTTPRequestHandler):
    def do_GET(self) -> None:
        if self.path == "/moved":
            self.send_response(302)
            self.send_header("Location", "/login")
            self.end_headers()
        elif self.path == "/endless":
            self.send_response(200)
            self.end_headers()  # no length: the body ends when the connection does
            chunk = b"x" * 65536
            try:
                for _ in range(2 * MAX_BODY // len(chunk)):
                    self.wfile.write(chunk)
            except OSError:
                pass  # the client stopped reading, as it should
        elif self.path == "/trickle":
            self.send_response(200)
            self.send_header("Content-Length", "1000")
            self.end_headers()
            try:
                for _ in range(1000):
                    self.wfile.write(b"x")
                    self.wfile.flush()
                    time.sleep(0.05)
            except OSError:
                pass
        else:
            body = b"ok" if self.path == "/" else b"no"
            self.send_response(200 if self.path == "/" else 503)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    httpd.daemon_threads = True
    threading.Thread(target=httpd.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


def get(url: str, timeout: float = 5.0) -> Reply:
    async def one() -> Reply:
        async with ProbeClient(tls=False) as client:
            return await client.get(url, timeout, None)

    return asyncio.run(one())


def test_an_answer_whatever_its_status(server: str) -> None:
    assert (get(server + "/").status, get(server + "/").text) == (200, "ok")
    assert (get(server + "/down").status, get(server + "/down").text) == (503, "no")


def test_a_redirect_is_an_answer_never_followed(server: str) -> None:
    reply = get(server + "/moved")
    assert reply.status == 302
    assert reply.headers["location"] == "/login"


def test_a_body_without_end_is_cut(server: str) -> None:
    assert len(get(server + "/endless").text) == MAX_BODY


def test_a_refused_connection_is_no_answer_in_words() -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with pytest.raises(NoAnswer) as caught:
        get(f"http://127.0.0.1:{port}/")
    assert caught.value.why == "connection refused"


def test_a_trickling_server_is_bounded_as_a_whole(server: str) -> None:
    """Each byte comes within httpx's read timeout; the request as a whole does not."""
    with pytest.raises(NoAnswer) as caught:
        get(server + "/trickle", timeout=0.5)
    assert caught.value.why == "timed out after 0.5s"


def test_many_requests_in_flight_at_once(server: str) -> None:
    async def all_of_them() -> list[Reply]:
        async with ProbeClient(tls=False) as client:
            return await asyncio.gather(*(client.get(server + "/", 5.0, None) for _ in range(20)))

    assert {r.status for r in asyncio.run(all_of_them())} == {200}
