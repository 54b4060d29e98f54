"""The request behind every health probe: one GET, where no answer is an answer.

A probe never raises for what the network does: a refused connection, a DNS
failure or a timeout is recorded as ``Fetched.error`` ("down"), never skipped.
How an answer is judged belongs to the service's declaration
(``Probe.read``); ``interpret`` adds the rules that hold for every service.
"""

from __future__ import annotations

import asyncio
import time

import httpx

from monctl.redaction import redact
from monctl.services.answers import Fetched, Role, Verdict, not_ok
from monctl.services.model import Probe

# Bodies are read for their first words and a few metrics: a server that
# streams without end must not fill the memory of a health check.
MAX_BODY = 4 * 1024 * 1024


def _why(exc: httpx.HTTPError, timeout: float) -> str:
    if isinstance(exc, httpx.TimeoutException):
        return f"timed out after {timeout:g}s"
    text = str(exc)
    lowered = text.lower()
    if "refused" in lowered:
        return "connection refused"
    if any(
        s in lowered for s in ("name or service not known", "nodename nor servname", "getaddrinfo")
    ):
        return "DNS lookup failed"
    if isinstance(exc, httpx.RemoteProtocolError):
        return f"connection dropped ({redact(text) or 'no response'})"
    return redact(text) or type(exc).__name__


async def _get(
    client: httpx.AsyncClient, url: str, timeout: float, auth: tuple[str, str] | None
) -> tuple[httpx.Response, str]:
    async with client.stream("GET", url, timeout=timeout, auth=auth) as response:
        body = bytearray()
        async for chunk in response.aiter_bytes():
            body += chunk
            if len(body) > MAX_BODY:
                break
        encoding = response.charset_encoding or "utf-8"
        return response, bytes(body[:MAX_BODY]).decode(encoding, "replace")


async def fetch(
    client: httpx.AsyncClient, url: str, timeout: float, auth: tuple[str, str] | None = None
) -> Fetched:
    """GET ``url`` (with basic ``auth`` when given); return the answer or why there was
    none, within ``timeout`` seconds in all.

    httpx's timeout bounds each phase (connect, each read); ``wait_for`` bounds the
    whole probe, so a server that trickles bytes cannot hold the check up.
    """
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    try:
        response, text = await asyncio.wait_for(_get(client, url, timeout, auth), timeout)
    except TimeoutError:
        return Fetched(url, None, latency_ms=elapsed(), error=f"timed out after {timeout:g}s")
    except httpx.HTTPError as exc:
        return Fetched(url, None, latency_ms=elapsed(), error=_why(exc, timeout))
    return Fetched(url, response.status_code, text, response.headers, elapsed())


def interpret(f: Fetched, probe: Probe, role: Role) -> Verdict:
    """The verdict on one answer. No answer is "down"; a redirect is never
    followed (a login page or a wrong route prefix must not read as healthy)."""
    if f.status is None:
        return Verdict("down", f.error or "no answer")
    if 300 <= f.status < 400:
        where = redact(f.headers.get("location", "?"))[:200]
        return not_ok(role, f"{role} redirected ({f.status}) to {where}: wrong URL or prefix?")
    return probe.read(f, role)
