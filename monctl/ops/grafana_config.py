"""Grafana's provisioning YAML and dashboard JSON, checked on the host with Python.

Grafana ships no offline checker, so these checks stand in for one. Two
commands use them: ``monctl validate`` reports every problem found, and
``monctl reload grafana`` refuses to touch Grafana while a dashboard's JSON is
broken (``dashboard_problems``). Each check returns the problems found (file
and line, relative to the project root) and how many files it read.
"""

from __future__ import annotations

from pathlib import Path

from monctl.ops.config_problems import Problem, line_of, relative_name

GRAFANA_PROVISIONING = "config/grafana/provisioning"
GRAFANA_DASHBOARDS = "config/grafana/dashboards"


def dashboard_problems(root: Path) -> list[Problem]:
    """JSON syntax problems and duplicate uids in the dashboards Grafana provisions."""
    return check_dashboards(root)[0]


def check_dashboards(root: Path) -> tuple[list[Problem], int]:
    """(problems, files read): each dashboard is a JSON object; uids are unique."""
    import json

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
