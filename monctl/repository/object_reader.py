"""Reading objects back: the one consumer of stored bytes (``open_object``), and the
checks of an object's stored bytes and of a packed file (see ``objects.py``, which makes
them).

``open_object`` checks both hashes and both sizes as it streams, and never yields more
plaintext than the manifest promised (a decompression bomb stops at the expected size).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, BinaryIO

from monctl.adapters.age import AgeError
from monctl.errors import IntegrityError
from monctl.repository.archive import HashingReader, decompress_stream
from monctl.repository.objects import READ_SIZE, Blob, ObjectRef, id_hasher

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.age import Identities
    from monctl.adapters.storage import Storage
    from monctl.repository.filelist import FileEntry


class _Checked(io.RawIOBase):
    """The plaintext of one object; at its end both hashes and sizes are compared.

    Stored as it is ("none"), the stored bytes are the plaintext: read straight
    from the destination and hashed once, which is both checks at the price of one.
    """

    def __init__(
        self,
        stored: BinaryIO,
        blob: Blob,
        what: str,
        on_bytes: Callable[[int], None] | None,
        opened: contextlib.ExitStack,
        identities: Identities | None,
    ) -> None:
        codec, sealed = blob.ref.codec, blob.ref.encrypted
        self._hashing: HashingReader | None = None
        # Counted on the plaintext side when the stored bytes are read by the age
        # thread (progress is drawn from this thread only).
        self._on_bytes = on_bytes if codec == "none" or sealed else None
        if codec == "none" and not sealed:
            self._plain: BinaryIO = stored
        else:
            hasher = id_hasher(blob.ref.hash)
            self._hashing = HashingReader(stored, None if sealed else on_bytes, hasher)
            source: BinaryIO = io.BufferedReader(self._hashing, READ_SIZE)
            if sealed:
                from monctl.adapters import age

                if identities is None:
                    raise age.MissingIdentity(f"{what} is encrypted, and no identity was given")
                source = opened.enter_context(
                    age.decrypting(source, blob.ref.stored, identities, what)
                )
            self._plain = source if codec == "none" else decompress_stream(source, codec)
        self._sha = hashlib.sha256()
        self._blob = blob
        self._what = what
        self.size = 0
        self.done = False

    def readable(self) -> bool:
        return True

    def read(self, size: int | None = -1) -> bytes:
        """Up to ``size`` bytes (all that is left: -1); b"" at the end, once checked.
        The bytes come straight from the reader below: no copy is made here."""
        left = self._blob.size - self.size
        want = left + 1 if size is None or size < 0 else min(size, left + 1)  # +1: excess
        try:
            data = self._plain.read(want) if want > 0 else b""
        except AgeError:  # it names the object already
            raise
        except IntegrityError as e:  # the codec's own check (zstd's checksum): say whose
            raise IntegrityError(f"{self._what} is corrupt: {e.message}") from None
        if data:
            self.size += len(data)
            if self.size > self._blob.size:
                raise IntegrityError(
                    f"{self._what} holds more than the {self._blob.size} bytes recorded"
                )
            self._sha.update(data)
            if self._on_bytes is not None:
                self._on_bytes(len(data))
            return data
        if not self.done:
            self._finish()
        return b""

    def readinto(self, b: Any) -> int:
        data = self.read(len(b))
        b[: len(data)] = data
        return len(data)

    def _finish(self) -> None:
        self.done = True
        ref = self._blob.ref
        plain = self._sha.hexdigest()
        if self._hashing is not None:
            self._hashing.drain()
            stored, stored_size = self._hashing.hexdigest, self._hashing.size
        else:
            stored, stored_size = plain, self.size
        if stored_size != ref.stored or stored != ref.id:
            raise IntegrityError(
                f"{self._what} is corrupt: its stored bytes hash to "
                f"{stored[:16]}… ({stored_size} bytes), not to its name"
            )
        if self.size != self._blob.size or plain != self._blob.sha256:
            raise IntegrityError(
                f"{self._what} does not decode to the content recorded "
                f"({self.size} bytes, sha256 {plain[:16]}…)"
            )


@contextlib.contextmanager
def open_object(
    storage: Storage,
    blob: Blob,
    what: str = "",
    on_bytes: Callable[[int], None] | None = None,
    identities: Identities | None = None,
) -> Iterator[BinaryIO]:
    """The plaintext of ``blob`` as a stream (the ONE consumer of stored bytes).

    Reads raise IntegrityError when the stored bytes do not hash to the object's
    id or do not decode to the recorded plaintext (checked when the stream ends:
    read it to the end); StorageError when the object is missing or unreadable.
    An encrypted object needs ``identities``: without them, or when none fits,
    IntegrityError (``adapters.age``) before any plaintext is read.
    """
    what = what or f"object {blob.ref.id[:16]}…"
    with storage.open(blob.ref.key) as stored, contextlib.ExitStack() as opened:
        yield _Checked(stored, blob, what, on_bytes, opened, identities)  # type: ignore[misc]


def check_object(
    storage: Storage,
    blob: Blob,
    what: str = "",
    on_bytes: Callable[[int], None] | None = None,
    identities: Identities | None = None,
) -> None:
    """Read the whole object and check it (raise IntegrityError/StorageError)."""
    with open_object(storage, blob, what, on_bytes, identities) as plain:
        while plain.read(READ_SIZE):
            pass


def hash_stored(
    storage: Storage, ref: ObjectRef, on_bytes: Callable[[int], None] | None = None
) -> tuple[str, int]:
    """(hash, size) of an object's stored bytes, hashed as its id is: its integrity
    without any key."""
    with storage.open(ref.key) as stored:
        hashing = HashingReader(stored, on_bytes, id_hasher(ref.hash))
        hashing.drain()
    return hashing.hexdigest, hashing.size


def read_packed(plain: BinaryIO, entry: FileEntry, what: str) -> Iterator[bytes]:
    """The bytes of packed file ``entry``, the next ``entry.size`` of the pack's plaintext
    ``plain`` (``what`` names the pack); IntegrityError when the pack ends first or they
    do not hash as recorded (raised after the last piece: the caller must not keep them)."""
    sha, left = hashlib.sha256(), entry.size
    while left:
        data = plain.read(min(left, READ_SIZE))
        if not data:
            raise IntegrityError(f"{what} ends before {entry.path}")
        sha.update(data)
        left -= len(data)
        yield data
    if sha.hexdigest() != entry.sha256:
        raise IntegrityError(f"{what}: {entry.path} does not match its recorded sha256")
