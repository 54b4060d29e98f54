"""Fixture exporters for what cannot run on the CI machine: the Residency
Scheduler backend (/metrics and /api/v1/metrics/export, following
shared/reference/backend-contract.md) and cAdvisor (/metrics, container_*).

These are FIXTURES, not the real programs: they serve the metric names and
label sets the real ones publish, with counters that grow on every scrape so
rate() and increase() have data. They prove that queries match those names,
not how the real programs behave.
"""

from __future__ import annotations

import http.server
import threading
from collections.abc import Callable

Series = dict[str, str]


class _Registry:
    def __init__(self) -> None:
        self.lines: list[str] = []

    def family(self, name: str, kind: str, help_text: str) -> None:
        self.lines += [f"# HELP {name} {help_text}", f"# TYPE {name} {kind}"]

    def sample(self, name: str, labels: Series, value: float) -> None:
        inner = ",".join(f'{k}="{v}"' for k, v in labels.items())
        self.lines.append(f"{name}{{{inner}}} {value}" if inner else f"{name} {value}")

    def histogram(
        self, name: str, labels: Series, buckets: list[float], n: int, spread: float
    ) -> None:
        """``n`` observations so far, spread over the buckets (the slowest ``spread`` share
        lands above the second bucket)."""
        for i, le in enumerate(buckets):  # cumulative: n/2, n*(1-spread), then n
            count = int(n * 0.5) if i == 0 else int(n * (1 - spread)) if i == 1 else n
            self.sample(f"{name}_bucket", {**labels, "le": repr(le)}, count)
        self.sample(f"{name}_bucket", {**labels, "le": "+Inf"}, n)
        self.sample(f"{name}_sum", labels, n * 0.3)
        self.sample(f"{name}_count", labels, n)

    def summary(self, name: str, labels: Series, n: int, avg: float) -> None:
        self.sample(f"{name}_sum", labels, n * avg)
        self.sample(f"{name}_count", labels, n)

    def text(self) -> bytes:
        return ("\n".join(self.lines) + "\n").encode()


HANDLERS = ["/api/v1/schedules", "/api/v1/residents", "/api/v1/auth/login"]


def backend_metrics(k: int) -> bytes:
    """GET /metrics of the backend (prometheus-fastapi-instrumentator + custom), scrape ``k``."""
    r = _Registry()
    r.family(
        "http_requests_total", "counter", "Total number of requests by method, status and handler."
    )
    for h in HANDLERS:
        for method in ("GET", "POST"):
            for status, per in (("2xx", 20), ("4xx", 2), ("5xx", 1)):
                r.sample(
                    "http_requests_total",
                    {"handler": h, "method": method, "status": status},
                    per * k,
                )
    r.family(
        "http_request_duration_seconds", "histogram", "Latency with only few buckets by handler."
    )
    for h in HANDLERS:
        for method in ("GET", "POST"):
            r.histogram(
                "http_request_duration_seconds",
                {"handler": h, "method": method},
                [0.1, 0.5, 1.0],
                23 * k,
                0.05,
            )
    r.family(
        "http_request_duration_highr_seconds",
        "histogram",
        "Latency with many buckets but no labels.",
    )
    r.histogram(
        "http_request_duration_highr_seconds",
        {},
        [0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0],
        138 * k,
        0.03,
    )
    for name in ("http_request_size_bytes", "http_response_size_bytes"):
        r.family(name, "summary", "Content length of requests/responses.")
        for h in HANDLERS:
            r.summary(name, {"handler": h}, 46 * k, 512.0)
    r.family("http_requests_inprogress", "gauge", "Number of HTTP requests in progress.")
    for h in HANDLERS:
        r.sample("http_requests_inprogress", {"handler": h, "method": "GET"}, k % 3)
    r.family(
        "schedule_generation_total", "counter", "Schedule generations by algorithm and outcome."
    )
    for algo in ("greedy", "cp_sat"):
        r.sample("schedule_generation_total", {"algorithm": algo, "outcome": "success"}, 2 * k)
        r.sample("schedule_generation_total", {"algorithm": algo, "outcome": "failure"}, k // 4)
    r.family("schedule_generation_duration_seconds", "histogram", "Schedule generation time.")
    for algo in ("greedy", "cp_sat"):
        r.histogram(
            "schedule_generation_duration_seconds",
            {"algorithm": algo},
            [1.0, 5.0, 30.0, 120.0],
            2 * k,
            0.1,
        )
    r.family("schedule_assignments_total", "counter", "Assignments made by generated schedules.")
    for algo in ("greedy", "cp_sat"):
        r.sample("schedule_assignments_total", {"algorithm": algo}, 40 * k)
    r.family(
        "schedule_violations_total",
        "counter",
        "Constraint violations found in generated schedules.",
    )
    for vt in ("duty_hours_80", "one_in_seven", "supervision_ratio"):
        r.sample("schedule_violations_total", {"violation_type": vt}, k)
    r.family("auth_tokens_issued_total", "counter", "Tokens issued.")
    for tt in ("access", "refresh"):
        r.sample("auth_tokens_issued_total", {"token_type": tt}, 3 * k)
    r.family("auth_verification_failures_total", "counter", "Token verification failures.")
    for reason in ("expired", "invalid_signature"):
        r.sample("auth_verification_failures_total", {"reason": reason}, k)
    r.family("idempotency_requests_total", "counter", "Idempotency key lookups.")
    for outcome in ("new", "replayed", "conflict"):
        r.sample("idempotency_requests_total", {"outcome": outcome}, k)
    # resilience_* gauges (utilization, coverage, defense level): exact names illustrative
    for name in ("resilience_utilization", "resilience_coverage", "resilience_defense_level"):
        r.family(name, "gauge", "Resilience indicator.")
        r.sample(name, {}, 0.5 + (k % 5) / 10)
    return r.text()


def backend_export_metrics(k: int) -> bytes:
    """GET /api/v1/metrics/export of the backend (its second registry), scrape ``k``."""
    r = _Registry()
    r.family("acgme_violations_total", "counter", "ACGME violations detected by type.")
    for vt in ("duty_hours_80", "one_in_seven", "continuous_duty_24"):
        r.sample("acgme_violations_total", {"violation_type": vt}, k // 2)
    r.family("acgme_compliance_score", "gauge", "ACGME compliance score by rule.")
    for rule in ("duty_hours_80", "one_in_seven", "continuous_duty_24"):
        r.sample("acgme_compliance_score", {"rule": rule}, 0.97)
    r.family("acgme_validation_duration_seconds", "histogram", "ACGME validation time.")
    r.histogram("acgme_validation_duration_seconds", {}, [0.1, 0.5, 1.0, 5.0], 3 * k, 0.1)
    for name, value in (
        ("db_connections_active", 4),
        ("db_connections_idle", 6),
        ("db_connection_pool_size", 10),
    ):
        r.family(name, "gauge", "Database connection pool.")
        r.sample(name, {}, value)
    return r.text()


CONTAINERS = [
    ("residency-scheduler-backend", "residency-scheduler-backend:latest", "backend"),
    ("residency-scheduler-db", "postgres:15", "db"),
    ("monitoring-prometheus-1", "prom/prometheus:v3.15.0", "prometheus"),
]


def cadvisor_metrics(k: int) -> bytes:
    """GET /metrics of cAdvisor (a subset of its container_* families), scrape ``k``."""
    r = _Registry()
    families = [
        ("container_cpu_usage_seconds_total", "counter", lambda i: 0.25 * k * (i + 1)),
        ("container_memory_working_set_bytes", "gauge", lambda i: 50e6 * (i + 1)),
        ("container_network_receive_bytes_total", "counter", lambda i: 1e4 * k * (i + 1)),
        ("container_network_transmit_bytes_total", "counter", lambda i: 5e3 * k * (i + 1)),
        ("container_start_time_seconds", "gauge", lambda i: 1.7641e9 + i),
    ]
    for name, kind, value in families:
        r.family(name, kind, f"cAdvisor {name}.")
        for i, (cname, image, service) in enumerate(CONTAINERS):
            labels = {
                "id": f"/system.slice/docker-{i:064x}.scope",
                "image": image,
                "name": cname,
                "container_label_com_docker_compose_service": service,
            }
            if "network" in name:
                labels["interface"] = "eth0"
            if "cpu" in name:
                labels["cpu"] = "total"
            r.sample(name, labels, value(i))
    # the root cgroup has no name: dashboards must filter name!=""
    r.family("container_memory_usage_bytes", "gauge", "cAdvisor container_memory_usage_bytes.")
    r.sample("container_memory_usage_bytes", {"id": "/"}, 8e9)
    return r.text()


class FixtureServer:
    """A threaded HTTP server on 127.0.0.1 serving ``routes`` (path -> generator(k))."""

    def __init__(self, port: int, routes: dict[str, Callable[[int], bytes]]) -> None:
        counters = dict.fromkeys(routes, 0)
        lock = threading.Lock()

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                path = self.path.split("?")[0]
                if path not in routes:
                    self.send_error(404)
                    return
                with lock:
                    counters[path] += 1
                    k = counters[path]
                body = routes[path](k)
                self.send_response(200)
                self.send_header("Content-Type", "text/plain; version=0.0.4; charset=utf-8")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: object) -> None:
                pass

        self.server = http.server.ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FixtureServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()
