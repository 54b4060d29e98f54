"""Where ``monctl backup export`` writes its tar (``export.py`` makes it): a file, written
under a temporary name beside it and renamed over it only when complete (no partial
export is ever left), or stdout, cut where the export failed and poisoned for tar readers.
An OS error writing it is exit 8, said as every storage error is (``storage_error``)."""

from __future__ import annotations

import contextlib
import errno
import os
import sys
import tempfile
import zlib
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

from monctl.adapters.storage.os_errors import storage_error
from monctl.errors import StorageError
from monctl.repository.objects import READ_SIZE

STDOUT = "-"
# The output's name says how it is compressed; anything else is a plain tar.
SUFFIXES = {".zst": "zstd", ".zstd": "zstd", ".gz": "gzip", ".tgz": "gzip"}
# Ends a stream cut between members, which GNU tar would read as complete (no end
# marker needed): a block that is no tar header (its checksum is wrong) makes GNU tar
# and bsdtar fail. Never written inside a member: it could pass for its last data.
POISON = b"\nmonctl backup export FAILED here: this tar stream is incomplete\n".ljust(512, b"\0")


class OutputError(StorageError):
    """Writing the export failed (disk full, permission, a closed pipe): exit 8."""


class Sink:
    """Where the tar goes: FILE, written under a temporary name beside it (mode 0600:
    it holds the backup's plaintext) and renamed over it only when complete; or stdout."""

    def __init__(self, output: str) -> None:
        self.output = output
        self.size = 0  # bytes written
        self._temp: str | None = None
        if output == STDOUT:
            self._file: BinaryIO = sys.stdout.buffer
            return
        target = Path(output)
        try:
            fd, self._temp = tempfile.mkstemp(
                prefix=f".{target.name[:200]}.", suffix=".part", dir=target.parent
            )
        except OSError as e:
            raise _output_error(output, e, "create a file beside") from None
        self._file = os.fdopen(fd, "wb", buffering=READ_SIZE)

    def write(self, data: bytes) -> None:
        self.size += len(data)
        try:
            self._file.write(data)
        except OSError as e:
            raise _output_error(self.output, e) from None

    def commit(self) -> None:
        """Make the output complete: flushed (and durable, a file: then renamed)."""
        try:
            self._file.flush()
            if self._temp is None:
                return
            os.fsync(self._file.fileno())
            self._file.close()
            os.replace(self._temp, self.output)
            self._temp = None
            _sync_dir(Path(self.output).parent)
        except OSError as e:
            raise _output_error(self.output, e) from None

    def discard(self, at_boundary: bool = False) -> None:
        """After a failure: no partial file is left; stdout is cut where it is (what
        passed its checks), followed by ``POISON`` when that is ``at_boundary``."""
        if self._temp is None:
            with contextlib.suppress(OSError):
                if at_boundary:
                    self._file.write(POISON)
                self._file.flush()
            return
        with contextlib.suppress(OSError):
            self._file.close()
        with contextlib.suppress(OSError):
            os.unlink(self._temp)
        self._temp = None


def _sync_dir(path: Path) -> None:
    with contextlib.suppress(OSError):  # not every filesystem lets a directory be synced
        fd = os.open(path or ".", os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)


def _output_error(output: str, e: OSError, doing: str = "write") -> OutputError:
    from monctl.text import shown

    if output == STDOUT and e.errno == errno.EPIPE:
        # Whatever reads stdout went away. Python would complain once more when it
        # flushes stdout on the way out: point it at /dev/null.
        with contextlib.suppress(OSError):
            null = os.open(os.devnull, os.O_WRONLY)
            os.dup2(null, sys.stdout.fileno())
        return OutputError("the export's reader closed the pipe before the export ended")
    where = "stdout" if output == STDOUT else shown(output, 120)
    hint = (
        "free space there, or write the export elsewhere (--output)"
        if e.errno in (errno.ENOSPC, errno.EDQUOT)
        else None
    )
    # The cause in words (and the free space when the disk is full) as every other
    # storage error says it; OutputError keeps "the output failed" apart from the
    # destination failing.
    said = storage_error(e, where, f"cannot {doing}", hint)
    return OutputError(said.message, hint=said.hint)


def compression_of(output: str) -> str:
    """The codec an output name asks for: zstd (.zst), gzip (.gz, .tgz), else none."""
    if output == STDOUT:
        return "none"
    return SUFFIXES.get(Path(output).suffix.lower(), "none")


def compressor_of(codec: str) -> Any:
    """A compressobj for ``codec`` (None: "none"): written once and kept, so zstd's and
    gzip's usual levels, not the fastest ones backups use."""
    if codec == "zstd":
        import zstandard

        return zstandard.ZstdCompressor(level=3, threads=-1, write_checksum=True).compressobj()
    if codec == "gzip":
        return zlib.compressobj(6, zlib.DEFLATED, 31)  # 31: a gzip member (header, crc)
    return None


class Header(bytes):
    """A member's header, or the end-of-archive marker: where a member begins."""


class Behind:
    """The tar stream, each chunk passed on once the next one has been made (module
    docstring: the check at the end of an object runs before its last bytes go out).
    ``at_boundary``: what was passed on ends where a member (or the end) begins."""

    def __init__(self, chunks: Iterable[bytes]) -> None:
        self._chunks = chunks
        self.at_boundary = True

    def __iter__(self) -> Iterator[bytes]:
        held: bytes | None = None
        for chunk in self._chunks:
            if held is not None:
                yield held
            held = chunk
            self.at_boundary = isinstance(chunk, Header)
        if held is not None:
            yield held
