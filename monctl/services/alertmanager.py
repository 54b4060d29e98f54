"""Alertmanager: routes alerts to people. Everything monctl knows about it.

Deep checks: the last config reload, failed notifications (a warning: the
receivers live outside the stack) and the alerts firing after routing and
inhibition. Reload: ``amtool check-config`` first, then ``POST /-/reload``,
confirmed by its reload metrics; an unchanged ``alertmanager_config_hash``
means the file did not change. Its notification secrets are written to files
by its entrypoint when the container starts, so a reload cannot apply a
change to them. Backup: paused for the length of the copy (silences and the
notification log).
"""

from __future__ import annotations

import asyncio

from monctl.services.answers import (
    Check,
    DeepResult,
    Fetch,
    count_severity,
    json_data,
    metric_sum,
    reload_check,
)
from monctl.services.model import (
    ConfigMount,
    DataVolume,
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
        ),
    ),
    reload=HttpReload("/-/reload", confirm=RELOAD_METRICS),
    data=DataVolume("alertmanager_data", "/alertmanager", 65534, 65534, Pause()),
    # Written to files on a tmpfs by config/alertmanager/entrypoint.sh at start.
    start_secrets=(
        StartSecret("SLACK_WEBHOOK_URL", "slack"),
        StartSecret("PAGERDUTY_ROUTING_KEY", "pagerduty"),
        StartSecret("SMTP_PASSWORD", "email"),
    ),
)
