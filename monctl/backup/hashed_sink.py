"""The stored bytes of an encrypted object, hashed and spooled behind the encryption.

An encrypted object costs two sha256 passes (the plaintext, for the manifest and
dedupe; the ciphertext, for the object's id) and the cipher. hashlib and file writes
release the GIL, so the second hash and the spool write run on a helper thread while
the caller's thread compresses and encrypts the next bytes: on a machine with a core
to spare, encryption then costs about what the cipher costs.

Bytes are handed over 1 MiB at a time (one queue operation per MiB, not per 64 KiB
age chunk), at most ``DEPTH`` batches ahead (bounded memory). Objects below one batch
never start the thread: they are hashed and spooled at ``close``. Order is kept: one
thread writes. An error on the helper thread is raised to the caller at its next
hand-over or at ``close``; ``abort`` stops the thread whatever happened.
"""

from __future__ import annotations

import queue
import threading
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage import Spool

BATCH = 1024 * 1024
DEPTH = 4


class HashedSink:
    def __init__(self, hasher: Any, spool: Spool) -> None:
        self._hasher = hasher
        self._spool = spool
        self._batch: list[bytes] = []
        self._batched = 0
        self._queue: queue.Queue[list[bytes] | None] | None = None
        self._thread: threading.Thread | None = None
        self._error: BaseException | None = None

    def write(self, data: bytes) -> None:
        self._batch.append(data)
        self._batched += len(data)
        if self._batched >= BATCH:
            self._hand_over()

    def _hand_over(self) -> None:
        batch, self._batch, self._batched = self._batch, [], 0
        if self._error is not None:
            raise self._error
        if self._queue is None:
            self._queue = queue.Queue(maxsize=DEPTH)
            self._thread = threading.Thread(target=self._run, name="hash-spool", daemon=True)
            self._thread.start()
        self._queue.put(batch)

    def _run(self) -> None:
        assert self._queue is not None
        while (batch := self._queue.get()) is not None:
            if self._error is not None:
                continue  # keep draining, so the caller never blocks on a full queue
            try:
                for piece in batch:
                    self._hasher.update(piece)
                self._spool.write_all(batch)
            except BaseException as e:  # raised to the caller, not lost with the thread
                self._error = e

    def close(self) -> None:
        """Everything written is hashed and in the spool (or its error raised)."""
        if self._queue is None:
            for piece in self._batch:
                self._hasher.update(piece)
            self._spool.write_all(self._batch)
            self._batch, self._batched = [], 0
            return
        try:
            if self._batch:
                self._hand_over()
        finally:
            self._stop()
        if self._error is not None:
            raise self._error

    def abort(self) -> None:
        self._batch, self._batched = [], 0
        self._stop()

    def _stop(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)  # the thread drains whatever is queued before it
            self._thread.join()
            self._queue = self._thread = None
