"""Loki: the log store. Everything monctl knows about it.

Readiness: ``/ready`` answers 200 "ready", or 503 with the ingester's reason
(e.g. "waiting for 15s after being ready", its min-ready ramp-up). Reload:
Loki has no reload API, so a configuration change is a restart. Backup:
``POST /flush`` writes in-memory chunks out, then the container is paused for
the copy (filesystem storage has no official backup procedure). The upstream
image is distroless: no shell, nothing can run inside it but Loki — which is all
the check needs: ``loki -verify-config`` prints "config is valid" (exit 0) or
"failed parsing config: …" (exit 1; an unknown key fails, yaml.v3 is strict), or
logs ``msg="validating config"`` for a semantic error. It runs as the image's
entrypoint, so ``validate`` and ``reload`` (inside the container) need no shell.
Runs as 10001. Drill: a query over the day before the backup must return lines.
"""

from __future__ import annotations

from monctl.services.answers import Check, DrillAsk, Fetched, Role, Verdict, json_data, status_200
from monctl.services.model import (
    ConfigMount,
    DataVolume,
    Drill,
    Layout,
    Pause,
    Probe,
    RestartReload,
    Service,
    ToolCheck,
)


def read_ready(f: Fetched, role: Role) -> Verdict:
    """200 "ready"; 503 with the ingester's reason (not ready yet)."""
    if f.status == 200:
        return Verdict("ok")
    if f.status == 503:
        return Verdict("not ready", f.excerpt() or "503 without a reason")
    return status_200(f, role)


# The drill's question: lines of any stream in the day before the backup.
# Loki 3 gives every stream a service_name (discovered from its labels, else
# "unknown_service"), so this selector matches them all.
DRILL_QUERY = '{service_name=~".+"}'
DRILL_LOOKBACK = 86400.0


def drill(ask: DrillAsk) -> tuple[Check, ...]:
    """Lines come back from the backup's time range (the day before it ended)."""
    start, end = ask.window
    params = {
        "query": DRILL_QUERY,
        "start": str(int((start - DRILL_LOOKBACK) * 1e9)),
        "end": str(int((end + 60) * 1e9)),
        "limit": "10",
        "direction": "backward",
    }
    data, error = json_data(ask.get("/loki/api/v1/query_range", params))
    if error:
        return (Check("loki", "query", False, f"cannot tell: {error}"),)
    result = data.get("result") if isinstance(data, dict) else None
    streams = [r for r in result if isinstance(r, dict)] if isinstance(result, list) else []
    lines = sum(len(s.get("values") or []) for s in streams)
    if not lines:
        return (Check("loki", "query", False, "no log lines in the day before the backup"),)
    detail = f"{lines} lines from {len(streams)} streams in the day before the backup (limit 10)"
    return (Check("loki", "query", True, detail),)


SERVICE = Service(
    name="loki",
    title="Loki",
    role="log store",
    container_port=3100,
    port_var="LOKI_PORT",
    default_port=3100,
    image_var="LOKI_IMAGE",
    liveness=Probe("/metrics"),
    readiness=Probe("/ready", read_ready),
    config=ConfigMount("config/loki", "/etc/loki"),
    checks=(
        ToolCheck(
            "config",
            ("/usr/bin/loki", "-verify-config"),
            "config/loki/loki-config.yml",
            ran=("config is valid", "failed parsing config", "validating config"),
            file_arg="-config.file={}",
            # A restart with a config Loki refuses is a crash loop: check first.
            gates_reload=True,
            provided_by="the grafana/loki image or Loki's release binary (no Debian package)",
        ),
    ),
    reload=RestartReload("Loki has no reload API"),
    # The filesystem object store (chunks_directory) holds chunks and shipped index
    # files, each written once; chunks are compressed already. The image has no
    # shell, so nothing can list the volume: it is read whole (while paused), and
    # only content the repository lacks is written.
    data=DataVolume(
        "loki_data",
        "/loki",
        10001,
        10001,
        Pause(flush="/flush"),
        Layout(objects=("chunks/*",), compressed=("chunks/*",)),
    ),
    drill=Drill(drill),  # no http_client: the image has no shell and no wget
)
