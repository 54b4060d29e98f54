"""Trying Prometheus and Alertmanager as an attacker would, and as their users do
(tests/e2e/test_auth.py on compose, tests/e2e/test_swarm.py on Swarm).

``Guarded`` is one stack's Prometheus and Alertmanager as seen from the host, with the
credentials .env holds now; ``refused_everywhere`` sends every harmful request without
credentials (and with wrong ones) and checks that each is refused and nothing changed.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from support import wait_for
from support.engine import docker

USER = "monctl"

# (method, path) that must never work without credentials: each would harm the stack.
PROMETHEUS_HARMFUL = [
    ("POST", "/api/v1/admin/tsdb/delete_series?match[]=up"),
    ("POST", "/api/v1/admin/tsdb/snapshot"),
    ("POST", "/api/v1/admin/tsdb/clean_tombstones"),
    ("POST", "/-/reload"),
    ("POST", "/-/quit"),
]
SILENCE = {
    "matchers": [{"name": "severity", "value": "critical", "isRegex": False, "isEqual": True}],
    "startsAt": "2026-01-01T00:00:00Z",
    "endsAt": "2036-01-01T00:00:00Z",
    "createdBy": "attacker",
    "comment": "shh",
}


@dataclass
class Guarded:
    prometheus: str  # base URLs on the host
    alertmanager: str
    credentials: Callable[[], tuple[str, str]]  # read when used: rotation changes them

    def query(self, promql: str) -> list[dict[str, Any]]:
        response = httpx.get(
            self.prometheus + "/api/v1/query",
            params={"query": promql},
            auth=self.credentials(),
            timeout=15,
        )
        assert response.status_code == 200, response.text
        result: list[dict[str, Any]] = response.json()["data"]["result"]
        return result

    def history(self) -> float:
        """Samples of `up` over the last hour: only grows, unless series are deleted."""
        found = self.query("sum(count_over_time(up[1h]))")
        return float(found[0]["value"][1]) if found else 0.0

    def with_history(self) -> float:
        """Wait until Prometheus has something to lose (a fresh stack has no samples)."""
        return float(wait_for(self.history, 90, "Prometheus' first samples"))

    def silences(self) -> list[dict[str, Any]]:
        response = httpx.get(
            self.alertmanager + "/api/v2/silences", auth=self.credentials(), timeout=15
        )
        assert response.status_code == 200, response.text
        found: list[dict[str, Any]] = response.json()
        return found

    def alert_names(self) -> set[str]:
        response = httpx.get(
            self.alertmanager + "/api/v2/alerts", auth=self.credentials(), timeout=15
        )
        assert response.status_code == 200, response.text
        return {a["labels"]["alertname"] for a in response.json()}

    def refused_everywhere(self) -> None:
        """Every harmful request, without and with wrong credentials: 401, nothing changed."""
        before = self.with_history()
        silences = self.silences()
        for auth in (None, (USER, "not-the-password-at-all")):
            for method, path in PROMETHEUS_HARMFUL:
                answer = httpx.request(method, self.prometheus + path, auth=auth, timeout=15)
                assert answer.status_code == 401, (method, path, answer.status_code, answer.text)
            # Reading is refused too (no partial protection to reason about).
            query = self.prometheus + "/api/v1/query?query=up"
            assert httpx.get(query, auth=auth, timeout=15).status_code == 401
            answer = httpx.post(
                self.alertmanager + "/api/v2/silences", json=SILENCE, auth=auth, timeout=15
            )
            assert answer.status_code == 401, answer.text
            reload = httpx.post(self.alertmanager + "/-/reload", auth=auth, timeout=15)
            assert reload.status_code == 401
        # The data is intact: no sample lost, no silence made, still ready.
        assert self.history() >= before
        assert self.silences() == silences
        ready = httpx.get(self.prometheus + "/-/ready", auth=self.credentials(), timeout=15)
        assert ready.status_code == 200

    def scrapes_itself_and_alertmanager(self) -> None:
        def both_up() -> bool:
            up = {r["metric"]["job"]: r["value"][1] for r in self.query("up")}
            return up.get("prometheus") == "1" and up.get("alertmanager") == "1"

        wait_for(both_up, 120, "Prometheus' authenticated scrapes of itself and Alertmanager")

    def alert_reaches_alertmanager(self, name: str = "APIServiceDown") -> None:
        """No application runs in the tests: APIServiceDown (for: 1m) fires, and
        Prometheus must deliver it to Alertmanager through the authenticated path."""
        wait_for(lambda: name in self.alert_names(), 240, f"{name} in Alertmanager")
        errors = self.query("sum(prometheus_notifications_errors_total)")
        assert errors and float(errors[0]["value"][1]) == 0
        discovered = self.query("prometheus_notifications_alertmanagers_discovered")
        assert discovered and discovered[0]["value"][1] == "1"


# Run inside the Grafana container: the request Grafana's datasource proxy makes for a
# dashboard panel, from the provisioned datasource (url, basicAuthUser and the
# password's $__file{} resolved the way Grafana resolves it: the file's content).
GRAFANA_QUERY = """
import base64, json, sys, urllib.request
url, user, path = sys.argv[1:4]
with open(path) as fh:
    secret = fh.read()
token = base64.b64encode(f"{user}:{secret}".encode()).decode()
request = urllib.request.Request(url + "/api/v1/query?query=up", method="POST")
request.add_header("Authorization", "Basic " + token)
with urllib.request.urlopen(request, timeout=10) as answer:
    print(json.dumps({"status": answer.status, "body": json.load(answer)}))
"""


def grafana_queries_prometheus(root: Path, grafana_container: str) -> None:
    """The Grafana image is a stand-in (it proxies no query): ask, from its container and
    network, exactly what the provisioned datasource says to ask, with what it says."""
    provisioned = root / "config/grafana/provisioning/datasources/datasources.yml"
    sources = {d["uid"]: d for d in yaml.safe_load(provisioned.read_text())["datasources"]}
    for uid in ("prometheus", "alertmanager"):
        assert sources[uid]["basicAuth"] is True and sources[uid]["basicAuthUser"] == USER
    prometheus = sources["prometheus"]
    reference = prometheus["secureJsonData"]["basicAuthPassword"]
    assert reference.startswith("$__file{") and reference.endswith("}")
    path = reference[len("$__file{") : -1]
    ran = docker(
        "exec", grafana_container, "python3", "-c", GRAFANA_QUERY, prometheus["url"], USER, path
    )
    assert ran.code == 0, ran.err
    answer = json.loads(ran.out)
    assert answer["status"] == 200 and answer["body"]["status"] == "success"
    assert answer["body"]["data"]["result"], "no series"
