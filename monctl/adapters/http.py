"""HTTP to the stack's services (httpx).

``call`` is for one-off requests by operations (reload, snapshot, flush):
connection failures and timeouts become OperationFailed naming the service
and URL. Health probes use their own async client (monctl/health/probes.py)
because there a refused connection is a result ("down"), not an error.
"""

from __future__ import annotations

from typing import Any

import httpx

from monctl.errors import OperationFailed
from monctl.redaction import redact

DEFAULT_TIMEOUT = 10.0


def call(
    method: str,
    url: str,
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    auth: tuple[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; return the response whatever its status.

    Raise OperationFailed (saying ``what`` was being done) when no response came.
    """
    try:
        return httpx.request(method, url, timeout=timeout, auth=auth, **kwargs)
    except httpx.TimeoutException:
        raise OperationFailed(f"{what}: {url} did not answer within {timeout:.0f}s") from None
    except httpx.HTTPError as exc:
        raise OperationFailed(
            f"{what}: cannot reach {url} ({redact(str(exc)) or type(exc).__name__})",
            hint="is the service running? `monctl status` shows where it listens",
        ) from None


def body_excerpt(response: httpx.Response, limit: int = 300) -> str:
    """The start of a response body, secrets masked, for a message."""
    text = response.text.strip().replace("\n", " ")
    return redact(text[:limit] + ("…" if len(text) > limit else ""))
