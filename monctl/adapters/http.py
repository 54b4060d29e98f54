"""HTTP to the stack's services (httpx).

``call`` is for one-off requests by operations (reload, snapshot, flush):
connection failures and timeouts become OperationFailed naming the service
and URL. Health probes use their own async client (``http_probe.py``) because
there a refused connection is a result ("down"), not an error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import httpx

from monctl.errors import OperationFailed
from monctl.redaction import redact

DEFAULT_TIMEOUT = 10.0

# What the functions here return, for annotations outside the adapters (which
# import no httpx of their own).
Response = httpx.Response


def _verify(url: str) -> bool:
    """Whether to verify TLS: yes, unless ``url`` is plain http. httpx builds a TLS
    context (the CA bundle loaded) for every client, even one that will speak no TLS:
    ~16 ms a request, twice in every backup of Prometheus. Only for requests that follow
    no redirect (``call``, ``get``): a plain http URL then never reaches https."""
    return not url.lower().startswith("http://")


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
        return httpx.request(method, url, timeout=timeout, auth=auth, verify=_verify(url), **kwargs)
    except httpx.TimeoutException:
        raise OperationFailed(f"{what}: {url} did not answer within {timeout:.0f}s") from None
    except httpx.HTTPError as exc:
        raise OperationFailed(
            f"{what}: cannot reach {url} ({redact(str(exc)) or type(exc).__name__})",
            hint="is the service running? `monctl status` shows where it listens",
        ) from None


@dataclass(frozen=True)
class Answer:
    """What a server outside the stack answered (a heartbeat's check, a drill record)."""

    status: int
    text: str

    @property
    def ok(self) -> bool:
        return 200 <= self.status < 300


class NoAnswer(Exception):
    """No answer came: ``why`` in words (secrets masked); ``final`` when trying again
    cannot help (the URL itself cannot be used)."""

    def __init__(self, why: str, final: bool = False) -> None:
        super().__init__(why)
        self.why = why
        self.final = final


def plain(
    method: str,
    url: str,
    *,
    content: bytes | None,
    headers: dict[str, str],
    timeout: float,
) -> Answer:
    """One request to a server outside the stack, redirects followed; raise NoAnswer
    when none came (timed out, refused, TLS ...), whatever the status otherwise."""
    try:
        response = httpx.request(
            method, url, content=content, headers=headers, timeout=timeout, follow_redirects=True
        )
    except httpx.TimeoutException:
        raise NoAnswer("timed out") from None
    except httpx.HTTPError as exc:
        raise NoAnswer(redact(str(exc)) or type(exc).__name__) from None
    except (httpx.InvalidURL, ValueError):
        raise NoAnswer("the URL cannot be used", final=True) from None
    return Answer(response.status_code, response.text)


def get(
    url: str,
    *,
    params: Any = None,
    auth: tuple[str, str] | None = None,
    timeout: float = DEFAULT_TIMEOUT,
) -> httpx.Response:
    """One GET whatever its status; raise NoAnswer (the reason, secrets masked) when
    no response came."""
    try:
        return httpx.get(url, params=params, auth=auth, timeout=timeout, verify=_verify(url))
    except httpx.HTTPError as exc:
        raise NoAnswer(redact(str(exc)) or type(exc).__name__) from None


def body_excerpt(response: httpx.Response, limit: int = 300) -> str:
    """The start of a response body, secrets masked, for a message."""
    text = response.text.strip().replace("\n", " ")
    return redact(text[:limit] + ("…" if len(text) > limit else ""))
