"""A pass-through proxy to the real Docker engine that puts some new volumes on a small tmpfs.

The engine's own disk cannot be filled in a test (it is the machine's). To see
what a restore or a drill does when the engine runs out of space while staging,
monctl (and the compose it runs) talk to the engine through this proxy
(``DOCKER_HOST=tcp://127.0.0.1:PORT``). It passes every request and answer through
unchanged, except a volume creation whose name contains ``marker``: that volume
is created with ``DriverOpts`` that put it on a tmpfs of ``size`` bytes. The engine
then really runs out of space writing into it, and answers as it does on a full
disk ("write …: no space left on device"): only where the volume lives is changed,
nothing of the failure is made up here.

HTTP/1.1 requests are read one after another on each connection (Content-Length
or chunked bodies, streamed through); after an Upgrade (docker exec) the
connection is piped as it is. Answers are never parsed.
"""

from __future__ import annotations

import contextlib
import json
import re
import socket
import threading
from typing import BinaryIO

_CREATE = re.compile(rb"^POST /(?:v[0-9.]+/)?volumes/create[ ?]")


class VolumeSizingProxy:
    def __init__(self, marker: str, size: int, engine: str = "/var/run/docker.sock") -> None:
        self.marker, self.size, self.engine = marker, size, engine
        self.sized: list[str] = []  # the volumes put on a tmpfs
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.url = f"tcp://127.0.0.1:{self.listener.getsockname()[1]}"
        threading.Thread(target=self._accept, daemon=True).start()

    def close(self) -> None:
        with contextlib.suppress(OSError):
            self.listener.close()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            threading.Thread(target=self._serve, args=(client,), daemon=True).start()

    def _serve(self, client: socket.socket) -> None:
        upstream = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            upstream.connect(self.engine)
        except OSError:
            client.close()
            return
        down = threading.Thread(target=_pipe_down, args=(upstream, client), daemon=True)
        down.start()
        reader = client.makefile("rb")
        sink = _Sink(upstream)
        try:
            while self._request(reader, sink):
                pass
        except OSError:
            pass
        finally:
            down.join(30)
            for s in (upstream, client):
                with contextlib.suppress(OSError):
                    s.close()

    def _request(self, reader: BinaryIO, sink: _Sink) -> bool:
        """Pass one request through; False at the end of the connection."""
        start = reader.readline()
        if not start:
            return False
        head = [start]
        while (line := reader.readline()) not in (b"\r\n", b"\n", b""):
            head.append(line)
        fields = {}
        for line in head[1:]:
            name, _, value = line.decode("latin-1").partition(":")
            fields[name.strip().lower()] = value.strip()
        length = int(fields.get("content-length") or 0)
        chunked = "chunked" in fields.get("transfer-encoding", "").lower()
        if _CREATE.match(start) and not chunked:
            body = self._sized(reader.read(length))
            head = [h for h in head if not h.lower().startswith(b"content-length:")]
            head.append(f"Content-Length: {len(body)}\r\n".encode())
            sink.send(b"".join(head) + b"\r\n" + body)
            return True
        sink.send(b"".join(head) + b"\r\n")
        if chunked:
            while True:
                size_line = reader.readline()
                sink.send(size_line)
                size = int(size_line.split(b";")[0].strip() or b"0", 16)
                if size == 0:
                    while (trailer := reader.readline()) not in (b"\r\n", b"\n", b""):
                        sink.send(trailer)
                    sink.send(b"\r\n")
                    break
                sink.send(reader.read(size + 2))  # the data and its CRLF
        elif length:
            while length > 0:
                data = reader.read(min(length, 1 << 16))
                if not data:
                    return False
                sink.send(data)
                length -= len(data)
        if "upgrade" in fields:  # docker exec: from here on, a plain pipe
            while data := reader.read1(1 << 16):  # type: ignore[attr-defined]
                sink.send(data)
            return False
        return True

    def _sized(self, body: bytes) -> bytes:
        try:
            doc = json.loads(body or b"{}")
        except ValueError:
            return body
        name = str(doc.get("Name") or "")
        if self.marker not in name:
            return body
        doc["Driver"] = "local"
        doc["DriverOpts"] = {"type": "tmpfs", "device": "tmpfs", "o": f"size={self.size}"}
        self.sized.append(name)
        return json.dumps(doc).encode()


class _Sink:
    """The engine's side of one connection. Once the engine stops reading (it answered
    early, e.g. a full disk), the rest of the request is dropped, never an error: the
    client must still get the answer that is on its way."""

    def __init__(self, upstream: socket.socket) -> None:
        self.upstream = upstream
        self.broken = False

    def send(self, data: bytes) -> None:
        if self.broken:
            return
        try:
            self.upstream.sendall(data)
        except OSError:
            self.broken = True


def _pipe_down(upstream: socket.socket, client: socket.socket) -> None:
    try:
        while data := upstream.recv(1 << 16):
            client.sendall(data)
    except OSError:
        pass
    finally:
        with contextlib.suppress(OSError):
            client.shutdown(socket.SHUT_WR)
