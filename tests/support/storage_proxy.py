"""A TCP forwarder that a test can cut: the S3 endpoint "goes down" on command."""

from __future__ import annotations

import contextlib
import socket
import threading


class FaultProxy:
    """A TCP forwarder to ``target``. ``cut()`` closes every open connection and makes
    new ones fail at once (accepted, then reset) until ``restore()``;
    ``refused`` counts the connections turned away since the cut."""

    def __init__(self, target: tuple[str, int]) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}"
        self._down = threading.Event()
        self._lock = threading.Lock()
        self._conns: list[socket.socket] = []
        self.refused = 0
        self.restore_after: int | None = None  # restore by itself after N refusals
        threading.Thread(target=self._accept, daemon=True).start()

    def cut(self, restore_after: int | None = None) -> None:
        with self._lock:
            self.refused = 0
            self.restore_after = restore_after
            self._down.set()
            for c in self._conns:
                _close(c)
            self._conns.clear()

    def restore(self) -> None:
        self._down.clear()

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            with self._lock:
                if self._down.is_set():
                    self.refused += 1
                    if self.restore_after is not None and self.refused >= self.restore_after:
                        self._down.clear()
                    # SO_LINGER 0: a reset, as from a host that has gone away.
                    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\0\0\0\0\0\0\0")
                    _close(client)
                    continue
                try:
                    upstream = socket.create_connection(self.target)
                except OSError:
                    _close(client)
                    continue
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=_pump, args=(a, b), daemon=True).start()

    def close(self) -> None:
        _close(self.listener)
        self.cut()


def _pump(src: socket.socket, dst: socket.socket) -> None:
    try:
        while data := src.recv(65536):
            dst.sendall(data)
    except OSError:
        pass
    finally:
        _close(src)
        _close(dst)


def _close(s: socket.socket) -> None:
    with contextlib.suppress(OSError):
        s.shutdown(socket.SHUT_RDWR)
    s.close()
