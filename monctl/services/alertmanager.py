"""Alertmanager: routes alerts to people. Everything monctl knows about it.

Deep checks: the last config reload, failed notifications (a warning: the
receivers live outside the stack) and the alerts firing after routing and
inhibition. Reload: ``amtool check-config`` first, then ``POST /-/reload``,
confirmed by its reload metrics; an unchanged ``alertmanager_config_hash``
means the file did not change. Its notification secrets are written to files
by its entrypoint when the container starts, so a reload cannot apply a
change to them. Backup: paused for the length of the copy (silences and the
notification log). Drill: the backup records the active silences already on disk;
the restored Alertmanager must load every one of them again.
"""

from __future__ import annotations

import asyncio
from typing import Any

from monctl.services.answers import (
    Check,
    DeepResult,
    DrillAsk,
    Fetch,
    count_severity,
    json_data,
    metric_sum,
    reload_check,
)
from monctl.services.model import (
    BUSYBOX_WGET,
    ConfigMount,
    DataVolume,
    Drill,
    HttpReload,
    Pause,
    Probe,
    ReloadMetrics,
    Service,
    StartSecret,
    ToolCheck,
)

RELOAD_METRICS = ReloadMetrics(
    ok="alertmanager_config_last_reload_successful",
    timestamp="alertmanager_config_last_reload_success_timestamp_seconds",
    hash="alertmanager_config_hash",
)


async def deep(fetch: Fetch, base: str) -> DeepResult:
    """Last reload, failed notifications (a warning: one sample cannot tell old
    failures from new), firing alerts."""
    metrics_f, alerts_f = await asyncio.gather(
        fetch(f"{base}/metrics"),
        fetch(f"{base}/api/v2/alerts?active=true&silenced=false&inhibited=false"),
    )
    checks = [reload_check("alertmanager", metrics_f, RELOAD_METRICS.ok)]
    if metrics_f.status == 200:
        failed = metric_sum(metrics_f.text, "alertmanager_notifications_failed_total")
        sent = metric_sum(metrics_f.text, "alertmanager_notifications_total")
        detail = f"{failed:g} of {sent:g} notifications failed since Alertmanager started"
        checks.append(Check("alertmanager", "notifications", failed == 0, detail, "warning"))
    data, error = json_data(alerts_f)
    alerts = None
    if error:
        checks.append(Check("alertmanager", "alerts", False, f"cannot tell: {error}"))
    elif isinstance(data, list):
        alerts = count_severity([a.get("labels") or {} for a in data if isinstance(a, dict)])
    # Alertmanager sees every firing alert after routing: its count wins.
    return DeepResult(tuple(checks), (), alerts, alerts_rank=2)


# Alertmanager writes silences to disk on its maintenance interval (1m in the
# compose file) or at shutdown: one changed within this long of the backup may
# not be in it, and is not recorded. Expired silences are dropped after the
# retention (120h by default): one that ended nearer to that is not expected.
SETTLE_SECONDS = 120.0
RETENTION_MARGIN = 4 * 86400.0
MAX_RECORDED = 1000


def _time(value: object) -> float | None:
    """Unix time of an RFC 3339 timestamp as Go writes it (up to nanoseconds)."""
    from datetime import datetime

    if not isinstance(value, str):
        return None
    head, dot, rest = value.partition(".")
    if dot:  # Python reads at most microseconds
        digits = "".join(c for c in rest if c.isdigit())
        zone = rest[len(digits) :]
        value = f"{head}.{digits[:6] or '0'}{zone}"
    try:
        return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
    except ValueError:
        return None


def _silences(ask: DrillAsk) -> tuple[list[dict[str, Any]] | None, str]:
    f = ask.get("/api/v2/silences")
    data, error = json_data(f)
    if error:
        return None, error
    if not isinstance(data, list):
        return None, "/api/v2/silences did not answer a list"
    return [s for s in data if isinstance(s, dict)], ""


def record(ask: DrillAsk) -> dict[str, object]:
    """At backup time: the active silences already written to disk (id, end)."""
    silences, why = _silences(ask)
    if silences is None:
        raise ValueError(why)
    now = ask.window[1]
    kept = [
        {"id": str(s.get("id")), "endsAt": s.get("endsAt")}
        for s in silences
        if (s.get("status") or {}).get("state") == "active"
        and (_time(s.get("updatedAt")) or now) < now - SETTLE_SECONDS
    ]
    return {"silences": kept[:MAX_RECORDED]}


def drill(ask: DrillAsk) -> tuple[Check, ...]:
    """It loaded its silences: every one the backup recorded that has not aged out."""
    import time

    silences, why = _silences(ask)
    if silences is None:
        return (Check("alertmanager", "silences", False, f"cannot tell: {why}"),)
    have = {str(s.get("id")) for s in silences}
    recorded = [r for r in ask.facts.get("silences") or [] if isinstance(r, dict)]
    expected = [
        r for r in recorded if (_time(r.get("endsAt")) or 0) > time.time() - RETENTION_MARGIN
    ]
    missing = [str(r.get("id")) for r in expected if str(r.get("id")) not in have]
    if missing:
        detail = f"{len(missing)} of the {len(expected)} silences the backup had are missing"
        return (Check("alertmanager", "silences", False, f"{detail}: {', '.join(missing[:3])}"),)
    active = sum((s.get("status") or {}).get("state") == "active" for s in silences)
    detail = f"{len(silences)} silences loaded ({active} active)"
    if ask.facts:
        detail += f", every one of the {len(expected)} the backup had"
    return (Check("alertmanager", "silences", True, detail),)


SERVICE = Service(
    name="alertmanager",
    title="Alertmanager",
    role="alert routing and notification",
    container_port=9093,
    port_var="ALERTMANAGER_PORT",
    default_port=9093,
    image_var="ALERTMANAGER_IMAGE",
    liveness=Probe("/-/healthy"),
    readiness=Probe("/-/ready"),
    deep=deep,
    config=ConfigMount("config/alertmanager", "/etc/alertmanager"),
    checks=(
        ToolCheck(
            "config",
            ("amtool", "check-config"),
            "config/alertmanager/alertmanager.yml",
            ran=("Checking",),
            gates_reload=True,
            provided_by="Debian/Ubuntu package prometheus-alertmanager, "
            "or the prom/alertmanager image",
        ),
    ),
    reload=HttpReload("/-/reload", confirm=RELOAD_METRICS),
    data=DataVolume("alertmanager_data", "/alertmanager", 65534, 65534, Pause()),
    drill=Drill(drill, record),
    http_client=BUSYBOX_WGET,  # the upstream image is busybox-based
    basic_auth=True,  # --web.config.file: the stack's credentials (monctl.credentials)
    # Written to files on a tmpfs by config/alertmanager/entrypoint.sh at start.
    start_secrets=(
        StartSecret("SLACK_WEBHOOK_URL", "slack"),
        StartSecret("PAGERDUTY_ROUTING_KEY", "pagerduty"),
        StartSecret("SMTP_PASSWORD", "email"),
    ),
)
