"""Storing one file's bytes as an object of the backup's staging batch, or finding it stored.

Everything happens piece by piece as the engine's stream arrives (views of
its chunks, never copied): each piece is hashed the moment it is read, so
the engine, which produces the stream at its own pace and waits while nobody
reads it, is never kept waiting long (measured: faster than hashing and
writing on a second thread, which only adds contention for the GIL on two
cores; bench/README.md).

- A small file (up to ``IN_MEMORY``) is kept as pieces until its hash is
  known: when the repository holds that content, nothing is written at all
  (Loki's chunks, read again every time), else the pieces are written in one
  ``writev``.
- A larger file is encoded into a spool while it is hashed; the spool is
  dropped if the content turns out to be in the repository already.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monctl.repository.index import Index
from monctl.repository.objects import SAMPLE, Blob, Encoder, choose_codec

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage import Spool, Staging

# Files up to this size are held (as views) and looked up before anything is written.
IN_MEMORY = 4 * 1024 * 1024


def _head(pieces: list[bytes | memoryview], size: int) -> bytes:
    """The first ``size`` bytes of ``pieces`` (joining only as many as that takes)."""
    taken, total = [], 0
    for piece in pieces:
        taken.append(piece)
        total += len(piece)
        if total >= size:
            break
    return b"".join(taken)[:size]


@dataclass
class ObjectStore:
    staging: Staging
    index: Index
    mode: str  # auto, zstd, gzip, none
    full: bool = False
    recipients: tuple[str, ...] = ()  # age public keys: every object encrypted to them
    written: int = 0  # stored bytes written
    new_objects: int = 0
    reused: dict[str, int] = field(default_factory=dict)  # object id -> stored bytes

    def _known(self, sha256: str, size: int) -> Blob | None:
        known = None if self.full else self.index.known(sha256, size)
        if known is not None:
            self.reused[known.ref.id] = known.ref.stored
        return known

    def whole(self, pieces: Iterable[bytes | memoryview], compressed: bool) -> Blob:
        """A small file: hashed, looked up, written only when new."""
        hasher = hashlib.sha256()
        held: list[bytes | memoryview] = []
        for piece in pieces:
            hasher.update(piece)
            held.append(piece)
        sha, size = hasher.hexdigest(), sum(len(p) for p in held)
        known = self._known(sha, size)
        if known is not None:
            return known
        sample = b"" if compressed else _head(held, SAMPLE)
        spool = self.staging.spool()
        codec = choose_codec(self.mode, sample, compressed)
        blob = Encoder(codec, spool, self.recipients).write_whole(held, sha)
        return self.keep(spool, blob)

    def stream(self, pieces: Iterable[bytes | memoryview], compressed: bool) -> Blob:
        """A large file: encoded into a spool as it is hashed, dropped if already stored."""
        it = iter(pieces)
        head = bytearray()
        if not compressed:  # the sample decides the codec
            for piece in it:
                head += piece
                if len(head) >= SAMPLE:
                    break
        spool = self.staging.spool()
        codec = choose_codec(self.mode, bytes(head[:SAMPLE]), compressed)
        encoder = Encoder(codec, spool, self.recipients)
        try:
            encoder.write(head)
            del head
            for piece in it:
                encoder.write(piece)
            blob = encoder.finish()
        except BaseException:
            encoder.abort()  # stops the age thread, if one runs
            raise
        known = self._known(blob.sha256, blob.size)
        if known is not None:
            self.staging.drop(spool)
            return known
        return self.keep(spool, blob)

    def keep(self, spool: Spool, blob: Blob) -> Blob:
        """Keep ``spool`` as ``blob``'s object (once per backup: a repeat is dropped)."""
        if self.index.written(blob.ref.id):  # the same content twice in this backup
            self.staging.drop(spool)
            return blob
        self.staging.keep(spool, blob.ref.key, replace=self.full)
        self.index.add(blob)
        self.written += blob.ref.stored
        self.new_objects += 1
        return blob
