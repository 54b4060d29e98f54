"""The thread plumbing behind pyrage's streams (``age.py``): a bounded queue between
the caller and the age thread, either of which may stop first.

pyrage streams only as ``encrypt_io(reader, writer)`` / ``decrypt_io(reader, writer)``;
monctl's encoder is pushed to and its decoder pulled from, so the age side runs in a
``Worker`` thread joined to the caller by a ``Pipe`` of ``DEPTH`` pieces. Neither side
ever waits forever on the other: each wait gives up when the other is gone.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Callable

DEPTH = 8  # pieces in flight between the caller and the age thread

END = object()  # the producer is done
ABORT = object()  # the producer died without saying END


class Aborted(Exception):
    """The other side of the pipe is gone."""


class Pipe:
    """A bounded queue between a producer and a consumer thread, either of which may stop."""

    def __init__(self) -> None:
        self._queue: queue.Queue[object] = queue.Queue(maxsize=DEPTH)
        self.closed = threading.Event()  # the consumer will read no more

    def put(self, item: object, alive: Callable[[], bool]) -> None:
        while True:
            if self.closed.is_set():
                raise Aborted
            try:
                self._queue.put(item, timeout=0.2)
                return
            except queue.Full:
                if not alive():
                    raise Aborted from None

    def get(self, alive: Callable[[], bool]) -> object:
        while True:
            try:
                return self._queue.get(timeout=0.2)
            except queue.Empty:
                if not alive():
                    # The producer may have put its last pieces and ended between the
                    # timeout and this check: what it left is still to be read.
                    try:
                        return self._queue.get_nowait()
                    except queue.Empty:
                        return ABORT

    def abandon(self) -> None:
        """The consumer stops: unblock a producer waiting on a full queue."""
        self.closed.set()
        with contextlib.suppress(queue.Empty):
            while True:
                self._queue.get_nowait()


class PipeReader:
    """What pyrage reads: pieces from the pipe, served ``n`` bytes at a time."""

    def __init__(self, pipe: Pipe, alive: Callable[[], bool]) -> None:
        self._pipe, self._alive = pipe, alive
        self._piece = memoryview(b"")
        self._at = 0
        self._ended = False

    def read(self, n: int = -1) -> bytes:
        while self._at >= len(self._piece):
            if self._ended:
                return b""
            item = self._pipe.get(self._alive)
            if item is END:
                self._ended = True
                return b""
            if item is ABORT:
                raise Aborted
            assert isinstance(item, bytes)
            self._piece, self._at = memoryview(item), 0
        size = len(self._piece) - self._at if n is None or n < 0 else n
        data = bytes(self._piece[self._at : self._at + size])
        self._at += len(data)
        return data


class Worker:
    """Runs ``job`` in a daemon thread; keeps what it raised (also BaseException:
    pyo3's PanicException is one) for the caller to raise."""

    def __init__(self, job: Callable[[], None], name: str) -> None:
        self.error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, args=(job,), name=name, daemon=True)
        self._thread.start()

    def _run(self, job: Callable[[], None]) -> None:
        try:
            job()
        except BaseException as e:  # handed to the caller's thread
            self.error = e

    def alive(self) -> bool:
        return self._thread.is_alive()

    def join(self) -> None:
        self._thread.join()


class PipeWriter:
    """What pyrage writes plaintext to while decrypting (8 KiB at a time): gathered
    into pieces of ``PIECE`` bytes, so the queue moves few large pieces."""

    PIECE = 256 * 1024

    def __init__(self, pipe: Pipe) -> None:
        self._pipe = pipe
        self._buffer = bytearray()

    def write(self, data: bytes) -> int:
        self._buffer += data
        if len(self._buffer) >= self.PIECE:
            self.flush()
        return len(data)

    def flush(self) -> None:
        if self._buffer:
            self._pipe.put(bytes(self._buffer), lambda: True)
            self._buffer.clear()
