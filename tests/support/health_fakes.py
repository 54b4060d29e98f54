"""Helpers for the health tests: a whole stack answered by respx (fixtures in conftest.py).

``fake_stack`` starts from every service answering its documented healthy
responses (shared/reference/endpoints.md); a test then replaces the one answer
it is about. Docker is kept out of the unit tests (DOCKER_HOST points at a
socket that does not exist), so container state is "unknown" there.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
import respx


def prom_targets(*targets: tuple[str, str, str, str]) -> dict[str, Any]:
    """/api/v1/targets data from (job, instance, health, lastError) tuples."""
    return {
        "status": "success",
        "data": {
            "activeTargets": [
                {
                    "labels": {"job": job, "instance": instance},
                    "scrapePool": job,
                    "health": health,
                    "lastError": error,
                }
                for job, instance, health, error in targets
            ],
            "droppedTargets": [],
        },
    }


HEALTHY_TARGETS = prom_targets(
    ("prometheus", "prometheus:9090", "up", ""),
    ("loki", "loki:3100", "up", ""),
    ("backend", "backend:8000", "up", ""),
    ("backend-export", "backend:8000", "up", ""),
)

HEALTHY_RULES = {
    "status": "success",
    "data": {
        "groups": [
            {
                "name": "backend",
                "rules": [
                    {"name": "BackendDown", "health": "ok", "lastError": "", "type": "alerting"}
                ],
            }
        ]
    },
}

PROM_METRICS = "# TYPE prometheus_config_last_reload_successful gauge\n"
PROM_METRICS += "prometheus_config_last_reload_successful 1\n"
AM_METRICS = "alertmanager_config_last_reload_successful 1\n"
AM_METRICS += 'alertmanager_notifications_total{integration="slack"} 3\n'
AM_METRICS += 'alertmanager_notifications_failed_total{integration="slack"} 0\n'


def text(body: str, status: int = 200, **headers: str) -> httpx.Response:
    return httpx.Response(status, text=body, headers=headers)


def as_json(doc: Any, status: int = 200) -> httpx.Response:
    return httpx.Response(
        status, text=json.dumps(doc), headers={"content-type": "application/json"}
    )


HEALTHY: dict[str, dict[str, httpx.Response]] = {
    "prometheus": {
        "/-/healthy": text("Prometheus Server is Healthy.\n"),
        "/-/ready": text("Prometheus Server is Ready.\n"),
        "/api/v1/targets": as_json(HEALTHY_TARGETS),
        "/api/v1/rules": as_json(HEALTHY_RULES),
        "/metrics": text(PROM_METRICS),
        "/api/v1/alerts": as_json({"status": "success", "data": {"alerts": []}}),
    },
    "alertmanager": {
        "/-/healthy": text("OK"),
        "/-/ready": text("OK"),
        "/metrics": text(AM_METRICS),
        "/api/v2/alerts": as_json([]),
    },
    "grafana": {
        "/healthz": text("Ok"),
        "/api/health": as_json({"database": "ok", "version": "11.3.0", "commit": "abc"}),
    },
    "loki": {"/metrics": text("loki_build_info 1\n"), "/ready": text("ready\n")},
    "promtail": {"/metrics": text("promtail_build_info 1\n"), "/ready": text("Ready")},
    "node-exporter": {"/metrics": text("node_load1 0.5\n")},
    "cadvisor": {"/healthz": text("ok")},
    "postgres-exporter": {"/metrics": text("# TYPE pg_up gauge\npg_up 1\n")},
}


class FakeStack:
    """Every declared service at http://<name>.test, answered by respx."""

    def __init__(self, router: respx.MockRouter) -> None:
        self.router = router

    @staticmethod
    def host(service: str) -> str:
        return f"{service}.test"

    def url(self, service: str) -> str:
        return f"http://{self.host(service)}"

    def route(self, service: str, path: str) -> respx.Route:
        return self.router.get(host=self.host(service), path=path)

    def answer(self, service: str, path: str, response: httpx.Response) -> respx.Route:
        return self.route(service, path).mock(return_value=response)

    def fail(self, service: str, path: str, error: Exception | Callable[..., Any]) -> respx.Route:
        return self.route(service, path).mock(side_effect=error)

    def refuse(self, service: str) -> None:
        """Every path of ``service``: connection refused."""
        for path in HEALTHY[service]:
            self.fail(service, path, httpx.ConnectError("[Errno 111] Connection refused"))
