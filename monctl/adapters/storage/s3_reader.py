"""Reading one S3 object as a stream, resuming where a dropped connection left off.

``S3Storage.open`` returns ``reading(S3Reader(...))``: a buffered file object
over the object's body. The first GET happens when the reader is made, so a
missing key fails at open, not at the first read. A transient failure
mid-read is resumed with a ranged GET of the same version (If-Match on the
ETag), so a long restore survives a network blip without starting over, and
a body that ends short of its length raises StorageError instead of passing
for the end.
"""

from __future__ import annotations

import io
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any, BinaryIO

from monctl.adapters.storage.s3_errors import is_transient
from monctl.errors import MonctlError, StorageError

if TYPE_CHECKING:
    from monctl.adapters.storage.s3 import S3Storage


@contextmanager
def reading(reader: S3Reader) -> Iterator[BinaryIO]:
    """``reader`` behind a 1 MiB buffer; closed (with its HTTP body) on exit."""
    try:
        yield io.BufferedReader(reader, 1024 * 1024)
    finally:
        reader.close()


class S3Reader(io.RawIOBase):
    """The body of one object, read as a stream. A connection lost mid-read is
    resumed with a ranged GET of the same version (If-Match on the ETag)."""

    def __init__(self, storage: S3Storage, key: str, full: str) -> None:
        self._s = storage
        self._key = key
        self._full = full
        self._pos = 0
        answer = self._get()
        self._etag = answer["ETag"]
        self._length = int(answer["ContentLength"])
        self._body = answer["Body"]

    def _get(self, **kw: Any) -> Any:
        s = self._s
        return s._call(
            f"read {self._key}", s.client.get_object, Bucket=s.bucket, Key=self._full, **kw
        )

    def readable(self) -> bool:
        return True

    def readinto(self, b: Any) -> int:
        if self._pos >= self._length:
            return 0
        options = self._s.options
        started = time.monotonic()
        for attempt in range(options.attempts):
            try:
                data = self._body.read(len(b))
                break
            except Exception as e:
                # Resuming stops after the attempts, or once the time budget is spent.
                spent = time.monotonic() - started >= options.time_budget
                if not is_transient(e) or attempt + 1 == options.attempts or spent:
                    if isinstance(e, MonctlError):
                        raise
                    raise self._s._translate(e, f"read {self._key}", attempt + 1) from None
                self._body.close()
                self._body = self._get(Range=f"bytes={self._pos}-", IfMatch=self._etag)["Body"]
        if not data:
            raise StorageError(
                f"{self._key} in {self._s.location} ended after {self._pos} of {self._length} bytes"
            )
        n = len(data)
        b[:n] = data
        self._pos += n
        return n

    def close(self) -> None:
        if not self.closed:
            try:
                self._body.close()
            finally:
                super().close()
