"""Overlap a slow byte source with its consumer: read ahead in a thread, in bounded memory.

A backup reads Docker's archive API (socket I/O), compresses (zstd's own worker
threads), hashes and writes. Done one after the other in one thread, every stage
waits for the others; ``prefetch`` moves the reading into a producer thread that
fills a queue of at most ``depth`` chunks while the caller's thread consumes.
Socket reads, zstd, hashlib and file writes release the GIL on large buffers, so
the stages really run side by side.

Contract (the backup's guarantees rest on it):

* memory: at most ``depth`` chunks wait in the queue, plus the one being read and
  the one being consumed, however large the stream;
* an exception raised by the source reaches the consumer as the very same
  exception object (a MonctlError keeps its type, message and hint);
* when the ``with`` block ends, for any reason (the consumer raised, Ctrl-C in the
  main thread, or the stream was only partly read) the producer is told to stop,
  the source is closed *in the producer thread* (closing a generator from another
  thread while it runs is an error) and the thread is joined before ``__exit__``
  returns. Docker's daemon blocks ``unpause`` while an archive request is open, so
  the caller unpauses only after this block: the request is closed by then.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator
from typing import Any

DEPTH = 4
_END = object()  # queued after the last chunk
_POLL = 0.05  # seconds between checks of the stop flag while the queue is full


class _Failure:
    """A producer-side exception, carried through the queue to the consumer."""

    def __init__(self, exc: BaseException) -> None:
        self.exc = exc


def _produce(source: Iterable[bytes], q: queue.Queue[Any], stop: threading.Event) -> None:
    def put(item: object) -> bool:
        while not stop.is_set():
            try:
                q.put(item, timeout=_POLL)
                return True
            except queue.Full:
                continue
        return False

    try:
        for chunk in source:
            if chunk and not put(chunk):
                return
        put(_END)
    except BaseException as exc:  # handed to the consumer, which re-raises it
        put(_Failure(exc))
    finally:
        close = getattr(source, "close", None)
        if close is not None:
            with contextlib.suppress(Exception):  # a close error must not hide the cause
                close()


def _consume(q: queue.Queue[Any]) -> Iterator[bytes]:
    while True:
        item = q.get()
        if item is _END:
            return
        if isinstance(item, _Failure):
            raise item.exc
        yield item


@contextlib.contextmanager
def prefetch(source: Iterable[bytes], depth: int = DEPTH) -> Iterator[Iterator[bytes]]:
    """Iterate ``source`` in a producer thread; yield an iterator over its chunks.

    Empty chunks are dropped. See the module docstring for memory, errors and
    shutdown. The source is closed (its ``close()``, if any) when the producer
    ends, whether it was read to the end or not.
    """
    q: queue.Queue[Any] = queue.Queue(maxsize=max(1, depth))
    stop = threading.Event()
    worker = threading.Thread(
        target=_produce, args=(source, q, stop), name="monctl-prefetch", daemon=True
    )
    worker.start()
    try:
        yield _consume(q)
    finally:
        stop.set()
        # Empty the queue so a producer blocked in put() sees the stop flag at once;
        # joined in short steps so a second Ctrl-C can still interrupt the wait.
        while worker.is_alive():
            with contextlib.suppress(queue.Empty):
                while True:
                    q.get_nowait()
            worker.join(_POLL)
