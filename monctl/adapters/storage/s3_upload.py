"""Writing to S3: one PUT for what fits in a part, else a multipart upload that is
aborted on any failure (the destination, the data source, Ctrl-C), so S3 holds
neither a partial object nor billable orphan parts.

Part sizes (``part_size_for``): the stream length is not known in advance, so
parts start at a base size — ``S3Options.part_size`` if set, else the larger
of ``min_part_size`` (8 MiB) and size_hint / max_parts — and double every
max_parts/8 parts. With the defaults the first 10 GiB go in 8 MiB parts and
10,000 parts reach ~2.4 TiB (about 32 x base x max_parts), while memory stays
at one part (twice while it is sent) for every ordinary volume. The current
part is kept in memory so it can be re-sent.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from monctl.adapters.storage import MiB, S3Options
from monctl.errors import MonctlError, StorageError

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage.s3 import S3Storage

log = logging.getLogger(__name__)

MAX_PART_SIZE = 5 * 1024 * MiB  # S3's limit for one part


def part_size_for(number: int, base: int, max_parts: int) -> int:
    """The size of part ``number`` (1-based): ``base`` doubled every max_parts/8 parts."""
    stage = max(1, max_parts // 8)
    return int(min(MAX_PART_SIZE, base * 2 ** ((number - 1) // stage)))


def base_part_size(options: S3Options, size_hint: int | None) -> int:
    if options.part_size is not None:
        return options.part_size
    base = options.min_part_size
    if size_hint:
        base = max(base, math.ceil(size_hint / options.max_parts / MiB) * MiB)
    return base


def put(s3: S3Storage, key: str, chunks: Iterable[bytes], size_hint: int | None) -> int:
    """Write ``chunks`` under ``key``: one PUT when they fit in a part, else a
    multipart upload, aborted on any failure."""
    full = s3._full(key)
    base = base_part_size(s3.options, size_hint)
    target = part_size_for(1, base, s3.options.max_parts)
    buf = bytearray()
    parts: list[dict[str, Any]] = []
    upload_id: str | None = None
    total = 0
    try:
        for chunk in chunks:
            buf += chunk
            total += len(chunk)
            while len(buf) >= target:
                if upload_id is None:
                    upload_id = s3._call(
                        f"start the upload of {key}",
                        s3.client.create_multipart_upload,
                        Bucket=s3.bucket,
                        Key=full,
                        **s3._extra(),
                    )["UploadId"]
                if len(parts) + 1 >= s3.options.max_parts:
                    raise StorageError(
                        f"{key} outgrew {s3.options.max_parts} parts",
                        hint="set a larger part size for this destination",
                    )
                with memoryview(buf) as view:
                    body = bytes(view[:target])  # the one copy, kept for retries
                del buf[:target]
                parts.append(_upload_part(s3, key, full, upload_id, len(parts) + 1, body))
                target = part_size_for(len(parts) + 1, base, s3.options.max_parts)
        if upload_id is None:
            # Fits in one part: a plain PUT is atomic by itself.
            s3._call(
                f"write {key}",
                s3.client.put_object,
                Bucket=s3.bucket,
                Key=full,
                Body=bytes(buf),
                **s3._extra(),
            )
            return total
        if buf:
            parts.append(_upload_part(s3, key, full, upload_id, len(parts) + 1, bytes(buf)))
        buf = bytearray()
        s3._call(
            f"complete the upload of {key}",
            s3.client.complete_multipart_upload,
            Bucket=s3.bucket,
            Key=full,
            UploadId=upload_id,
            MultipartUpload={"Parts": parts},
        )
        return total
    except BaseException as e:
        # Any failure — the destination, the data source, Ctrl-C — aborts the
        # upload so S3 holds neither an object nor billable orphan parts.
        if upload_id is not None:
            _abort_after(s3, e, key, full, upload_id)
        raise


def _upload_part(
    s3: S3Storage, key: str, full: str, upload_id: str, number: int, body: bytes
) -> Any:
    answer = s3._call(
        f"upload part {number} of {key}",
        s3.client.upload_part,
        Bucket=s3.bucket,
        Key=full,
        UploadId=upload_id,
        PartNumber=number,
        Body=body,
    )
    part = {"PartNumber": number, "ETag": answer["ETag"]}
    for name in ("ChecksumCRC32", "ChecksumCRC32C", "ChecksumSHA1", "ChecksumSHA256"):
        if answer.get(name):
            part[name] = answer[name]
    return part


def _abort_after(s3: S3Storage, cause: BaseException, key: str, full: str, upload_id: str) -> None:
    """Abort the upload; if even that fails, say so on the error being raised."""
    try:
        # More patient than a part: this call is what prevents orphan parts.
        s3._call(
            f"abort the upload of {key}",
            s3.client.abort_multipart_upload,
            Bucket=s3.bucket,
            Key=full,
            UploadId=upload_id,
            _attempts=s3.options.attempts + 3,
        )
    except (Exception, KeyboardInterrupt) as abort_error:
        note = (
            f"the unfinished multipart upload of {key} could not be aborted "
            f"({getattr(abort_error, 'message', type(abort_error).__name__)}); "
            "`monctl backup prune` or the next backup to this destination removes it"
        )
        log.warning(note)
        if isinstance(cause, MonctlError):
            cause.message = f"{cause.message}; {note}"
            cause.args = (cause.message,)
        else:
            cause.add_note(note)
