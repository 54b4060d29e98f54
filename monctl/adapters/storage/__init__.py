"""Backup destinations: a local directory or an S3 bucket behind one small interface.

Keys are relative POSIX paths ("20261126T020000Z/prometheus.tar.zst"), never
absolute, never containing ``..``; both implementations reject anything else
with StorageError. Every failure of the destination (unreachable endpoint,
refused credentials, missing bucket or directory, missing key) is raised as
``monctl.errors.StorageError`` with a message naming ``location`` — never a
secret key.

``open_storage`` picks the implementation from the destination string. The S3
module (and boto3, the optional extra ``monctl[s3]``) is imported only when an
``s3://`` destination is opened.
"""

from __future__ import annotations

import builtins
import dataclasses
import math
import re
from collections.abc import Callable, Iterable, Sequence
from contextlib import AbstractContextManager
from dataclasses import dataclass
from datetime import timedelta
from typing import Any, BinaryIO, Protocol

from monctl.envfile import seconds as seconds_setting
from monctl.errors import StorageError

MiB = 1024 * 1024

# The time limits of every S3 call, and the settings (environment, then .env) that
# override them: S3Options field -> (setting, default seconds).
TIME_SETTINGS = {
    "time_budget": ("MONCTL_S3_TIMEOUT", 60.0),
    "connect_timeout": ("MONCTL_S3_CONNECT_TIMEOUT", 10.0),
    "read_timeout": ("MONCTL_S3_READ_TIMEOUT", 30.0),
}
MAX_SECONDS = 86400.0


@dataclass(frozen=True)
class S3Options:
    """How monctl talks to S3 (and S3-compatible stores such as MinIO).

    ``sse``: server-side encryption, "AES256" or "aws:kms" (with ``kms_key_id``,
    or the bucket's default KMS key). ``storage_class``: e.g. "STANDARD_IA".
    ``part_size``: fixed multipart part size in bytes (>= 5 MiB), or None to
    choose it from the size hint and grow it as parts accumulate (see
    ``monctl.adapters.storage.s3_upload.part_size_for``). ``max_parts``: the provider's
    part-count limit (10,000 on AWS; some stores allow fewer).
    ``endpoint_url``: overrides AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, which
    boto3 honours by itself. ``attempts``/``backoff``/``backoff_max``: the
    per-request retry policy for transient errors (connection errors, 5xx,
    throttling); tests make them small. ``min_part_size`` exists for tests that
    run against a store accepting smaller parts; AWS requires 5 MiB.

    Time limits (``TIME_SETTINGS``; ``from_settings`` reads them): a request
    fails after ``connect_timeout`` seconds without a connection or
    ``read_timeout`` seconds without a byte; a failed call is retried only
    while less than ``time_budget`` seconds have passed since it began, so
    a call that gets no answer gives up after at most about ``time_budget``
    (plus the request in flight, itself bounded by the two timeouts). A
    transfer that keeps moving is never cut: the timeouts count silence.
    """

    sse: str | None = None
    kms_key_id: str | None = None
    storage_class: str | None = None
    part_size: int | None = None
    max_parts: int = 10_000
    endpoint_url: str | None = None
    region: str | None = None
    attempts: int = 5
    backoff: float = 0.5
    backoff_max: float = 20.0
    connect_timeout: float = TIME_SETTINGS["connect_timeout"][1]
    read_timeout: float = TIME_SETTINGS["read_timeout"][1]
    time_budget: float = TIME_SETTINGS["time_budget"][1]
    min_part_size: int = 8 * MiB

    @classmethod
    def from_settings(cls, setting: Callable[[str, str], str], **kw: Any) -> S3Options:
        """Options with the time limits of ``setting`` (e.g. ``Project.setting``:
        the environment, then .env); ConfigError naming a setting that is not a
        number of seconds."""
        limits: dict[str, Any] = {}
        for field_name, (var, default) in TIME_SETTINGS.items():
            limits[field_name] = seconds_setting(var, setting(var, ""), default, MAX_SECONDS)
        return dataclasses.replace(cls(**kw), **limits)

    def __post_init__(self) -> None:
        if self.sse not in (None, "AES256", "aws:kms"):
            raise StorageError(
                f"unknown server-side encryption {self.sse!r}", hint='use "AES256" or "aws:kms"'
            )
        if self.kms_key_id and self.sse != "aws:kms":
            raise StorageError("a KMS key id needs server-side encryption aws:kms")
        if self.max_parts < 1 or self.attempts < 1:
            raise StorageError("max_parts and attempts must be at least 1")
        if self.part_size is not None and self.part_size < 1:
            raise StorageError("part_size must be positive")
        for seconds in (self.connect_timeout, self.read_timeout, self.time_budget):
            if not (math.isfinite(seconds) and 0 < seconds <= MAX_SECONDS):
                raise StorageError("S3 time limits must be more than 0 and at most a day")


@dataclass(frozen=True)
class ObjectInfo:
    key: str  # relative to the destination root
    size: int
    modified: float | None = None  # Unix time of the last write, when the listing tells


class Spool(Protocol):
    """Bytes on their way to an object whose key is not known yet (see ``Staging``)."""

    size: int

    def write(self, data: bytes | bytearray | memoryview) -> None: ...

    def write_all(self, pieces: Sequence[bytes | bytearray | memoryview]) -> None:
        """``write`` each piece, in order."""

    def done(self) -> None:
        """The last byte is written (a local spool starts its writeback)."""


class Staging(Protocol):
    """A batch of objects written before their keys are known: content addresses.

    ``spool()`` starts one; the caller writes its bytes, then ``keep``s it under
    its key (``replace``: overwrite an object already there, else the existing
    one, which holds the same bytes, stays) or ``drop``s it. ``commit()`` makes
    every kept object durable and present; until then a kept object may not be
    visible (local) or may already be (S3). Leaving ``Storage.staging``'s block
    drops whatever was not committed; objects already uploaded stay for the
    repository's garbage collection (another writer may own the same key).
    Details: ``monctl.adapters.storage.staging``.
    """

    def spool(self) -> Spool: ...

    def keep(self, spool: Spool, key: str, *, replace: bool = False) -> None: ...

    def drop(self, spool: Spool) -> None: ...

    def commit(self) -> None: ...


class Storage(Protocol):
    """One backup destination. All keys are relative to its root."""

    location: str
    """For display ("/srv/backups", "s3://bucket/prefix"); never contains credentials."""

    def put(self, key: str, chunks: Iterable[bytes], *, size_hint: int | None = None) -> int:
        """Stream ``chunks`` to ``key`` and return the number of bytes written.

        Atomic: afterwards either the complete object exists at ``key`` or
        nothing new does — also when ``chunks`` raises (any exception, including
        KeyboardInterrupt, which is re-raised unchanged after the clean-up).
        Local: written to "<key>.partial-<random>", fsynced, then os.replace'd.
        S3: one PUT when the stream fits in one part, else a multipart upload
        that is aborted on any failure. Memory use is bounded by one part; the
        object is never staged whole. ``size_hint`` (expected bytes, may be
        wrong) lets S3 choose a part size up front. An existing object at
        ``key`` is replaced. Raise StorageError when the destination fails.
        """
        ...

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        """A context manager yielding a readable, non-seekable binary stream of ``key``.

        ``read(n)`` returns at most n bytes, b"" at the end. Raise StorageError
        if the key does not exist or the destination fails (also while reading).
        """
        ...

    def list(self, prefix: str = "") -> builtins.list[str]:
        """Sorted keys of complete objects whose key starts with ``prefix``.

        Partial objects (local "*.partial-*" files) are not listed. Raise
        StorageError if the destination itself (directory, bucket) is missing.
        """
        ...

    def list_objects(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        """Like ``list`` with sizes, in one listing (S3: no HEAD per key)."""
        ...

    def children(self, prefix: str = "") -> builtins.list[str]:
        """Sorted names of the immediate "directories" under ``prefix`` (which is
        "" or ends with "/"), without the trailing "/": S3 CommonPrefixes with
        delimiter "/", local subdirectories. Cheap: does not walk below them.
        Raise StorageError if the destination itself is missing."""
        ...

    def delete(self, keys: Iterable[str]) -> None:
        """Delete ``keys``; keys that do not exist are ignored. Local: directories
        left empty (below the root) are removed too. Raise StorageError on failure."""
        ...

    def delete_prefix(self, prefix: str) -> int:
        """Delete everything under ``prefix`` (which must end with "/"): objects,
        partial objects and (S3) unfinished multipart uploads. Return the number
        of objects deleted. Used by prune for one backup id at a time."""
        ...

    def clean_partials(
        self,
        prefix: str = "",
        older_than: timedelta = timedelta(hours=1),
        accept: Callable[[str], bool] | None = None,
    ) -> builtins.list[str]:
        """Remove leftovers of uploads that never finished (a killed process, an
        endpoint that stayed down through the abort): local "*.partial-*" files,
        S3 unfinished multipart uploads — those whose key starts with ``prefix``,
        passes ``accept``, and were started more than ``older_than`` ago. Return
        the keys cleaned. The default age spares an upload another host may be
        running right now."""
        ...

    def exists(self, key: str) -> bool:
        """True when a complete object exists at ``key``."""
        ...

    def size(self, key: str) -> int:
        """The object's size in bytes; StorageError if it does not exist."""
        ...

    def staging(self, prefix: str) -> AbstractContextManager[Staging]:
        """A batch for content-addressed objects (``Staging``); its spools live under
        ``prefix`` where the implementation keeps them at the destination (local
        partial files, cleaned by ``clean_partials`` if a crash leaves them)."""
        ...

    def check_writable(self) -> None:
        """Fail early, before any container is paused: raise StorageError unless
        the destination exists (local: is created) and accepts writes (local:
        a probe file; S3: the bucket answers with these credentials)."""
        ...


_KEY_PART = re.compile(r"^[^/\x00]+$")


def check_key(key: str) -> str:
    """Return ``key`` if it is a safe relative key; raise StorageError otherwise."""
    parts = key.split("/")
    if (
        not key
        or key.startswith("/")
        or any(p in ("", ".", "..") or not _KEY_PART.match(p) for p in parts)
    ):
        raise StorageError(f"invalid storage key {key!r}")
    return key


def open_storage(dest: str, *, s3_options: S3Options | None = None) -> Storage:
    """The Storage for ``dest``: "s3://bucket[/prefix]" or a local directory path.

    Opening does not touch the destination (no network, no mkdir); the first
    operation does. Raise StorageError for a malformed S3 URL.
    """
    if dest.startswith("s3://"):
        import importlib.util

        if importlib.util.find_spec("boto3") is None:
            from monctl.errors import UsageError

            raise UsageError(
                "an s3:// destination needs the S3 extra, which is not installed",
                hint="pip install 'monctl[s3]'",
            )
        from monctl.adapters.storage.s3 import S3Storage

        return S3Storage.from_url(dest, s3_options or S3Options())
    if "://" in dest:
        raise StorageError(
            f"unsupported backup destination {dest!r}",
            hint="use a local directory or s3://bucket/prefix",
        )
    from monctl.adapters.storage.local import LocalStorage

    return LocalStorage(dest)
