"""Grafana: dashboards. Everything monctl knows about it.

Readiness: ``/api/health`` is JSON with ``database`` "ok" (503 when its
database fails). Reload: the provisioning API (dashboards, datasources,
alerting) with the admin credentials from ``.env`` — which apply only when
Grafana first starts on an empty volume. Grafana ships no offline checker for
its provisioning files, so the checks here stand in for one (``validate``
reports them; ``reload`` refuses while one fails). Backup: paused for the copy
(Grafana's own advice: a live copy of ``grafana.db`` can be torn). Runs as 472.
Drill: the backup records the dashboards Grafana lists; the restored Grafana's
database must open and list every one of them again.
"""

from __future__ import annotations

import json
from pathlib import Path

from monctl.config.problems import Problem, line_of, relative_name
from monctl.services.answers import Check, DrillAsk, Fetched, Role, Verdict
from monctl.services.model import (
    BUSYBOX_WGET,
    ConfigMount,
    DataVolume,
    Drill,
    HostCheck,
    Pause,
    Probe,
    ProvisioningReload,
    Service,
)


def read_health(f: Fetched, role: Role) -> Verdict:
    """JSON ``{"database": "ok"|...}``; 503 when the database fails."""
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


GRAFANA_PROVISIONING = "config/grafana/provisioning"
GRAFANA_DASHBOARDS = "config/grafana/dashboards"


def check_dashboards(root: Path) -> tuple[list[Problem], int]:
    """(problems, files read): each dashboard is a JSON object; uids are unique."""
    problems: list[Problem] = []
    seen: dict[str, str] = {}
    files = sorted((root / GRAFANA_DASHBOARDS).rglob("*.json"))
    for path in files:
        rel = relative_name(path, root)
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            problems.append(
                Problem(rel, exc.lineno, f"invalid JSON: {exc.msg} (column {exc.colno})")
            )
            continue
        if not isinstance(doc, dict):
            problems.append(Problem(rel, 1, "a dashboard must be a JSON object"))
            continue
        uid = doc.get("uid")
        if isinstance(uid, str) and uid:
            if uid in seen:
                problems.append(
                    Problem(
                        rel, line_of(text, "uid", uid), f"uid {uid!r} is also used by {seen[uid]}"
                    )
                )
            seen.setdefault(uid, rel)
    return problems, len(files)


def check_provisioning(root: Path) -> tuple[list[Problem], int]:
    """(problems, files read): YAML syntax; unique datasource uids; exactly one default."""
    import yaml

    problems: list[Problem] = []
    defaults: list[tuple[str, int | None, str]] = []
    uids: dict[str, str] = {}
    files = sorted(
        p for p in (root / GRAFANA_PROVISIONING).rglob("*") if p.suffix in (".yml", ".yaml")
    )
    datasources = 0
    for path in files:
        rel = relative_name(path, root)
        text = path.read_text(encoding="utf-8", errors="replace")
        try:
            doc = yaml.safe_load(text)
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            problems.append(
                Problem(rel, mark.line + 1 if mark else None, f"invalid YAML: {exc.problem}")
            )
            continue
        except yaml.YAMLError as exc:
            problems.append(Problem(rel, None, f"invalid YAML: {exc}"))
            continue
        entries = doc.get("datasources") if isinstance(doc, dict) else None
        for ds in entries if isinstance(entries, list) else []:
            if not isinstance(ds, dict):
                continue
            datasources += 1
            name = str(ds.get("name", "?"))
            if ds.get("isDefault") is True:
                defaults.append((rel, line_of(text, "name", name), name))
            uid = ds.get("uid")
            if isinstance(uid, str) and uid:
                if uid in uids:
                    line = line_of(text, "uid", uid)
                    problems.append(
                        Problem(rel, line, f"datasource uid {uid!r} is also used in {uids[uid]}")
                    )
                uids.setdefault(uid, rel)
    if datasources and len(defaults) != 1:
        if defaults:
            for rel, line, name in defaults[1:]:
                problems.append(
                    Problem(rel, line, f"datasource {name!r} is a second default (isDefault: true)")
                )
        else:
            problems.append(
                Problem(None, None, "no datasource has isDefault: true (exactly one must)")
            )
    return problems, len(files)


USER_VAR = "GRAFANA_ADMIN_USER"
PASSWORD_VAR = "GRAFANA_ADMIN_PASSWORD"
# A manifest stays small: at most this many dashboard uids are recorded.
MAX_RECORDED = 2000


def _dashboards(ask: DrillAsk) -> tuple[list[str] | None, str]:
    """The uids of every dashboard Grafana lists (``/api/search``, admin credentials
    from .env), or None and why not."""
    auth = (ask.setting(USER_VAR, "admin"), ask.setting(PASSWORD_VAR, ""))
    f = ask.get("/api/search", {"type": "dash-db", "limit": "5000"}, auth)
    if f.status == 401:
        return None, "Grafana refused the admin credentials from .env (GRAFANA_ADMIN_PASSWORD)"
    if f.status != 200:
        return None, f"/api/search: {f.error or f'answered {f.status}'}"
    try:
        hits = json.loads(f.text)
    except ValueError:
        return None, "/api/search answered malformed JSON"
    if not isinstance(hits, list):
        return None, "/api/search did not answer a list"
    return sorted({str(h["uid"]) for h in hits if isinstance(h, dict) and h.get("uid")}), ""


def record(ask: DrillAsk) -> dict[str, object]:
    """At backup time: the dashboards Grafana lists, for the drill to find again."""
    uids, why = _dashboards(ask)
    if uids is None:
        raise ValueError(why)
    return {"dashboards": uids[:MAX_RECORDED], "dashboard_count": len(uids)}


def drill(ask: DrillAsk) -> tuple[Check, ...]:
    """The database opens (``/api/health``) and lists the dashboards the backup had."""
    verdict = read_health(ask.get("/api/health"), "readiness")
    database = Check("grafana", "database", verdict.ok, verdict.detail or "database ok")
    uids, why = _dashboards(ask)
    if uids is None:
        return database, Check("grafana", "dashboards", False, why)
    expected = [str(u) for u in ask.facts.get("dashboards") or []]
    missing = [u for u in expected if u not in uids]
    if missing:
        shown = ", ".join(missing[:5]) + (" …" if len(missing) > 5 else "")
        detail = f"{len(missing)} of the {len(expected)} dashboards the backup had are missing: "
        return database, Check("grafana", "dashboards", False, detail + shown)
    if not ask.facts:
        detail = f"{len(uids)} dashboards (the backup recorded none to compare with)"
    else:
        detail = f"{len(uids)} dashboards, every one of the {len(expected)} the backup had"
    return database, Check("grafana", "dashboards", True, detail)


SERVICE = Service(
    name="grafana",
    title="Grafana",
    role="dashboards",
    container_port=3000,
    port_var="GRAFANA_PORT",
    default_port=3001,
    image_var="GRAFANA_IMAGE",
    liveness=Probe("/healthz"),
    readiness=Probe("/api/health", read_health),
    config=ConfigMount("config/grafana", "/etc/grafana"),
    checks=(
        HostCheck("provisioning", check_provisioning),
        HostCheck("dashboards", check_dashboards),
    ),
    reload=ProvisioningReload(
        "/api/admin/provisioning/{part}/reload",
        ("dashboards", "datasources", "alerting"),
        user_var=USER_VAR,
        password_var=PASSWORD_VAR,
        credentials_hint="set GRAFANA_ADMIN_PASSWORD in .env to Grafana's current admin password "
        "(or reset it with `grafana cli admin reset-admin-password`)",
    ),
    data=DataVolume("grafana_data", "/var/lib/grafana", 472, 0, Pause()),
    drill=Drill(drill, record),
    http_client=BUSYBOX_WGET,  # the upstream image is Alpine-based
)
