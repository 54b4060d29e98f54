"""Every PromQL expression of every dashboard panel and every rule, run against
a live Prometheus (Debian's 2.42 binary) that scrapes, every second:

  * real node-exporter (Debian) with the monctl backup textfile fixture,
  * real postgres-exporter (Debian) watching a real PostgreSQL 15 (initdb in a
    temp dir, database residency_scheduler),
  * a real Alertmanager (Debian) with our alertmanager.yml,
  * itself,
  * FIXTURES for the backend (/metrics, /api/v1/metrics/export) and cAdvisor
    (tests/stack/stack_exporters.py), which cannot run here.

The scrape config is config/prometheus/prometheus.yml with its job names and
rules kept and only the targets (and intervals) changed. Every expression must
parse; every dashboard panel (and template variable) must return data; every
metric name a rule uses must exist on the live server.
"""

from __future__ import annotations

import base64
import glob
import json
import os
import pwd
import re
import secrets
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml
from support import free_ports, require, require_binary, wait_for
from support.stack_exporters import (
    FixtureServer,
    backend_export_metrics,
    backend_metrics,
    cadvisor_metrics,
)
from support.stack_files import AM_DIR, GRAFANA_DIR, PROM_DIR, alerting_rules, load_yaml

pytestmark = pytest.mark.binaries
HERE = Path(__file__).resolve().parent
SCRAPE = "1s"
# Grafana's variables, as Grafana would fill them for a short time range with
# 1 s scrapes ($__rate_interval is at least 4 scrape intervals).
GRAFANA_VARIABLES = {
    "$__rate_interval": "10s",
    "$__interval": "2s",
    "$__range": "1m",
    "${__range}": "1m",
    "$__interval_ms": "2000",
}
PROMQL_WORDS = {
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
    "le",
}


@dataclass
class Live:
    url: str
    logs: Path
    password: str  # Prometheus requires the stack's credentials, as in the stack

    def _request(self, url: str) -> urllib.request.Request:
        token = base64.b64encode(f"monctl:{self.password}".encode()).decode()
        return urllib.request.Request(url, headers={"Authorization": f"Basic {token}"})

    def query(self, expr: str) -> tuple[int, dict]:
        url = f"{self.url}/api/v1/query?" + urllib.parse.urlencode({"query": expr})
        try:
            with urllib.request.urlopen(self._request(url), timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(self._request(f"{self.url}{path}"), timeout=10) as r:
            return json.loads(r.read())


def _postgres_bin(name: str) -> str:
    found = sorted(glob.glob(f"/usr/lib/postgresql/*/bin/{name}"), reverse=True)
    return require_binary(*(found or []), name)


@pytest.fixture(scope="module")
def live() -> Iterator[Live]:
    prometheus = require_binary("prometheus")
    node_exporter = require_binary("node_exporter", "prometheus-node-exporter")
    pg_exporter = require_binary("prometheus-postgres-exporter", "postgres_exporter")
    alertmanager = require_binary("alertmanager", "prometheus-alertmanager")
    initdb, postgres = _postgres_bin("initdb"), _postgres_bin("postgres")
    psql = _postgres_bin("psql")

    work = Path(tempfile.mkdtemp(prefix="monctl-live-"))
    logs = work / "logs"
    logs.mkdir()
    procs: list[subprocess.Popen[bytes]] = []

    def start(name: str, argv: list[str], env: dict[str, str] | None = None) -> None:
        log = (logs / f"{name}.log").open("wb")
        procs.append(
            subprocess.Popen(
                argv, stdout=log, stderr=subprocess.STDOUT, env={**os.environ, **(env or {})}
            )
        )

    # PostgreSQL refuses to run as root: run it as the postgres user then.
    as_user: list[str] = []
    pgdata = work / "pgdata"
    if os.geteuid() == 0:
        try:
            pw = pwd.getpwnam("postgres")
        except KeyError:
            require(False, "running as root and there is no postgres user for PostgreSQL")
        as_user = [require_binary("runuser"), "-u", "postgres", "--"]
        os.chmod(work, 0o755)
        pgdata.mkdir(mode=0o700)
        os.chown(pgdata, pw.pw_uid, pw.pw_gid)
    pg_port = free_ports()[0]
    try:
        subprocess.run(
            [*as_user, initdb, "-D", str(pgdata), "-U", "postgres", "--auth=trust", "--no-sync"],
            check=True,
            capture_output=True,
            timeout=120,
        )
        start(
            "postgres",
            [
                *as_user,
                postgres,
                "-D",
                str(pgdata),
                "-p",
                str(pg_port),
                "-c",
                "listen_addresses=127.0.0.1",
                "-k",
                str(pgdata),
                "-c",
                "fsync=off",
            ],
        )

        def sql(statement: str) -> subprocess.CompletedProcess[bytes]:
            argv = [psql, "-h", "127.0.0.1", "-p", str(pg_port), "-U", "postgres"]
            return subprocess.run([*argv, "-c", statement], capture_output=True, check=False)

        wait_for(lambda: sql("select 1").returncode == 0, 30, "PostgreSQL", logs)
        created = sql("CREATE DATABASE residency_scheduler")
        assert created.returncode == 0, created.stderr

        ports = {
            n: free_ports()[0] for n in ("node", "pg_exporter", "am", "backend", "cadvisor", "prom")
        }
        textfile = work / "textfile"
        textfile.mkdir()
        shutil.copy(HERE / "fixtures" / "monctl_backup.prom", textfile / "monctl_backup.prom")
        start(
            "node-exporter",
            [
                node_exporter,
                f"--web.listen-address=127.0.0.1:{ports['node']}",
                f"--collector.textfile.directory={textfile}",
            ],
        )
        start(
            "postgres-exporter",
            [pg_exporter, f"--web.listen-address=127.0.0.1:{ports['pg_exporter']}"],
            {
                "DATA_SOURCE_NAME": f"postgresql://postgres@127.0.0.1:{pg_port}/residency_scheduler?sslmode=disable"
            },
        )

        # The stack's credentials, as monctl hands them to the containers: the password
        # in a file, the web configuration (bcrypt) beside it.
        from monctl import credentials

        password = secrets.token_urlsafe(24)
        password_file = work / "monitoring_auth_password"
        password_file.write_text(password)
        web_config = work / "web-config.yml"
        web_config.write_text(credentials.web_config(password))

        am_dir = work / "alertmanager"
        shutil.copytree(AM_DIR, am_dir)
        am_yml = am_dir / "alertmanager.yml"
        am_yml.write_text(
            am_yml.read_text()
            .replace("/etc/alertmanager/", f"{am_dir}/")
            .replace("/run/alertmanager-secrets/", f"{am_dir}/")
        )
        start(
            "alertmanager",
            [
                alertmanager,
                f"--config.file={am_yml}",
                f"--storage.path={work / 'am-data'}",
                f"--web.listen-address=127.0.0.1:{ports['am']}",
                "--cluster.listen-address=",
                f"--web.config.file={web_config}",
            ],
        )

        # prometheus.yml, same jobs and rules, targets pointed at the processes above
        config = load_yaml(PROM_DIR / "prometheus.yml")
        assert isinstance(config, dict)
        config["global"].update(
            scrape_interval=SCRAPE, evaluation_interval=SCRAPE, scrape_timeout=SCRAPE
        )
        config["rule_files"] = [str(PROM_DIR / "rules" / "*.yml")]
        config["alerting"]["alertmanagers"][0]["static_configs"] = [
            {"targets": [f"127.0.0.1:{ports['am']}"]}
        ]
        for client in (*config["scrape_configs"], *config["alerting"]["alertmanagers"]):
            if "basic_auth" in client:
                client["basic_auth"]["password_file"] = str(password_file)
        closed = f"127.0.0.1:{free_ports()[0]}"  # grafana, loki, promtail: stand-ins only, not here
        targets = {
            "backend": ports["backend"],
            "backend-export": ports["backend"],
            "prometheus": ports["prom"],
            "alertmanager": ports["am"],
            "node-exporter": ports["node"],
            "cadvisor": ports["cadvisor"],
            "postgres-exporter": ports["pg_exporter"],
        }
        for job in config["scrape_configs"]:
            job.pop("scrape_interval", None)
            job.pop("scrape_timeout", None)
            port = targets.get(job["job_name"])
            for sc in job["static_configs"]:
                sc["targets"] = [f"127.0.0.1:{port}" if port else closed]
        prom_yml = work / "prometheus.yml"
        prom_yml.write_text(yaml.safe_dump(config, sort_keys=False))

        with (
            FixtureServer(
                ports["backend"],
                {"/metrics": backend_metrics, "/api/v1/metrics/export": backend_export_metrics},
            ),
            FixtureServer(ports["cadvisor"], {"/metrics": cadvisor_metrics}),
        ):
            start(
                "prometheus",
                [
                    prometheus,
                    f"--config.file={prom_yml}",
                    f"--storage.tsdb.path={work / 'tsdb'}",
                    f"--web.listen-address=127.0.0.1:{ports['prom']}",
                    "--web.enable-lifecycle",
                    "--web.enable-admin-api",
                    "--storage.tsdb.retention.time=1d",
                    f"--web.config.file={web_config}",
                ],
            )
            server = Live(f"http://127.0.0.1:{ports['prom']}", logs, password)
            wanted = set(targets)

            def all_up() -> bool:
                active = server.get("/api/v1/targets")["data"]["activeTargets"]
                up = {t["labels"]["job"] for t in active if t["health"] == "up"}
                return wanted <= up

            wait_for(all_up, 40, "every reachable scrape target to be up", logs)
            # enough samples for rate() over $__rate_interval, and rules evaluated
            time.sleep(6)
            yield server
    finally:
        for p in reversed(procs):
            p.terminate()
        for p in procs:
            try:
                p.wait(timeout=15)
            except subprocess.TimeoutExpired:
                p.kill()
        shutil.rmtree(work, ignore_errors=True)


def _substitute(expr: str, variables: list[str]) -> str:
    for key, value in GRAFANA_VARIABLES.items():
        expr = expr.replace(key, value)
    for name in variables:  # template variables: "All" is the regex .*
        expr = re.sub(rf"\$\{{{name}(:[a-z]+)?\}}|\${name}\b|\[\[{name}\]\]", ".*", expr)
    assert "$" not in expr, f"unsubstituted variable in {expr}"
    return expr


def _dashboard_queries() -> list[tuple[str, str, str]]:
    """(dashboard uid, panel title / variable, expression) for every query."""
    out = []
    for path in sorted((GRAFANA_DIR / "dashboards").glob("*.json")):
        d = json.loads(path.read_text(encoding="utf-8"))
        variables = [v["name"] for v in d.get("templating", {}).get("list", [])]
        for v in d.get("templating", {}).get("list", []):
            if v.get("type") == "query":
                q = v["query"]["query"] if isinstance(v["query"], dict) else v["query"]
                m = re.fullmatch(r"label_values\((.+),\s*\w+\)", q.strip())
                out.append(
                    (
                        d["uid"],
                        f"variable ${v['name']}",
                        _substitute(m.group(1) if m else q, variables),
                    )
                )
        panels = [p for p in d["panels"]] + [c for p in d["panels"] for c in p.get("panels", [])]
        for panel in panels:
            for t in panel.get("targets", []):
                if t.get("expr"):
                    out.append(
                        (
                            d["uid"],
                            f"{panel['title']} [{t['refId']}]",
                            _substitute(t["expr"], variables),
                        )
                    )
    return out


def test_every_dashboard_query_returns_data(live: Live) -> None:
    queries = _dashboard_queries()
    assert len(queries) > 40
    failures = []
    for uid, panel, expr in queries:
        status, body = live.query(expr)
        if status != 200 or body.get("status") != "success":
            failures.append(f"{uid} / {panel}: HTTP {status} {body.get('error')}\n    {expr}")
        elif not body["data"]["result"]:
            failures.append(f"{uid} / {panel}: no data\n    {expr}")
    assert not failures, (
        f"{len(failures)} of {len(queries)} dashboard queries failed:\n" + "\n".join(failures)
    )


def test_every_rule_expression_parses_and_rules_load(live: Live) -> None:
    failures = []
    for path, rule in alerting_rules():
        status, body = live.query(rule["expr"])
        if status != 200 or body.get("status") != "success":
            failures.append(f"{path.name} / {rule['alert']}: HTTP {status} {body.get('error')}")
    assert not failures, "\n".join(failures)
    groups = live.get("/api/v1/rules")["data"]["groups"]
    loaded = [r for g in groups for r in g["rules"]]
    assert len(loaded) == len(alerting_rules())
    unhealthy = [f"{r['name']}: {r.get('lastError')}" for r in loaded if r.get("health") != "ok"]
    assert not unhealthy, unhealthy


def _metric_names(expr: str) -> set[str]:
    text = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # strings
    text = re.sub(r"\{[^}]*\}", " ", text)  # label matchers
    text = re.sub(r"\[[^\]]*\]", " ", text)  # ranges
    text = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", text)
    names = set()
    for m in re.finditer(r"(?<![\w.])([a-zA-Z_:][\w:]*)\b(?!\s*\()", text):
        word = m.group(1)
        if word.lower() not in PROMQL_WORDS and not re.fullmatch(r"\d+[smhdwy]", word):
            names.add(word)
    return names


def test_every_metric_a_rule_uses_exists(live: Live) -> None:
    """Guards against alerts on metrics nobody exposes (the old stack's mistake):
    every metric name in every rule is served by a real exporter or a fixture."""
    known = set(live.get("/api/v1/label/__name__/values")["data"])
    unknown = {}
    for _, rule in alerting_rules():
        names = _metric_names(rule["expr"])
        assert names, rule["alert"]
        if names - known:
            unknown[rule["alert"]] = sorted(names - known)
    assert not unknown, f"rules use metrics that no scraped component serves: {unknown}"
