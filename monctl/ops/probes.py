"""Health probes: one HTTP request each, read by the catalogue's ``ProbeKind``.

A probe never raises for what the network does: a refused connection, a DNS
failure or a timeout is an answer ("down"), recorded with its reason, never
skipped. ``INTERPRETERS`` turns an answer into a ``Verdict`` according to the
documented meaning of each endpoint (shared/reference/endpoints.md);
``DEEP_CHECKS`` holds the deeper questions asked of Prometheus and
Alertmanager (scrape targets, rules, reloads, notifications, firing alerts).
Both tables are looked up by key, so a new kind is one function and one entry.
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

import httpx

from monctl.adapters.http import metric_sum, metric_value
from monctl.catalogue import WATCHED_JOBS, ProbeKind
from monctl.secrets import redact

Outcome = Literal["ok", "degraded", "not ready", "unhealthy", "down"]
Role = Literal["liveness", "readiness"]
TargetState = Literal["up", "down", "unknown"]


@dataclass(frozen=True)
class Fetched:
    """What one request got: a response, or the reason there was none (``error``)."""

    url: str
    status: int | None
    text: str = ""
    headers: Mapping[str, str] = field(default_factory=dict)
    latency_ms: float = 0.0
    error: str | None = None

    def excerpt(self, limit: int = 160) -> str:
        text = " ".join(self.text.split())
        return redact(text[:limit] + ("…" if len(text) > limit else ""))


@dataclass(frozen=True)
class Target:
    """Something the stack watches (not a stack service): a backend job, the database."""

    name: str
    state: TargetState
    detail: str = ""
    job: str = ""
    instance: str = ""
    source: str = ""  # who told us: "prometheus" or "postgres-exporter (pg_up)"

    def to_json(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "state": self.state,
            "job": self.job,
            "instance": self.instance,
            "source": self.source,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class Verdict:
    outcome: Outcome
    detail: str = ""
    targets: tuple[Target, ...] = ()

    @property
    def ok(self) -> bool:
        return self.outcome in ("ok", "degraded")


@dataclass(frozen=True)
class Check:
    """One deep check. ``severity`` "stack" failures make the stack unhealthy;
    "warning" ones are shown (and written to JUnit output) but do not gate."""

    service: str
    name: str
    ok: bool
    detail: str = ""
    severity: Literal["stack", "warning"] = "stack"

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "name": self.name,
            "ok": self.ok,
            "severity": self.severity,
            "detail": self.detail,
        }


@dataclass(frozen=True)
class DeepResult:
    checks: tuple[Check, ...] = ()
    targets: tuple[Target, ...] = ()
    alerts: dict[str, int] | None = None  # firing alerts by severity; None: not asked


# -- the request ---------------------------------------------------------------


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


async def fetch(client: httpx.AsyncClient, url: str, timeout: float) -> Fetched:
    """GET ``url``; return the answer or why there was none, within ``timeout`` seconds in all.

    httpx's timeout bounds each phase (connect, each read); ``wait_for`` bounds the
    whole probe, so a server that trickles bytes cannot hold the check up.
    """
    started = time.perf_counter()

    def elapsed() -> float:
        return round((time.perf_counter() - started) * 1000, 1)

    try:
        response = await asyncio.wait_for(client.get(url, timeout=timeout), timeout)
    except TimeoutError:
        return Fetched(url, None, latency_ms=elapsed(), error=f"timed out after {timeout:g}s")
    except httpx.HTTPError as exc:
        return Fetched(url, None, latency_ms=elapsed(), error=_why(exc, timeout))
    return Fetched(url, response.status_code, response.text, response.headers, elapsed())


# -- reading liveness and readiness answers -------------------------------------


def _not_ok(role: Role, detail: str) -> Verdict:
    # A liveness endpoint answering wrongly is a broken service; a readiness one
    # answering wrongly means it is up but not ready (yet).
    return Verdict("unhealthy" if role == "liveness" else "not ready", detail)


def _status_200(f: Fetched, role: Role) -> Verdict:
    if f.status == 200:
        return Verdict("ok")
    return _not_ok(role, f"{role} answered {f.status}: {f.excerpt()}".rstrip(": "))


def _prometheus_ready(f: Fetched, role: Role) -> Verdict:
    if f.status == 200:
        return Verdict("ok")
    if f.status == 503:
        phase = "stopping" if "x-prometheus-stopping" in f.headers else "starting"
        return Verdict("not ready", f"{phase} (503 {f.excerpt()})".replace(" )", ")"))
    return _status_200(f, role)


def _grafana_health(f: Fetched, role: Role) -> Verdict:
    try:
        doc = json.loads(f.text)
    except ValueError:
        doc = None
    if not isinstance(doc, dict):
        if f.status == 503:
            return Verdict("unhealthy", f"/api/health answered 503: {f.excerpt()}")
        return Verdict("unhealthy", f"/api/health answered {f.status} without JSON: {f.excerpt()}")
    database = doc.get("database")
    if database != "ok" or f.status != 200:
        return Verdict("unhealthy", f"database: {database or 'not reported'} ({f.status})")
    version = doc.get("version")
    return Verdict("ok", f"version {version}" if version else "")


def _loki_ready(f: Fetched, role: Role) -> Verdict:
    if f.status == 200:
        return Verdict("ok")
    if f.status == 503:
        return Verdict("not ready", f.excerpt() or "503 without a reason")
    return _status_200(f, role)


def _promtail_ready(f: Fetched, role: Role) -> Verdict:
    if f.status == 200:
        return Verdict("ok")
    if f.status == 500 and "logs to tail" in f.text:
        return Verdict("not ready", "no logs to tail (check its log mounts and scrape_configs)")
    if f.status == 500:
        return Verdict("not ready", f.excerpt())
    return _status_200(f, role)


def _pg_up(f: Fetched, role: Role) -> Verdict:
    if f.status != 200:
        return _status_200(f, role)
    value = metric_value(f.text, "pg_up")
    source = "postgres-exporter (pg_up)"
    if value is None:
        target = Target("database", "unknown", "exporter publishes no pg_up", source=source)
        return Verdict("not ready", "/metrics carries no pg_up", (target,))
    if value == 1:
        return Verdict("ok", "database reachable", (Target("database", "up", source=source),))
    target = Target("database", "down", "pg_up 0: the exporter cannot reach it", source=source)
    return Verdict("degraded", "exporter up, database unreachable", (target,))


INTERPRETERS: dict[ProbeKind, Callable[[Fetched, Role], Verdict]] = {
    "status-200": _status_200,
    "prometheus-ready": _prometheus_ready,
    "grafana-health": _grafana_health,
    "loki-ready": _loki_ready,
    "promtail-ready": _promtail_ready,
    "pg-up": _pg_up,
}


def interpret(f: Fetched, kind: ProbeKind, role: Role) -> Verdict:
    """The verdict on one answer. No answer is "down"; a redirect is never
    followed (a login page or a wrong route prefix must not read as healthy)."""
    if f.status is None:
        return Verdict("down", f.error or "no answer")
    if 300 <= f.status < 400:
        where = f.headers.get("location", "?")
        return _not_ok(role, f"{role} redirected ({f.status}) to {where}: wrong URL or prefix?")
    return INTERPRETERS[kind](f, role)


# -- deep checks -----------------------------------------------------------------

Deep = Callable[[httpx.AsyncClient, str, float], Awaitable[DeepResult]]


def _json_data(f: Fetched) -> tuple[Any, str | None]:
    """``data`` of a Prometheus-style API answer, or why it could not be read."""
    if f.status is None:
        return None, f"{f.url}: {f.error}"
    if f.status != 200:
        return None, f"{f.url} answered {f.status}: {f.excerpt()}"
    try:
        doc = json.loads(f.text)
    except ValueError:
        return None, f"{f.url} answered malformed JSON"
    if isinstance(doc, dict) and "data" in doc:
        return doc["data"], None
    return doc, None


def _metric(f: Fetched, name: str) -> tuple[float | None, str | None]:
    if f.status != 200:
        return None, f"{f.url}: {f.error or f'answered {f.status}'}"
    value = metric_value(f.text, name)
    return value, None if value is not None else f"{name} missing from {f.url}"


def _reload_check(service: str, f: Fetched, metric: str) -> Check:
    value, error = _metric(f, metric)
    if error:
        return Check(service, "config reload", False, f"cannot tell: {error}")
    if value == 1:
        return Check(service, "config reload", True, "last reload successful")
    return Check(
        service, "config reload", False, "last reload FAILED: still running the old config"
    )


def _count_severity(labels_list: list[dict[str, Any]]) -> dict[str, int]:
    counts = {"critical": 0, "warning": 0, "info": 0}
    for labels in labels_list:
        severity = str(labels.get("severity") or "none")
        counts[severity] = counts.get(severity, 0) + 1
    return counts


def _targets(data: Any) -> tuple[list[Target], list[Target]]:
    """Prometheus' active targets split into (watched application targets, stack targets)."""
    watched: list[Target] = []
    stack: list[Target] = []
    for t in (data or {}).get("activeTargets", []) if isinstance(data, dict) else []:
        labels = t.get("labels") or {}
        job = str(labels.get("job") or t.get("scrapePool") or "?")
        instance = str(labels.get("instance") or t.get("scrapeUrl") or "?")
        health = t.get("health")
        state: TargetState = health if health in ("up", "down") else "unknown"
        detail = redact(str(t.get("lastError") or "")) if state == "down" else ""
        if state == "unknown":
            detail = "not scraped yet"
        target = Target(job, state, detail, job, instance, "prometheus")
        (watched if job in WATCHED_JOBS else stack).append(target)
    return watched, stack


async def prometheus_deep(client: httpx.AsyncClient, base: str, timeout: float) -> DeepResult:
    """Scrape targets (watched vs stack), rule health, last reload, firing alerts."""
    targets_f, rules_f, metrics_f, alerts_f = await asyncio.gather(
        fetch(client, f"{base}/api/v1/targets?state=active", timeout),
        fetch(client, f"{base}/api/v1/rules", timeout),
        fetch(client, f"{base}/metrics", timeout),
        fetch(client, f"{base}/api/v1/alerts", timeout),
    )
    checks: list[Check] = []
    data, error = _json_data(targets_f)
    watched, stack = _targets(data)
    if error:
        checks.append(Check("prometheus", "scrape targets", False, f"cannot tell: {error}"))
    else:
        down = [t for t in stack if t.state == "down"]
        pending = sum(t.state == "unknown" for t in stack)
        if down:
            named = "; ".join(f"{t.job} ({t.instance}: {t.detail or 'down'})" for t in down)
            checks.append(Check("prometheus", "scrape targets", False, f"down: {named}"))
        else:
            note = f", {pending} not scraped yet" if pending else ""
            up = len(stack) - pending
            checks.append(
                Check("prometheus", "scrape targets", True, f"{up} stack targets up{note}")
            )
    data, error = _json_data(rules_f)
    if error:
        checks.append(Check("prometheus", "rule evaluation", False, f"cannot tell: {error}"))
    else:
        rules = [r for g in (data or {}).get("groups", []) for r in g.get("rules", [])]
        failing = [r for r in rules if r.get("health") == "err"]
        detail = "; ".join(f"{r.get('name')}: {r.get('lastError', '')}" for r in failing)
        ok_detail = f"{len(rules)} rules evaluating"
        checks.append(
            Check("prometheus", "rule evaluation", not failing, redact(detail) or ok_detail)
        )
    checks.append(
        _reload_check("prometheus", metrics_f, "prometheus_config_last_reload_successful")
    )
    data, error = _json_data(alerts_f)
    alerts = None
    if not error and isinstance(data, dict):
        firing = [
            a.get("labels") or {} for a in data.get("alerts", []) if a.get("state") == "firing"
        ]
        alerts = _count_severity(firing)
    return DeepResult(tuple(checks), tuple(watched), alerts)


async def alertmanager_deep(client: httpx.AsyncClient, base: str, timeout: float) -> DeepResult:
    """Last reload, failed notifications (a warning: the receivers live outside the
    stack, and one sample cannot tell old failures from new), firing alerts."""
    metrics_f, alerts_f = await asyncio.gather(
        fetch(client, f"{base}/metrics", timeout),
        fetch(client, f"{base}/api/v2/alerts?active=true&silenced=false&inhibited=false", timeout),
    )
    checks = [
        _reload_check("alertmanager", metrics_f, "alertmanager_config_last_reload_successful")
    ]
    if metrics_f.status == 200:
        failed = metric_sum(metrics_f.text, "alertmanager_notifications_failed_total")
        sent = metric_sum(metrics_f.text, "alertmanager_notifications_total")
        detail = f"{failed:g} of {sent:g} notifications failed since Alertmanager started"
        checks.append(Check("alertmanager", "notifications", failed == 0, detail, "warning"))
    data, error = _json_data(alerts_f)
    alerts = None
    if error:
        checks.append(Check("alertmanager", "alerts", False, f"cannot tell: {error}"))
    elif isinstance(data, list):
        alerts = _count_severity([a.get("labels") or {} for a in data if isinstance(a, dict)])
    return DeepResult(tuple(checks), (), alerts)


DEEP_CHECKS: dict[str, Deep] = {
    "prometheus": prometheus_deep,
    "alertmanager": alertmanager_deep,
}
