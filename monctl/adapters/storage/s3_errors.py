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
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, TypeVar

from monctl.errors import MonctlError, StorageError

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage import S3Options

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


_BUCKET_HINT = (
    "S3 bucket names are 3-63 characters: lowercase letters, digits, dots and hyphens, "
    "starting and ending with a letter or digit"
)


def translate(
    e: Exception,
    what: str,
    *,
    bucket: str,
    location: str,
    endpoint: str | None,
    attempts: int,
    limits: S3Options | None = None,
) -> StorageError:
    """A StorageError for a botocore failure while trying to ``what`` at ``location``,
    after ``attempts`` tries; ``limits`` gives the time limits a timeout names."""
    from botocore import exceptions as bx

    where = location
    if isinstance(e, bx.NoCredentialsError | bx.PartialCredentialsError):
        return StorageError(
            f"no AWS credentials found for {where}",
            hint="set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, AWS_PROFILE, or a role",
        )
    if isinstance(e, bx.ParamValidationError):
        # botocore checks requests before sending them: nothing was on the network.
        if "bucket" in str(e).lower():
            return StorageError(f"invalid bucket name {bucket!r} in {where}", hint=_BUCKET_HINT)
        first = str(e).strip().splitlines()[-1] if str(e).strip() else type(e).__name__
        return StorageError(f"invalid S3 request to {what} at {where}: {first}")
    if isinstance(e, bx.ClientError):
        code, status = error_code(e)
        if code in _CREDENTIAL_CODES:
            return StorageError(
                f"S3 refused the credentials ({code}) while trying to {what} at {where}",
                hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile) "
                "and the endpoint",
            )
        if code == "AccessDenied":
            return StorageError(
                f"S3 denied access (AccessDenied) to {what} at {where}",
                hint="the credentials work but lack permission; check the bucket policy",
            )
        if status == 403 or code in ("403", "Forbidden"):
            # A HEAD answer has no body: S3 cannot say whether the key is unknown,
            # the signature wrong, the token expired, or the policy says no.
            return StorageError(
                f"S3 answered 403 without a reason to {what} at {where}: "
                "access denied, or the credentials are wrong",
                hint="check AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY (or the profile, or an "
                "expired AWS_SESSION_TOKEN) and the bucket policy; `monctl backup list "
                "--from DEST` asks S3 in a way that names the reason",
            )
        if code == "InvalidBucketName":
            return StorageError(f"invalid bucket name {bucket!r} in {where}", hint=_BUCKET_HINT)
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
    shown = endpoint or "the AWS S3 endpoint"
    gave_up = f"gave up after {attempts} attempt(s)"
    if limits is not None:
        gave_up += f" (MONCTL_S3_TIMEOUT: {limits.time_budget:g} s for each call)"
    if isinstance(e, bx.ReadTimeoutError) and limits is not None:
        return StorageError(
            f"S3 ({shown}) did not answer within {limits.read_timeout:g} s "
            f"(MONCTL_S3_READ_TIMEOUT) to {what} at {where}; {gave_up}",
            hint="check that the endpoint (AWS_ENDPOINT_URL) is an S3 service that is up; "
            "for a slow one raise MONCTL_S3_READ_TIMEOUT and MONCTL_S3_TIMEOUT",
        )
    if isinstance(e, bx.ConnectTimeoutError) and limits is not None:
        return StorageError(
            f"could not connect to S3 ({shown}) within {limits.connect_timeout:g} s "
            f"(MONCTL_S3_CONNECT_TIMEOUT) to {what} at {where}; {gave_up}",
            hint="check the network and the endpoint (AWS_ENDPOINT_URL); for a slow network "
            "raise MONCTL_S3_CONNECT_TIMEOUT",
        )
    if isinstance(e, bx.BotoCoreError | ConnectionError):
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
    translate: Callable[[Exception, str, int], StorageError],
    budget: float | None = None,
) -> T:
    """``fn()``, retried up to ``attempts`` times on transient errors, and no retry
    (nor its backoff) starting once ``budget`` seconds have passed since the first try.

    Raise the StorageError ``translate`` makes of a botocore (or connection)
    failure that is left (given the number of attempts made); a MonctlError or
    any other exception passes unchanged.
    """
    import tenacity

    started = time.monotonic()

    class OutOfTime(tenacity.stop.stop_base):
        """Stop when the retry, after its backoff, would begin past the budget."""

        def __call__(self, state: tenacity.RetryCallState) -> bool:
            if budget is None:
                return False
            waited = state.upcoming_sleep or 0.0
            return time.monotonic() - started + waited >= budget

    retrying = tenacity.Retrying(
        stop=tenacity.stop_after_attempt(attempts) | OutOfTime(),
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
            made = int(retrying.statistics.get("attempt_number", 1))
            raise translate(e, what, made) from None
        raise
