"""The request behind every health probe: one GET, where no answer is an answer.

A probe never raises for what the network does: a refused connection, a DNS
failure or a timeout is recorded as ``Fetched.error`` ("down"), never skipped.
The HTTP itself is ``monctl/adapters/http_probe.py``.
How an answer is judged belongs to the service's declaration
(``Probe.read``); ``interpret`` adds the rules that hold for every service.
"""

from __future__ import annotations

import time

from monctl.adapters.http_probe import NoAnswer, ProbeClient
from monctl.redaction import redact
from monctl.services.answers import Fetched, Role, Verdict, not_ok
from monctl.services.model import Probe


async def fetch(
    client: ProbeClient, url: str, timeout: float, auth: tuple[str, str] | None = None
) -> Fetched:
    """GET ``url`` (with basic ``auth`` when given); return the answer or why there was
    none, within ``timeout`` seconds in all (``monctl/adapters/http_probe.py``)."""
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    try:
        reply = await client.get(url, timeout, auth)
    except NoAnswer as no:
        return Fetched(url, None, latency_ms=elapsed(), error=no.why)
    return Fetched(url, reply.status, reply.text, reply.headers, elapsed())


def interpret(f: Fetched, probe: Probe, role: Role) -> Verdict:
    """The verdict on one answer. No answer is "down"; a redirect is never
    followed (a login page or a wrong route prefix must not read as healthy)."""
    if f.status is None:
        return Verdict("down", f.error or "no answer")
    if 300 <= f.status < 400:
        where = redact(f.headers.get("location", "?"))[:200]
        return not_ok(role, f"{role} redirected ({f.status}) to {where}: wrong URL or prefix?")
    return probe.read(f, role)
