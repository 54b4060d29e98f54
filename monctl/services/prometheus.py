"""Prometheus: the metrics store and rule evaluator. Everything monctl knows about it.

Readiness: ``/-/ready`` answers 503 while Prometheus starts or stops (the
``X-Prometheus-Stopping`` header tells which). Deep checks: its scrape targets
(split into the application it watches and the stack itself), rule
evaluation, the last config reload, and the alerts firing. Reload:
``promtool check`` first, then ``POST /-/reload`` (needs
``--web.enable-lifecycle``), confirmed by its reload metrics. Backup: a TSDB
snapshot (needs ``--web.enable-admin-api``), which is hard links inside the
volume and must be deleted afterwards. Drill: the backup records how many samples a
few series (``up``, one per target) held over the hour before it; the restored
Prometheus must hold at least as many at the same instant (none recorded: nothing
to compare, it only has to answer).
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Mapping
from typing import Any

from monctl.services import application
from monctl.services.answers import (
    Check,
    DeepResult,
    DrillAsk,
    Fetch,
    Fetched,
    Role,
    Target,
    TargetState,
    Verdict,
    compare_recorded,
    count_severity,
    json_data,
    recorded_rows,
    reload_check,
    status_200,
)
from monctl.services.model import (
    BUSYBOX_WGET,
    ConfigMount,
    DataVolume,
    Drill,
    HttpReload,
    Layout,
    Probe,
    ReloadMetrics,
    ScrapeTargets,
    Service,
    Snapshot,
    ToolCheck,
)

RELOAD_METRICS = ReloadMetrics(
    ok="prometheus_config_last_reload_successful",
    timestamp="prometheus_config_last_reload_success_timestamp_seconds",
)


def read_ready(f: Fetched, role: Role) -> Verdict:
    """200 ready; 503 = starting or stopping (not ready), with the phase."""
    if f.status == 200:
        return Verdict("ok")
    if f.status == 503:
        # Prometheus 3 sends the header in both phases ("false" while starting); 2.x only
        # when stopping ("true")
        stopping = f.headers.get("x-prometheus-stopping", "").strip().lower() == "true"
        phase = "stopping" if stopping else "starting"
        return Verdict("not ready", f"{phase} (503 {f.excerpt()})".replace(" )", ")"))
    return status_200(f, role)


def split_targets(data: object) -> tuple[list[Target], list[Target]]:
    """Prometheus' active targets split into (watched application targets, stack targets)."""
    from monctl.redaction import redact

    watched: list[Target] = []
    stack: list[Target] = []
    active = data.get("activeTargets", []) if isinstance(data, dict) else []
    for t in active if isinstance(active, list) else []:
        if not isinstance(t, dict):
            continue
        labels = t.get("labels") or {}
        job = str(labels.get("job") or t.get("scrapePool") or "?")
        instance = str(labels.get("instance") or t.get("scrapeUrl") or "?")
        health = t.get("health")
        state: TargetState = health if health in ("up", "down") else "unknown"
        detail = redact(str(t.get("lastError") or "")) if state == "down" else ""
        if state == "unknown":
            detail = "not scraped yet"
        target = Target(job, state, detail, job, instance, "prometheus")
        (watched if job in application.WATCHED_JOBS else stack).append(target)
    return watched, stack


TARGETS_PATH = "/api/v1/targets?state=active"
# Where `validate --local` finds promtool when it is missing.
PROMTOOL = "Debian/Ubuntu package prometheus, or the prom/prometheus image"


def read_targets(f: Fetched) -> list[Target] | None:
    """Every active target (job, instance, state, last error); None when the
    answer is not the targets API's."""
    data, error = json_data(f)
    if error or not isinstance(data, dict):
        return None
    watched, stack = split_targets(data)
    return watched + stack


def _targets_check(f: Fetched) -> tuple[Check, list[Target]]:
    data, error = json_data(f)
    watched, stack = split_targets(data)
    if error:
        return Check("prometheus", "scrape targets", False, f"cannot tell: {error}"), watched
    down = [t for t in stack if t.state == "down"]
    if down:
        named = "; ".join(f"{t.job} ({t.instance}: {t.detail or 'down'})" for t in down)
        return Check("prometheus", "scrape targets", False, f"down: {named}"), watched
    pending = sum(t.state == "unknown" for t in stack)
    note = f", {pending} not scraped yet" if pending else ""
    detail = f"{len(stack) - pending} stack targets up{note}"
    return Check("prometheus", "scrape targets", True, detail), watched


def _rules_check(f: Fetched) -> Check:
    from monctl.redaction import redact

    data, error = json_data(f)
    if error:
        return Check("prometheus", "rule evaluation", False, f"cannot tell: {error}")
    groups = data.get("groups", []) if isinstance(data, dict) else []
    rules = [r for g in groups if isinstance(g, dict) for r in g.get("rules", [])]
    failing = [r for r in rules if isinstance(r, dict) and r.get("health") == "err"]
    detail = "; ".join(f"{r.get('name')}: {r.get('lastError', '')}" for r in failing)
    return Check(
        "prometheus",
        "rule evaluation",
        not failing,
        redact(detail) or f"{len(rules)} rules evaluating",
    )


async def deep(fetch: Fetch, base: str) -> DeepResult:
    """Scrape targets (watched vs stack), rule health, last reload, firing alerts."""
    targets_f, rules_f, metrics_f, alerts_f = await asyncio.gather(
        fetch(f"{base}{TARGETS_PATH}"),
        fetch(f"{base}/api/v1/rules"),
        fetch(f"{base}/metrics"),
        fetch(f"{base}/api/v1/alerts"),
    )
    targets, watched = _targets_check(targets_f)
    checks = [
        targets,
        _rules_check(rules_f),
        reload_check("prometheus", metrics_f, RELOAD_METRICS.ok),
    ]
    data, error = json_data(alerts_f)
    alerts = None
    if not error and isinstance(data, dict):
        firing = [
            a.get("labels") or {}
            for a in data.get("alerts", [])
            if isinstance(a, dict) and a.get("state") == "firing"
        ]
        alerts = count_severity(firing)
    return DeepResult(tuple(checks), tuple(watched), alerts, alerts_rank=1)


# What a backup records for the drill (``record``) and the drill compares with: how many
# samples each series of ``up`` (one per scrape target: every Prometheus that scrapes has
# them) held over the hour before the record. The snapshot taken just after holds every
# one of them, so a restore that works holds at least as many, at the same instant.
RECORD_QUERY = "count_over_time(up[1h])"
MAX_RECORDED = 20  # series: a manifest stays small
MAX_SAMPLES = 10**9  # a recorded count beyond this is not one


def _series(labels: Mapping[str, Any]) -> str:
    """A series as text, its labels sorted: ``{instance="…",job="…"}``."""
    pairs = sorted((str(k), str(v)) for k, v in labels.items())
    return ("{" + ",".join(f'{k}="{v}"' for k, v in pairs) + "}")[:300]


def _samples(ask: DrillAsk, at_ns: int) -> tuple[dict[str, int] | None, str]:
    """Samples per series of ``RECORD_QUERY`` at ``at_ns``, or None and why not."""
    params = {"query": RECORD_QUERY, "time": f"{at_ns / 1e9:.3f}"}
    data, error = json_data(ask.get("/api/v1/query", params))
    if error:
        return None, error
    result = data.get("result") if isinstance(data, dict) else None
    if not isinstance(result, list):
        return None, "/api/v1/query did not answer a vector"
    counts: dict[str, int] = {}
    for row in result:
        if not isinstance(row, dict) or not isinstance(row.get("metric"), dict):
            continue
        with contextlib.suppress(TypeError, ValueError, IndexError, KeyError, OverflowError):
            counts[_series(row["metric"])] = int(float(row["value"][1]))
    return counts, ""


def record(ask: DrillAsk) -> dict[str, object]:
    """At backup time: the samples of a few series over the last hour, and when."""
    at_ns = int(ask.window[1] * 1e9)
    counts, why = _samples(ask, at_ns)
    if counts is None:
        raise ValueError(why)
    chosen = sorted(counts.items())[:MAX_RECORDED]
    return {"samples_at_ns": at_ns, "series": [{"series": k, "samples": n} for k, n in chosen]}


def _recorded(ask: DrillAsk) -> tuple[int | None, list[tuple[str, int]], str]:
    """(when, [(series, samples)], why unusable) of what the backup recorded."""
    keys = ("samples_at_ns", "series", "series", "samples")
    return recorded_rows(
        ask.facts,
        ask.window,
        keys=keys,
        max_rows=MAX_RECORDED,
        max_count=MAX_SAMPLES,
        max_name=4096,
    )


def drill(ask: DrillAsk) -> tuple[Check, ...]:
    """Prometheus answers, and holds every sample of the series the backup recorded."""
    at_ns, recorded, bad = _recorded(ask)
    if bad:
        return (Check("prometheus", "query", False, f"the backup's record is unusable: {bad}"),)
    counts, error = _samples(ask, at_ns if at_ns is not None else int(ask.window[1] * 1e9))
    if counts is None:
        return (Check("prometheus", "query", False, f"cannot tell: {error}"),)
    if at_ns is None or not recorded:
        detail = "Prometheus answers; the backup recorded no series: nothing to compare"
        return (Check("prometheus", "query", True, detail),)
    verdict = compare_recorded(
        "prometheus", recorded, counts, rows="series", units="samples", every="every one of"
    )
    return (verdict,)


# Every entry of a snapshot as "<mode hex> <size> <mtime> <path>", without reading it.
LISTING = ("find", "{path}", "-mindepth", "1", "-exec",
           "stat", "-c", "%f %s %Y %n", "{}", "+")  # fmt: skip

SERVICE = Service(
    name="prometheus",
    title="Prometheus",
    role="metrics store, rule evaluation",
    container_port=9090,
    port_var="PROMETHEUS_PORT",
    default_port=9090,
    image_var="PROMETHEUS_IMAGE",
    liveness=Probe("/-/healthy"),
    readiness=Probe("/-/ready", read_ready),
    deep=deep,
    scrapes=ScrapeTargets(TARGETS_PATH, read_targets),
    config=ConfigMount("config/prometheus", "/etc/prometheus"),
    checks=(
        ToolCheck(
            "config",
            ("promtool", "check", "config"),
            "config/prometheus/prometheus.yml",
            ran=("Checking",),
            provided_by=PROMTOOL,
            # --local reads host files: rule globs in the config are container
            # paths (matching the HOST's /etc/prometheus), so skip them there;
            # the rules are checked on their own by the "rules" check.
            local_argv=("promtool", "check", "config", "--syntax-only"),
            gates_reload=True,
            runtime="compose",
        ),
        ToolCheck(
            "swarm config",
            ("promtool", "check", "config"),
            "config/prometheus/prometheus-swarm.yml",
            ran=("Checking",),
            provided_by=PROMTOOL,
            local_argv=("promtool", "check", "config", "--syntax-only"),
            gates_reload=True,
            runtime="swarm",
        ),
        ToolCheck(
            "rules",
            ("promtool", "check", "rules"),
            "config/prometheus/rules/*.y*ml",
            ran=("Checking",),
            provided_by=PROMTOOL,
        ),
        ToolCheck(
            "rule tests",
            ("promtool", "test", "rules"),
            "config/prometheus/tests/*.y*ml",
            # promtool 2.x heads each file with "Unit Testing:"; 3.x prints only its verdict
            ran=("Unit Testing", "SUCCESS", "FAILED"),
            provided_by=PROMTOOL,
        ),
    ),
    reload=HttpReload(
        "/-/reload",
        confirm=RELOAD_METRICS,
        off_status=403,
        off_reason="its lifecycle API is off",
        off_hint="add --web.enable-lifecycle to the prometheus `command:` in "
        "compose/docker-compose.monitoring.yml, then `monctl up prometheus`",
    ),
    data=DataVolume(
        "prometheus_data",
        "/prometheus",
        65534,
        65534,
        Snapshot(
            "/api/v1/admin/tsdb/snapshot",
            "snapshots",
            off_status=503,
            off_hint="start Prometheus with --web.enable-admin-api (the compose file does)",
        ),
        # A snapshot holds only blocks, each a directory named by its ULID, written
        # once (compaction replaces a block by a new one, under a new ULID); its
        # chunk segments are compressed already. The image is busybox-based:
        # find and stat list a snapshot without reading it.
        Layout(
            units=r"[0-9A-HJKMNP-TV-Z]{26}",
            compressed=("*/chunks/*",),
            listing=LISTING,
        ),
    ),
    drill=Drill(drill, record),
    # The upstream image (and the test image) is busybox-based: wget and sleep.
    http_client=BUSYBOX_WGET,
    basic_auth=True,  # --web.config.file: the stack's credentials (monctl.credentials)
)
