"""Heartbeat pings: tell an outside dead-man's switch that a backup, restore or drill
started, succeeded or failed, so it raises the alarm when no success arrives, even
when this host is gone.

``MONCTL_BACKUP_PING_URL`` (``backup``) and ``MONCTL_RESTORE_PING_URL``
(``restore``, ``backup test``) name the check. Three services are understood,
told apart by the URL (or ``MONCTL_PING_KIND``):

- healthchecks.io and compatible servers (the default): ``POST URL/start``,
  ``URL`` (success), ``URL/fail``, ``URL/log``, each with a short text body and
  the run's ``rid`` so start and end pair up;
- Uptime Kuma push monitors (``.../api/push/<token>``): ``GET`` with
  ``status=up|down`` and ``msg=`` (Kuma has no start signal: none is sent);
- Cronitor telemetry (``cronitor.link``): ``GET`` with ``state=run|complete|fail``,
  ``series=`` and ``message=``.

A ping never fails the operation: its outcome is reported. Each ping is bounded in
total by ``MONCTL_PING_TIMEOUT`` seconds (default 10), retries included: it runs
in a worker thread and is given up when its time is over, however slowly the
server answers. The URL carries the check's secret (UUID, token, API key): it is
registered with ``monctl.redaction`` and only its host is ever shown.
"""

from __future__ import annotations

import socket
import threading
import time
import uuid
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

from monctl import redaction, url_setting
from monctl.envfile import seconds
from monctl.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from monctl.project import Project

Signal = Literal["start", "success", "fail", "log"]
Kind = Literal["healthchecks", "uptime-kuma", "cronitor"]
KINDS: tuple[Kind, ...] = ("healthchecks", "uptime-kuma", "cronitor")

BACKUP_PING_VAR = "MONCTL_BACKUP_PING_URL"
RESTORE_PING_VAR = "MONCTL_RESTORE_PING_URL"
KIND_VAR = "MONCTL_PING_KIND"
TIMEOUT_VAR = "MONCTL_PING_TIMEOUT"
DEFAULT_TIMEOUT = 10.0

# What each service keeps of a message: healthchecks stores the first 10 kB of a
# body on a self-hosted server (PING_BODY_LIMIT), 100 kB hosted; Cronitor's
# message is documented up to 2000 characters; Kuma shows `msg` as one line.
BODY_LIMIT = {"healthchecks": 10_000, "uptime-kuma": 200, "cronitor": 2000}


@dataclass(frozen=True)
class Ping:
    """What became of one ping."""

    signal: Signal
    target: str  # the host only: the rest of the URL is secret
    ok: bool
    detail: str = ""  # "sent (200)", "not supported by Uptime Kuma", why it failed
    sent: bool = True  # False: skipped (the service has no such signal)

    def to_json(self) -> dict[str, object]:
        return {
            "signal": self.signal,
            "target": self.target,
            "ok": self.ok,
            "sent": self.sent,
            "detail": self.detail,
        }


def kind_of(url: str, given: str = "") -> Kind:
    """Which service ``url`` belongs to (``given`` wins: MONCTL_PING_KIND)."""
    if given:
        for kind in KINDS:
            if given == kind:
                return kind
        raise ConfigError(
            f"{KIND_VAR}={given!r} is not a ping kind", hint=f"use one of {', '.join(KINDS)}"
        )
    parts = urlsplit(url)
    if "/api/push/" in parts.path:
        return "uptime-kuma"
    if (parts.hostname or "").endswith("cronitor.link"):
        return "cronitor"
    return "healthchecks"


def target_of(url: str) -> str:
    """The part of a ping URL that may be shown: scheme and host."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.hostname or '?'}" + (f":{parts.port}" if parts.port else "")


def ping_timeout(project: Project) -> float:
    return seconds(TIMEOUT_VAR, project.setting(TIMEOUT_VAR), DEFAULT_TIMEOUT, 300)


@dataclass(frozen=True)
class Request:
    method: Literal["GET", "POST"]
    url: str
    body: str | None


def _with(url: str, path_suffix: str = "", **params: str) -> str:
    """``url`` with ``path_suffix`` appended to its path and ``params`` set in its query
    (replacing the same names: a pasted Kuma URL already holds ``?status=up&msg=OK``)."""
    parts = urlsplit(url)
    query = [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k not in params]
    query += list(params.items())
    path = parts.path.rstrip("/") + path_suffix if path_suffix else parts.path
    return urlunsplit((parts.scheme, parts.netloc, path, urlencode(query), ""))


def build(kind: Kind, url: str, signal: Signal, message: str, run_id: str) -> Request | None:
    """The request for ``signal`` to a service of ``kind``; None when it has no such signal."""
    text = message[: BODY_LIMIT[kind]]
    if kind == "healthchecks":
        suffix = {"start": "/start", "success": "", "fail": "/fail", "log": "/log"}[signal]
        return Request("POST", _with(url, suffix, rid=run_id), text)
    if kind == "uptime-kuma":
        if signal in ("start", "log"):
            return None
        first_line = text.splitlines()[0] if text else ""
        status = "up" if signal == "success" else "down"  # only "up" means up to Kuma
        return Request("GET", _with(url, status=status, msg=first_line, ping=""), None)
    state = {"start": "run", "success": "complete", "fail": "fail", "log": ""}[signal]
    if not state:
        return None
    host = socket.gethostname()
    return Request("GET", _with(url, state=state, series=run_id, message=text, host=host), None)


class Heartbeat:
    """The pings of one run to one check URL."""

    def __init__(self, url: str, kind: Kind, timeout: float) -> None:
        redaction.register_url(url)
        self.url = url
        self.kind = kind
        self.timeout = timeout
        self.target = target_of(url)
        self.run_id = str(uuid.uuid4())
        self.pings: list[Ping] = []

    @classmethod
    def from_project(cls, project: Project, var: str) -> Heartbeat | None:
        """The heartbeat configured by ``var`` (None when it is unset). Raise
        ConfigError for a URL that is not http(s) or a bad kind/timeout."""
        url = project.setting(var, "").strip()
        if not url:
            return None
        redaction.register_url(url)
        why = url_setting.problem(url)
        if why is None and urlsplit(url).scheme not in ("http", "https"):
            why = "it is not an http(s) URL"
        if why is not None:
            raise ConfigError(
                f"{var} is not a usable ping URL: {why}",
                hint="e.g. https://hc-ping.com/<uuid> (its value is not shown: it is secret)",
            )
        return cls(url, kind_of(url, project.setting(KIND_VAR, "").strip()), ping_timeout(project))

    def send(self, signal: Signal, message: str) -> Ping:
        """Send one ping within ``timeout`` seconds in all; never raises."""
        request = build(self.kind, self.url, signal, redaction.redact(message), self.run_id)
        if request is None:
            ping = Ping(signal, self.target, True, f"{self.kind} has no {signal} signal", False)
        else:
            ping = _deliver(request, signal, self.target, self.timeout)
        self.pings.append(ping)
        return ping

    # -- the monitoring hook (monctl.monitoring.Hook) ------------------------------------
    def start(self, text: str) -> None:
        self.send("start", text)

    def success(self, title: str, body: str) -> None:
        self.send("success", body)

    def failure(self, title: str, body: str) -> None:
        self.send("fail", body)

    def skipped(self, text: str) -> None:
        self.send("log", text)


def _deliver(request: Request, signal: Signal, target: str, timeout: float) -> Ping:
    """Send ``request`` in a worker thread, retrying until ``timeout`` is spent; the
    thread is abandoned (a daemon) when it outlives its time."""
    outcome: list[Ping] = []
    deadline = time.monotonic() + timeout

    def work() -> None:
        outcome.append(_attempts(request, signal, target, deadline))

    worker = threading.Thread(target=work, name=f"monctl-ping-{signal}", daemon=True)
    worker.start()
    worker.join(timeout)
    if outcome:
        return outcome[0]
    return Ping(signal, target, False, f"no answer within {timeout:g} s ({TIMEOUT_VAR})")


def _attempts(request: Request, signal: Signal, target: str, deadline: float) -> Ping:
    from monctl.adapters import http

    why = "not sent"
    headers = {"Content-Type": "text/plain; charset=utf-8", "User-Agent": "monctl"}
    while (remaining := deadline - time.monotonic()) > 0.05:
        try:
            answer = http.plain(
                request.method,
                request.url,
                content=request.body.encode() if request.body is not None else None,
                headers=headers,
                timeout=remaining,
            )
        except http.NoAnswer as exc:
            why = exc.why
            if exc.final:  # checked at the start: should not happen
                break
        else:
            if answer.ok:
                return Ping(signal, target, True, f"sent ({answer.status})")
            why = f"answered {answer.status}: " + redaction.redact(answer.text[:120])
            if answer.status < 500 and answer.status != 429:
                break  # the check URL is wrong: retrying will not help
        time.sleep(min(1.0, max(0.0, deadline - time.monotonic() - 0.05)))
    return Ping(signal, target, False, why.strip().rstrip(":"))
