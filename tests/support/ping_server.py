"""A real HTTP server on 127.0.0.1 that records every request it gets: the far end of
heartbeat pings and Apprise notifications in the tests (healthchecks.io, Uptime Kuma,
Cronitor and a JSON webhook are all "some server that receives an HTTP request").

``status`` sets the answer; ``hang`` makes every request wait (without answering)
until ``release()`` — a check URL whose server never answers.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from urllib.parse import parse_qs, urlsplit


@dataclass(frozen=True)
class Received:
    method: str
    path: str
    query: dict[str, list[str]]
    body: str
    headers: dict[str, str]


class RecordingServer:
    def __init__(self, status: int = 200, hang: bool = False) -> None:
        self.status = status
        self.received: list[Received] = []
        self.waiting = 0  # requests held by `hang` right now
        self._released = threading.Event()
        if not hang:
            self._released.set()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _handle(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length).decode("utf-8", "replace") if length else ""
                parts = urlsplit(self.path)
                server.received.append(
                    Received(
                        self.command,
                        parts.path,
                        parse_qs(parts.query, keep_blank_values=True),
                        body,
                        {k.lower(): v for k, v in self.headers.items()},
                    )
                )
                if not server._released.is_set():
                    server.waiting += 1
                    server._released.wait(120)
                    server.waiting -= 1
                data = b"OK"
                self.send_response(server.status)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_HEAD = _handle

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        self._thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self._thread.start()

    def release(self) -> None:
        self._released.set()

    def paths(self) -> list[str]:
        return [r.path for r in self.received]

    def close(self) -> None:
        self.release()
        self.httpd.shutdown()
        self.httpd.server_close()

    def __enter__(self) -> RecordingServer:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.close()
