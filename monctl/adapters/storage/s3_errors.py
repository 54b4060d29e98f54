"""S3 failures: which are worth retrying, how to retry them, and what to tell the user.

botocore's own retries are switched off (see ``S3Storage.client``); every
request goes through ``call_with_retries`` instead, which retries transient
errors only (connection errors, timeouts, 5xx, throttling) with exponential
backoff and turns whatever is left into a StorageError through ``translate``:
what failed, where, and what to try. The streaming reader (``s3_reader``)
uses the same classification when a connection drops mid-object.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from typing import TypeVar

from monctl.errors import MonctlError, StorageError

log = logging.getLogger(__name__)
T = TypeVar("T")

_CREDENTIAL_CODES = {
    "InvalidAccessKeyId",
    "SignatureDoesNotMatch",
    "ExpiredToken",
    "InvalidToken",
    "InvalidClientTokenId",
    "TokenRefreshRequired",
    "AuthorizationHeaderMalformed",
}
_THROTTLE_CODES = {
    "Throttling",
    "ThrottlingException",
    "SlowDown",
    "RequestTimeout",
    "RequestLimitExceeded",
    "InternalError",
    "ServiceUnavailable",
}


def error_code(e: Exception) -> tuple[str, int]:
    """(S3 error code, HTTP status) of a botocore ClientError; ("", 0) when absent."""
    response = getattr(e, "response", None) or {}
    code = str(response.get("Error", {}).get("Code", ""))
    status = int(response.get("ResponseMetadata", {}).get("HTTPStatusCode", 0) or 0)
    return code, status


def is_transient(e: BaseException) -> bool:
    """True for failures that may pass on a retry: connection trouble, 5xx, 429, throttling."""
    from botocore import exceptions as bx

    if isinstance(
        e, bx.ConnectionError | bx.HTTPClientError | bx.IncompleteReadError | ConnectionError
    ):
        return True
    if isinstance(e, bx.ClientError):
        code, status = error_code(e)
        return status >= 500 or status == 429 or code in _THROTTLE_CODES
    return False


def translate(
    e: Exception,
    what: str,
    *,
    bucket: str,
    location: str,
    endpoint: str | None,
    attempts: int,
) -> StorageError:
    """A StorageError for a botocore failure while trying to ``what`` at ``location``."""
    from botocore import exceptions as bx

    where = location
    if isinstance(e, bx.NoCredentialsError | bx.PartialCredentialsError):
        return StorageError(
            f"no AWS credentials found for {where}",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role",
        )
    if isinstance(e, bx.ClientError):
        code, status = error_code(e)
        if code in _CREDENTIAL_CODES:
            return StorageError(
                f"S3 refused the credentials ({code}) while trying to {what} at {where}",
                hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile) "
                "and the endpoint",
            )
        if code in ("AccessDenied", "403") or status == 403:
            return StorageError(
                f"S3 denied access (AccessDenied) to {what} at {where}",
                hint="the credentials work but lack permission; check the bucket policy",
            )
        if code == "NoSuchBucket" or (code == "404" and what == "reach the bucket"):
            return StorageError(
                f"the bucket {bucket!r} does not exist ({endpoint or 'AWS'})",
                hint="create it, or fix the destination",
            )
        if code in ("NoSuchKey", "404", "NotFound"):
            return StorageError(f"cannot {what}: no such object in {where}")
        if code == "NoSuchUpload":
            return StorageError(f"cannot {what}: the upload no longer exists in {where}")
        return StorageError(f"S3 failed to {what} at {where}: {code or status}")
    if isinstance(e, bx.BotoCoreError | ConnectionError):
        shown = endpoint or "the AWS S3 endpoint"
        return StorageError(
            f"cannot reach S3 ({shown}) to {what} at {where}: "
            f"{type(e).__name__} after {attempts} attempt(s)",
            hint="check the network, the endpoint (AWS_ENDPOINT_URL) and that the store "
            "is running; then run again",
        )
    return StorageError(f"S3 failed to {what} at {where}: {type(e).__name__}")


def call_with_retries(
    what: str,
    fn: Callable[[], T],
    *,
    attempts: int,
    backoff: float,
    backoff_max: float,
    translate: Callable[[Exception, str], StorageError],
) -> T:
    """``fn()``, retried up to ``attempts`` times on transient errors.

    Raise the StorageError ``translate`` makes of a botocore (or connection)
    failure that is left; a MonctlError or any other exception passes unchanged.
    """
    import tenacity

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts),
        wait=tenacity.wait_exponential(multiplier=backoff, max=backoff_max),
        retry=tenacity.retry_if_exception(is_transient),
        reraise=True,
        before_sleep=lambda rs: log.debug("S3 %s failed, retrying: %s", what, rs.outcome),
    )
    try:
        return retrying(fn)
    except MonctlError:
        raise
    except Exception as e:
        from botocore import exceptions as bx

        if isinstance(e, bx.BotoCoreError | bx.ClientError | ConnectionError):
            raise translate(e, what) from None
        raise
