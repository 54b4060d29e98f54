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
Runs as 10001. Drill: the backup records how many lines a few streams held over the
hour before it; the restored Loki must hold at least as many over the same hour (none
recorded: nothing to compare, it only has to answer).
"""

from __future__ import annotations

from monctl.services.answers import (
    Check,
    DrillAsk,
    Fetched,
    Role,
    Verdict,
    compare_recorded,
    json_data,
    recorded_rows,
    status_200,
)
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


# What a backup records for the drill (``record``) and the drill compares with: how many
# lines a few streams held over the hour before the record, by service_name (Loki 3 gives
# every stream one, discovered from its labels, else "unknown_service"). ``/flush`` writes
# them all out just after, so a restore that works holds at least as many, over the same
# hour. Log queries only (query_range, limited): no metric query is needed.
ANY_STREAM = '{service_name=~".+"}'
RECORD_SECONDS = 3600
RECORD_LIMIT = 1000  # lines per stream counted (Loki's own cap is 5000 per query)
MAX_STREAMS = 5


def _selector(service_name: str) -> str:
    quoted = service_name.replace("\\", "\\\\").replace('"', '\\"')
    return '{service_name="' + quoted + '"}'


def _lines(
    ask: DrillAsk, query: str, end_ns: int
) -> tuple[int | None, list[dict[str, object]], str]:
    """(lines, streams) ``query`` returns over the hour before ``end_ns`` (at most
    ``RECORD_LIMIT`` lines), or None and why not."""
    params = {
        "query": query,
        "start": str(end_ns - RECORD_SECONDS * 10**9),
        "end": str(end_ns),
        "limit": str(RECORD_LIMIT),
        "direction": "backward",
    }
    data, error = json_data(ask.get("/loki/api/v1/query_range", params))
    if error:
        return None, [], error
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, list):
        return None, [], "/loki/api/v1/query_range did not answer a list of streams"
    streams = [r for r in result if isinstance(r, dict)]
    lines = sum(len(v) for s in streams if isinstance(v := s.get("values"), list))
    return min(lines, RECORD_LIMIT), streams, ""


def record(ask: DrillAsk) -> dict[str, object]:
    """At backup time: the lines of a few streams over the last hour, and when."""
    end_ns = int(ask.window[1] * 1e9)
    lines, streams, why = _lines(ask, ANY_STREAM, end_ns)
    if lines is None:
        raise ValueError(why)
    names = set()
    for stream in streams:
        labels = stream.get("stream")
        if isinstance(labels, dict) and isinstance(labels.get("service_name"), str):
            names.add(labels["service_name"][:200])
    recorded = []
    for name in sorted(names)[:MAX_STREAMS]:
        count, _, why = _lines(ask, _selector(name), end_ns)
        if count is None:
            raise ValueError(why)
        recorded.append({"service_name": name, "lines": count})
    return {"lines_end_ns": end_ns, "streams": recorded}


def _recorded(ask: DrillAsk) -> tuple[int | None, list[tuple[str, int]], str]:
    """(end, [(service_name, lines)], why unusable) of what the backup recorded."""
    keys = ("lines_end_ns", "streams", "service_name", "lines")
    return recorded_rows(
        ask.facts, ask.window, keys=keys, max_rows=MAX_STREAMS, max_count=RECORD_LIMIT, max_name=200
    )


def drill(ask: DrillAsk) -> tuple[Check, ...]:
    """Loki answers, and holds every line of the streams the backup recorded."""
    end_ns, recorded, bad = _recorded(ask)
    if bad:
        return (Check("loki", "query", False, f"the backup's record is unusable: {bad}"),)
    if end_ns is None or not recorded:
        lines, _, error = _lines(ask, ANY_STREAM, int(ask.window[1] * 1e9))
        if lines is None:
            return (Check("loki", "query", False, f"cannot tell: {error}"),)
        detail = "Loki answers; the backup recorded no log lines: nothing to compare"
        return (Check("loki", "query", True, detail),)
    present: dict[str, int] = {}
    for name, _ in recorded:
        has, _, error = _lines(ask, _selector(name), end_ns)
        if has is None:
            return (Check("loki", "query", False, f"cannot tell: {error}"),)
        present[name] = has
    verdict = compare_recorded(
        "loki",
        recorded,
        present,
        rows="streams",
        units="lines",
        every="every line of",
        label=lambda name: f"service_name {name[:60]!r}",
    )
    return (verdict,)


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
    drill=Drill(drill, record),  # no http_client: the image has no shell and no wget
)
