"""An S3 bucket (AWS or an S3-compatible store) as a backup destination.

boto3 is imported only when a client is first needed. Credentials come from
the standard AWS chain (environment, profile, instance role); the endpoint from
``S3Options.endpoint_url`` or AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL, which
boto3 honours itself. With a custom endpoint, path-style addressing is used
(what MinIO and most S3-compatible stores expect).

Retries: botocore's own retries are switched off and every request is retried
with tenacity on transient errors only (connection errors, timeouts, 5xx,
throttling), ``S3Options.attempts`` times with exponential backoff, then
reported as StorageError (``s3_errors``). A multipart upload keeps the current
part in memory so it can be re-sent. Reads stream through ``s3_reader``, which
resumes a dropped connection where it left off.

Writing (multipart uploads, part sizes) is in ``s3_upload``.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager
from datetime import UTC, datetime, timedelta
from typing import Any, BinaryIO, TypeVar

from monctl import redaction
from monctl.adapters.storage import ObjectInfo, S3Options, check_key, s3_errors, s3_upload
from monctl.adapters.storage.s3_reader import S3Reader, reading
from monctl.adapters.storage.staging import SpoolStaging, spool_staging
from monctl.errors import StorageError

T = TypeVar("T")


def _valid_key(key: str) -> bool:
    try:
        check_key(key)
    except StorageError:
        return False
    return True


class S3Storage:
    """Storage in ``s3://bucket/prefix``; see ``monctl.adapters.storage.Storage``."""

    def __init__(self, bucket: str, prefix: str, options: S3Options, client: Any = None) -> None:
        self.bucket = bucket
        self.prefix = prefix.strip("/") + "/" if prefix.strip("/") else ""
        self.options = options
        self.location = f"s3://{bucket}/{self.prefix}"
        self._client = client

    @classmethod
    def from_url(cls, url: str, options: S3Options) -> S3Storage:
        rest = url.removeprefix("s3://")
        bucket, _, prefix = rest.partition("/")
        if not bucket or "@" in bucket or ":" in bucket:
            raise StorageError(
                f"malformed S3 destination {url.split('@')[-1]!r}",
                hint="use s3://bucket/prefix; credentials come from the AWS environment",
            )
        if prefix.strip("/"):
            check_key(prefix.strip("/"))
        return cls(bucket, prefix, options)

    def __repr__(self) -> str:
        return f"S3Storage({self.location!r})"

    # -- plumbing -----------------------------------------------------------------

    @property
    def endpoint(self) -> str | None:
        return (
            self.options.endpoint_url
            or os.environ.get("AWS_ENDPOINT_URL_S3")
            or os.environ.get("AWS_ENDPOINT_URL")
        )

    @property
    def client(self) -> Any:
        if self._client is None:
            import boto3
            from botocore.config import Config

            session = boto3.session.Session(region_name=self.options.region)
            creds = session.get_credentials()
            if creds is not None:
                # Whatever boto3 found must never reach the output or a log.
                frozen = creds.get_frozen_credentials()
                redaction.register(frozen.secret_key or "")
                redaction.register(frozen.token or "")
            # No single request may outlast the whole call's time budget.
            budget = self.options.time_budget
            config = Config(
                retries={"total_max_attempts": 1, "mode": "standard"},
                connect_timeout=min(self.options.connect_timeout, budget),
                read_timeout=min(self.options.read_timeout, budget),
                s3={"addressing_style": "path"} if self.endpoint else {},
            )
            self._client = session.client("s3", endpoint_url=self.endpoint, config=config)
        return self._client

    def _full(self, key: str) -> str:
        return self.prefix + check_key(key)

    def _translate(self, e: Exception, what: str, attempts: int | None = None) -> StorageError:
        """A StorageError for a botocore failure: what failed, where, and what to try."""
        return s3_errors.translate(
            e,
            what,
            bucket=self.bucket,
            location=self.location,
            endpoint=self.endpoint,
            attempts=attempts or self.options.attempts,
            limits=self.options,
        )

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kw: Any) -> T:
        """``fn(*args, **kw)``, retried on transient errors, errors translated.

        ``_attempts`` in ``kw`` overrides the number of attempts (not passed on).
        """
        attempts = int(kw.pop("_attempts", 0))
        return s3_errors.call_with_retries(
            what,
            lambda: fn(*args, **kw),
            attempts=attempts or self.options.attempts,
            backoff=self.options.backoff,
            backoff_max=self.options.backoff_max,
            translate=self._translate,
            budget=self.options.time_budget,
        )

    def _extra(self) -> dict[str, str]:
        extra: dict[str, str] = {}
        if self.options.sse:
            extra["ServerSideEncryption"] = self.options.sse
        if self.options.kms_key_id:
            extra["SSEKMSKeyId"] = self.options.kms_key_id
        if self.options.storage_class:
            extra["StorageClass"] = self.options.storage_class
        return extra

    # -- writing ----------------------------------------------------------------

    def put(self, key: str, chunks: Iterable[bytes], *, size_hint: int | None = None) -> int:
        return s3_upload.put(self, key, chunks, size_hint)

    # -- reading ----------------------------------------------------------------

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        # The first GET happens here, so a missing key fails at open, not at read.
        return reading(S3Reader(self, key, self._full(key)))

    def _paginate(self, what: str, method: str, **kw: Any) -> Iterator[dict[str, Any]]:
        token: dict[str, Any] = {}
        while True:
            page = self._call(what, getattr(self.client, method), Bucket=self.bucket, **kw, **token)
            yield page
            if method == "list_objects_v2":
                if not page.get("IsTruncated"):
                    return
                token = {"ContinuationToken": page["NextContinuationToken"]}
            else:  # list_multipart_uploads
                if not page.get("IsTruncated"):
                    return
                token = {
                    "KeyMarker": page["NextKeyMarker"],
                    "UploadIdMarker": page["NextUploadIdMarker"],
                }

    def list_objects(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        out = []
        for page in self._paginate("list", "list_objects_v2", Prefix=self.prefix + prefix):
            for obj in page.get("Contents", []):
                key = obj["Key"][len(self.prefix) :]
                # Keys that are no object monctl could have written — an S3 console's
                # "folder" (an empty object "prefix/ID/"), "a//b", ".." — are not ours.
                if _valid_key(key):
                    modified = obj.get("LastModified")
                    stamp = modified.timestamp() if isinstance(modified, datetime) else None
                    out.append(ObjectInfo(key, int(obj["Size"]), stamp))
        return sorted(out, key=lambda o: o.key)

    def list(self, prefix: str = "") -> builtins.list[str]:
        return [o.key for o in self.list_objects(prefix)]

    def children(self, prefix: str = "") -> builtins.list[str]:
        base = self.prefix + prefix
        names = []
        for page in self._paginate("list", "list_objects_v2", Prefix=base, Delimiter="/"):
            for cp in page.get("CommonPrefixes", []):
                names.append(cp["Prefix"][len(base) :].rstrip("/"))
        return sorted(names)

    def exists(self, key: str) -> bool:
        from botocore.exceptions import ClientError

        def head() -> bool:
            try:
                self.client.head_object(Bucket=self.bucket, Key=self._full(key))
            except ClientError as e:
                if s3_errors.error_code(e)[1] == 404:
                    return False
                raise
            return True

        return self._call(f"read {key}", head)

    def size(self, key: str) -> int:
        head = self._call(
            f"read {key}", self.client.head_object, Bucket=self.bucket, Key=self._full(key)
        )
        return int(head["ContentLength"])

    def staging(self, prefix: str) -> AbstractContextManager[SpoolStaging]:
        # Keys are known only after the bytes: spooled here, then one put() each.
        return spool_staging(self)

    def check_writable(self) -> None:
        # One small listing checks the endpoint, the credentials and the bucket
        # without writing anything (some backup buckets deny deletes, so a probe
        # object could not be removed). Unlike HeadBucket, a refusal carries its
        # error code (InvalidAccessKeyId, NoSuchBucket), so the message can be clear.
        self._call(
            "reach the bucket",
            self.client.list_objects_v2,
            Bucket=self.bucket,
            Prefix=self.prefix,
            MaxKeys=1,
        )

    # -- deleting ---------------------------------------------------------------

    def delete(self, keys: Iterable[str]) -> None:
        full = [self._full(k) for k in keys]
        for i in range(0, len(full), 1000):  # DeleteObjects takes at most 1000 keys
            batch = [{"Key": k} for k in full[i : i + 1000]]
            answer = self._call(
                "delete",
                self.client.delete_objects,
                Bucket=self.bucket,
                Delete={"Objects": batch, "Quiet": True},
            )
            errors = answer.get("Errors") or []
            if errors:
                first = errors[0]
                raise StorageError(
                    f"S3 refused to delete {len(errors)} object(s) in {self.location}, e.g. "
                    f"{first.get('Key', '')[len(self.prefix) :]} ({first.get('Code')})"
                )

    def _uploads(self, prefix: str) -> Iterator[dict[str, Any]]:
        for page in self._paginate(
            "list unfinished uploads", "list_multipart_uploads", Prefix=self.prefix + prefix
        ):
            yield from page.get("Uploads", [])

    def _abort(self, upload: dict[str, Any]) -> None:
        self._call(
            "abort an unfinished upload",
            self.client.abort_multipart_upload,
            Bucket=self.bucket,
            Key=upload["Key"],
            UploadId=upload["UploadId"],
        )

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.endswith("/"):
            raise StorageError(f"delete_prefix needs a directory prefix ending in '/': {prefix!r}")
        check_key(prefix.rstrip("/"))
        for upload in list(self._uploads(prefix)):
            self._abort(upload)
        keys = self.list(prefix)
        # The manifest first: a deletion cut short leaves an incomplete backup,
        # never one that looks complete with archives missing; the next prune
        # finishes it.
        first = [k for k in keys if k.endswith("/manifest.json")]
        self.delete(first)
        self.delete([k for k in keys if k not in first])
        # A console's "folder" object of this very backup (prefix/ID/) would keep
        # the ID listed, empty, forever: it goes last (not a key monctl lists).
        self._call(
            "delete",
            self.client.delete_objects,
            Bucket=self.bucket,
            Delete={"Objects": [{"Key": self.prefix + prefix}], "Quiet": True},
        )
        return len(keys)

    def clean_partials(
        self,
        prefix: str = "",
        older_than: timedelta = timedelta(hours=1),
        accept: Callable[[str], bool] | None = None,
    ) -> builtins.list[str]:
        cutoff = datetime.now(UTC) - older_than
        cleaned = []
        for upload in list(self._uploads(prefix)):
            key = upload["Key"][len(self.prefix) :]
            initiated = upload.get("Initiated")
            if isinstance(initiated, datetime) and initiated > cutoff:
                continue
            if accept is not None and not accept(key):
                continue
            self._abort(upload)
            cleaned.append(key)
        return cleaned
