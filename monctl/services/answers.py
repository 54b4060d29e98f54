"""What a service answered, and the verdicts monctl draws from it.

The vocabulary shared by the service declarations (which say how each answer
is read) and the health operation (which asks and reports): ``Fetched`` is one
HTTP answer or the reason there was none; a probe's interpreter turns it into a
``Verdict``; a deep check returns ``Check``s, watched ``Target``s and firing
alerts in a ``DeepResult``. Pure data and pure functions: no network here
(the asking is done by ``monctl.health.probes``), so declarations stay cheap
to import.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any, Literal, Protocol

from monctl.redaction import redact

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
    # Which service's count of firing alerts to show when several give one: the
    # highest rank wins (Alertmanager sees alerts after routing and inhibition).
    alerts_rank: int = 0


# How an answer is read (a probe's interpreter), and how a deep check asks.
Interpreter = Callable[[Fetched, Role], Verdict]
Fetch = Callable[[str], Awaitable[Fetched]]  # GET one URL, within the probe timeout
DeepCheck = Callable[[Fetch, str], Awaitable[DeepResult]]  # (fetch, base URL)


class DrillAsk(Protocol):
    """What a service's drill check (or its backup-time record) may ask: GET a path of
    the service, with query ``params`` and basic ``auth``, and read a setting.
    ``window`` is the backup's time range as Unix seconds (at backup time: now);
    ``facts`` what the backup recorded (empty at backup time)."""

    service: str
    facts: Mapping[str, Any]
    window: tuple[float, float]

    def get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Fetched: ...

    def setting(self, name: str, default: str = "") -> str: ...


# -- reading answers -------------------------------------------------------------


def not_ok(role: Role, detail: str) -> Verdict:
    """A liveness endpoint answering wrongly is a broken service; a readiness one
    answering wrongly means it is up but not ready (yet)."""
    return Verdict("unhealthy" if role == "liveness" else "not ready", detail)


def status_200(f: Fetched, role: Role) -> Verdict:
    """Any 200 is good; anything else is reported with its body."""
    if f.status == 200:
        return Verdict("ok")
    return not_ok(role, f"{role} answered {f.status}: {f.excerpt()}".rstrip(": "))


def json_data(f: Fetched) -> tuple[Any, str | None]:
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


def recorded_ns(facts: Mapping[str, Any], key: str, window: tuple[float, float]) -> int | None:
    """The instant (Unix nanoseconds) a backup recorded its facts at: ``facts[key]``, an
    integer within the backup's ``window`` (give or take an hour); None when it is not one
    (a manifest is read from the destination: hostile until checked)."""
    value = facts.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        return None
    low, high = (window[0] - 3600) * 1e9, (window[1] + 3600) * 1e9
    return value if low <= value <= high else None


def recorded_count(value: Any, high: int) -> int | None:
    """A count a backup recorded: an integer from 0 to ``high``, else None."""
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= high:
        return None
    return value


def recorded_rows(
    facts: Mapping[str, Any],
    window: tuple[float, float],
    *,
    keys: tuple[str, str, str, str],
    max_rows: int,
    max_count: int,
    max_name: int,
) -> tuple[int | None, list[tuple[str, int]], str]:
    """(when, [(name, count)], why unusable) of the rows a backup recorded for its drill;
    (None, [], "") when it recorded nothing (a backup from before records, or one that
    could not). ``keys``: the facts' instant, the list of rows, and each row's name and
    count (e.g. Loki's streams and their lines). Read from the destination: a time out
    of the backup's window, a count out of range or a name too long is "unusable",
    never trusted."""
    at_key, rows_key, name_key, count_key = keys
    if rows_key not in facts:
        return None, [], ""
    at_ns = recorded_ns(facts, at_key, window)
    rows = facts.get(rows_key)
    if at_ns is None or not isinstance(rows, list) or len(rows) > max_rows:
        return None, [], f"its time or its list of {rows_key} is malformed"
    recorded = []
    for row in rows:
        count = recorded_count(row.get(count_key), max_count) if isinstance(row, dict) else None
        name = row.get(name_key) if isinstance(row, dict) else None
        if count is None or not isinstance(name, str) or len(name) > max_name:
            return None, [], f"a {name_key.replace('_', ' ')} it names is malformed"
        recorded.append((name, count))
    return at_ns, recorded, ""


def count_severity(labels_list: list[dict[str, Any]]) -> dict[str, int]:
    """Firing alerts by their ``severity`` label (critical, warning, info, others)."""
    counts = {"critical": 0, "warning": 0, "info": 0}
    for labels in labels_list:
        severity = str(labels.get("severity") or "none")
        counts[severity] = counts.get(severity, 0) + 1
    return counts


def reload_check(service: str, f: Fetched, metric: str) -> Check:
    """Whether the service's last configuration reload succeeded, read off ``metric``."""
    if f.status != 200:
        error = f"{f.url}: {f.error or f'answered {f.status}'}"
        return Check(service, "config reload", False, f"cannot tell: {error}")
    value = metric_value(f.text, metric)
    if value is None:
        return Check(service, "config reload", False, f"cannot tell: {metric} missing from {f.url}")
    if value == 1:
        return Check(service, "config reload", True, "last reload successful")
    return Check(
        service, "config reload", False, "last reload FAILED: still running the old config"
    )


# -- Prometheus text format ---------------------------------------------------------


def _samples(text: str, name: str) -> Iterator[tuple[str, float]]:
    """(label text, value) of every sample of metric ``name`` in Prometheus text."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        if "}" in line:
            head, _, rest = line.partition("}")
            metric, _, label_text = head.partition("{")
        else:
            metric, _, rest = line.partition(" ")
            label_text = ""
        if metric != name:
            continue
        fields = rest.split()  # value, then an optional timestamp
        try:
            yield label_text, float(fields[0])
        except (IndexError, ValueError):
            continue


def metric_value(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The value of sample ``name`` (with ``labels`` among its labels) in Prometheus text."""
    for label_text, value in _samples(text, name):
        if not labels or all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            return value
    return None


def metric_sum(text: str, name: str) -> float:
    """The sum of every sample of ``name`` (e.g. a counter over all its label sets)."""
    return sum(value for _, value in _samples(text, name))


def compare_recorded(
    service: str,
    recorded: list[tuple[str, int]],
    present: Mapping[str, int],
    *,
    rows: str,
    units: str,
    every: str,
    label: Callable[[str], str] = str,
) -> Check:
    """A drill's verdict on a restored service: every row the backup recorded (a Loki
    stream, a Prometheus series: ``recorded``, as ``recorded_rows`` reads it) holds at
    least the count it had (``present``: row -> count now; absent: 0). The first row
    short is named (``label``), in the words ``rows``, ``units`` and ``every``."""
    short = [(n, had, present.get(n, 0)) for n, had in recorded if present.get(n, 0) < had]
    if short:
        name, had, has = short[0]
        detail = (
            f"{len(short)} of the {len(recorded)} {rows} the backup recorded lost {units}: "
            f"{label(name)} holds {has} of {had} in the hour before the backup"
        )
        return Check(service, "query", False, detail)
    total = sum(n for _, n in recorded)
    detail = f"{every} the {len(recorded)} {rows} the backup recorded ({total} {units})"
    return Check(service, "query", True, detail)
