"""age encryption (the optional extra ``monctl[age]``: pyrage, age 0.12 in Rust).

What monctl needs from age, and nothing else: public recipients checked and
written down canonically, identities read from files without ever showing them,
and streams that encrypt or decrypt as the bytes pass — never a plaintext
temporary file, never a whole object in memory beyond ``SMALL``.

Encryption to ``age1…`` keys only (the usual case) is done in-line by
``age_native`` (``encryptor`` picks it): no thread, OpenSSL's cipher, ~5x faster.
The rest of this module is pyrage: SSH recipients, and every decryption.

Why a thread: pyrage streams only as ``encrypt_io(reader, writer)`` /
``decrypt_io(reader, writer)`` — it pulls from a reader and pushes to a writer
until the end. monctl's encoder is pushed to (``write``) and its decoder is
pulled from (``read``), so the age side runs in a worker thread joined to the
caller by a bounded queue (``DEPTH`` pieces; ``age_pipe.py``). Contents up to ``SMALL`` bytes are
done in one call (``pyrage.encrypt``/``decrypt``) with no thread at all: most
objects are small, and a thread per object would cost more than the cipher.

Every stored object is a standard age file (``age-encryption.org/v1``): with the
identity, ``age -d`` and ``zstd -d`` recover one by hand, without monctl.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Sequence
from typing import Any, BinaryIO

from monctl.adapters.age_keys import (
    IDENTITY_HINT,
    INSTALL_HINT,
    MAX_IDENTITY_FILE,
    MAX_RECIPIENTS,
    AgeError,
    Identities,
    MissingIdentity,
    NoMatchingIdentity,
    _pyrage,
    _recipient_objects,
    _translate,
    blake3_hasher,
    canonical_recipient,
    load_identities,
    parse_recipients,
)
from monctl.adapters.age_native import MAGIC, NativeEncryptor, x25519_public
from monctl.adapters.age_pipe import (
    DEPTH,
    END,
    Aborted,
    Pipe,
    PipeReader,
    PipeWriter,
    Worker,
)
from monctl.errors import IntegrityError

__all__ = [
    "DEPTH",
    "IDENTITY_HINT",
    "INSTALL_HINT",
    "MAGIC",
    "MAX_IDENTITY_FILE",
    "MAX_RECIPIENTS",
    "SMALL",
    "AgeError",
    "Encryptor",
    "Identities",
    "MissingIdentity",
    "NativeEncryptor",
    "NoMatchingIdentity",
    "blake3_hasher",
    "canonical_recipient",
    "decrypting",
    "encryptor",
    "load_identities",
    "parse_recipients",
]

SMALL = 4 * 1024 * 1024  # up to this, one call and no thread


# --- streams -------------------------------------------------------------------------------


def encryptor(
    recipients: Sequence[str], sink: Callable[[bytes], None], what: str
) -> Encryptor | NativeEncryptor:
    """The encryptor for ``recipients``: in-line (``age_native``: no thread, OpenSSL's
    cipher) when they are all ``age1…`` keys, else pyrage through its thread (SSH keys)."""
    _pyrage()  # the extra is installed: the same message whichever path is taken
    if all(r.startswith("age1") for r in recipients):
        try:
            publics = [x25519_public(r) for r in recipients]
            return NativeEncryptor(publics, sink)
        except ImportError:  # no cryptography: pyrage alone still works
            pass
        except ValueError as e:  # parse_recipients refuses these first; never mid-backup
            raise AgeError(f"{what}: encryption failed: {e}") from None
    return Encryptor(recipients, sink, what)


class Encryptor:
    """Plaintext pushed in with ``write``; ciphertext handed to ``sink`` (in pieces,
    possibly from another thread); ``finish`` when all is written, or ``abort``.

    Up to ``SMALL`` bytes are held and encrypted in one call at ``finish``; past
    that, the age thread starts and the bytes stream through it.
    """

    def __init__(self, recipients: Sequence[str], sink: Callable[[bytes], None], what: str) -> None:
        self._pyrage = _pyrage()
        self._recipients = _recipient_objects(recipients)
        self._sink = sink
        self._what = what
        self._held: list[bytes] = []
        self._held_size = 0
        self._pipe: Pipe | None = None
        self._worker: Worker | None = None
        self._sink_error: BaseException | None = None

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        if self._pipe is None:
            self._held.append(bytes(data))
            self._held_size += len(data)
            if self._held_size > SMALL:
                self._start()
            return
        self._send(bytes(data))

    def _start(self) -> None:
        pipe = self._pipe = Pipe()
        worker: Worker | None = None

        def alive() -> bool:
            return worker is None or worker.alive()

        reader = PipeReader(pipe, lambda: not pipe.closed.is_set())

        def job() -> None:
            self._pyrage.encrypt_io(reader, _SinkWriter(self), self._recipients)

        worker = self._worker = Worker(job, "age-encrypt")
        self._alive = alive
        held, self._held = self._held, []
        for piece in held:
            self._send(piece)

    def _send(self, item: object) -> None:
        assert self._pipe is not None
        try:
            self._pipe.put(item, self._alive)
        except Aborted:
            self._raise_from_worker()
            raise IntegrityError(f"{self._what}: encryption stopped") from None

    def _raise_from_worker(self) -> None:
        assert self._worker is not None
        self._worker.join()
        if self._sink_error is not None:
            raise self._sink_error
        if self._worker.error is not None:
            raise _translate(self._worker.error, self._what) from None

    def finish(self) -> None:
        if self._pipe is None:
            try:
                data = self._pyrage.encrypt(b"".join(self._held), self._recipients)
            except Exception as e:
                raise _translate(e, self._what) from None
            self._held = []
            self._sink(data)
            return
        self._send(END)
        self._raise_from_worker()

    def abort(self) -> None:
        """Stop, whatever happened: the age thread ends and nothing more reaches the sink."""
        self._held = []
        if self._pipe is not None and self._worker is not None:
            self._pipe.abandon()
            self._pipe.closed.set()
            self._worker.join()


class _SinkWriter:
    def __init__(self, owner: Encryptor) -> None:
        self._owner = owner

    def write(self, data: bytes) -> int:
        try:
            self._owner._sink(bytes(data))
        except BaseException as e:
            self._owner._sink_error = e  # the real failure (disk full), not pyrage's wrapping
            raise
        return len(data)


class _ReaderGuard:
    """The stored bytes as pyrage reads them; keeps the reader's own failure (a
    storage error) so that it, not pyrage's wrapping of it, reaches the caller."""

    def __init__(self, stored: BinaryIO) -> None:
        self._stored = stored
        self.error: BaseException | None = None

    def read(self, n: int = -1) -> bytes:
        try:
            return self._stored.read(n)
        except BaseException as e:
            self.error = e
            raise


class _Decrypted(io.RawIOBase):
    def __init__(self, pipe: Pipe, worker: Worker, guard: _ReaderGuard, what: str) -> None:
        self._pipe, self._worker, self._guard, self._what = pipe, worker, guard, what
        self._reader = PipeReader(pipe, worker.alive)

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        try:
            data = self._reader.read(len(b))
        except Aborted:
            self._fail()
        b[: len(data)] = data
        if not data:
            self._fail_if_failed()
        return len(data)

    def _fail_if_failed(self) -> None:
        self._worker.join()
        if self._guard.error is not None or self._worker.error is not None:
            self._fail()

    def _fail(self) -> Any:
        self._worker.join()
        if self._guard.error is not None:
            raise self._guard.error
        raise _translate(self._worker.error or OSError("decryption stopped"), self._what) from None


@contextlib.contextmanager
def decrypting(
    stored: BinaryIO, stored_size: int, identities: Identities, what: str
) -> Iterator[BinaryIO]:
    """The plaintext of the age file ``stored`` as a stream.

    Reads raise NoMatchingIdentity when no identity fits, IntegrityError when the
    ciphertext does not authenticate (age checks every 64 KiB chunk: nothing
    unauthenticated is read past a bad chunk). The stream must be read to its end
    for the last chunk to be checked.
    """
    pyrage = _pyrage()
    if stored_size <= SMALL:
        data = _read_up_to(stored, SMALL + 1)
        try:
            plain = pyrage.decrypt(data, list(identities.keys))
        except pyrage.DecryptError as e:
            raise _translate(e, what) from None
        yield io.BytesIO(plain)
        return
    pipe = Pipe()
    guard = _ReaderGuard(stored)
    writer = PipeWriter(pipe)

    def job() -> None:
        try:
            pyrage.decrypt_io(guard, writer, list(identities.keys))
            writer.flush()  # only after success: an error must not look like the end
        finally:
            with contextlib.suppress(Aborted):
                pipe.put(END, lambda: True)

    worker = Worker(job, "age-decrypt")
    try:
        yield io.BufferedReader(_Decrypted(pipe, worker, guard, what), 1024 * 1024)
    finally:
        pipe.abandon()
        worker.join()


def _read_up_to(stored: BinaryIO, limit: int) -> bytes:
    pieces: list[bytes] = []
    size = 0
    while size < limit:
        piece = stored.read(limit - size)
        if not piece:
            break
        pieces.append(piece)
        size += len(piece)
    return b"".join(pieces)
