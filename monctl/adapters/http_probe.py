"""HTTP for health probes (httpx, async): many GETs in flight at once on one client,
where no answer is an answer.

``ProbeClient.get`` never raises for what the network does: a refused connection,
a DNS failure or a timeout comes back as ``NoAnswer`` with the reason in words
(secrets masked), for the caller to record as "down". Redirects are never followed:
a login page or a wrong route prefix must not read as healthy.
"""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from types import TracebackType

import httpx

from monctl.redaction import redact

# Bodies are read for their first words and a few metrics: a server that
# streams without end must not fill the memory of a health check.
MAX_BODY = 4 * 1024 * 1024


@dataclass(frozen=True)
class Reply:
    """What a server answered (any status), its body cut at ``MAX_BODY``."""

    status: int
    text: str
    headers: Mapping[str, str]


class NoAnswer(Exception):
    """No answer came: ``why`` in words (secrets masked)."""

    def __init__(self, why: str) -> None:
        super().__init__(why)
        self.why = why


class ProbeClient:
    """One client for a round of probes, used as ``async with``.

    The pool is wide enough for every probe of every service to be in flight at once,
    and keeps no connection (each probe a fresh one, as a monitor would see it).
    ``tls``: load the CA bundle (~0.3 s): only an https URL needs it."""

    def __init__(self, tls: bool) -> None:
        limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
        self._client = httpx.AsyncClient(follow_redirects=False, limits=limits, verify=tls)

    async def __aenter__(self) -> ProbeClient:
        await self._client.__aenter__()
        return self

    async def __aexit__(
        self,
        kind: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        await self._client.__aexit__(kind, exc, tb)

    async def get(self, url: str, timeout: float, auth: tuple[str, str] | None) -> Reply:
        """GET ``url`` (basic ``auth`` when given) within ``timeout`` seconds in all.

        httpx's timeout bounds each phase (connect, each read); ``wait_for`` bounds the
        whole request, so a server that trickles bytes cannot hold the caller up."""
        try:
            return await asyncio.wait_for(self._get(url, timeout, auth), timeout)
        except TimeoutError:
            raise NoAnswer(f"timed out after {timeout:g}s") from None
        except httpx.HTTPError as exc:
            raise NoAnswer(_why(exc, timeout)) from None

    async def _get(self, url: str, timeout: float, auth: tuple[str, str] | None) -> Reply:
        async with self._client.stream("GET", url, timeout=timeout, auth=auth) as response:
            body = bytearray()
            async for chunk in response.aiter_bytes():
                body += chunk
                if len(body) > MAX_BODY:
                    break
            encoding = response.charset_encoding or "utf-8"
            text = bytes(body[:MAX_BODY]).decode(encoding, "replace")
            return Reply(response.status_code, text, response.headers)


def _causes(exc: BaseException) -> Iterator[BaseException]:
    """``exc`` and what caused it, groups opened (bounded: a chain can be a loop)."""
    todo: list[BaseException] = [exc]
    seen: set[int] = set()
    while todo and len(seen) < 50:
        current = todo.pop()
        if id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [e for e in (current.__cause__, current.__context__) if e is not None]
        if isinstance(current, BaseExceptionGroup):
            todo += current.exceptions


def _why(exc: httpx.HTTPError, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    text = str(exc)
    lowered = text.lower()
    # anyio says "All connection attempts failed" and keeps the OS's reason as the cause.
    causes = list(_causes(exc))
    if "refused" in lowered or any(isinstance(e, ConnectionRefusedError) for e in causes):
        return "connection refused"
    if any(
        s in lowered for s in ("name or service not known", "nodename nor servname", "getaddrinfo")
    ) or any(isinstance(e, socket.gaierror) for e in causes):
        return "DNS lookup failed"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"connection dropped ({redact(text) or 'no response'})"
    return redact(text) or type(exc).__name__
