"""The exporters: node-exporter, cAdvisor and postgres-exporter.

Configured by flags only (nothing to reload, no data to back up). node-exporter
also publishes monctl's backup metrics (its textfile collector); cAdvisor's
image probes ``/healthz``; postgres-exporter being up says nothing about the
database it watches: ``pg_up 0`` is "exporter up, database down", a watched
target of the application, not a broken stack. node-exporter and cAdvisor run
on every node of a Swarm.
"""

from __future__ import annotations

from monctl.services.answers import Fetched, Role, Target, Verdict, metric_value, status_200
from monctl.services.model import Probe, Service


def read_pg_up(f: Fetched, role: Role) -> Verdict:
    """/metrics must carry pg_up; pg_up 0 = exporter up, database down."""
    if f.status != 200:
        return status_200(f, role)
    value = metric_value(f.text, "pg_up")
    source = "postgres-exporter (pg_up)"
    if value is None:
        target = Target("database", "unknown", "exporter publishes no pg_up", source=source)
        return Verdict("not ready", "/metrics carries no pg_up", (target,))
    if value == 1:
        return Verdict("ok", "database reachable", (Target("database", "up", source=source),))
    target = Target("database", "down", "pg_up 0: the exporter cannot reach it", source=source)
    return Verdict("degraded", "exporter up, database unreachable", (target,))


NODE_EXPORTER = Service(
    name="node-exporter",
    title="node-exporter",
    role="host metrics; also publishes monctl's backup metrics (textfile collector)",
    container_port=9100,
    port_var="NODE_EXPORTER_PORT",
    default_port=9100,
    image_var="NODE_EXPORTER_IMAGE",
    liveness=Probe("/metrics"),
    placement="every-node",
)

CADVISOR = Service(
    name="cadvisor",
    title="cAdvisor",
    role="container metrics",
    container_port=8080,
    port_var="CADVISOR_PORT",
    default_port=8081,  # the application already owns host port 8080
    image_var="CADVISOR_IMAGE",
    liveness=Probe("/healthz"),
    placement="every-node",
)

POSTGRES_EXPORTER = Service(
    name="postgres-exporter",
    title="postgres-exporter",
    role="PostgreSQL metrics for the application's database",
    container_port=9187,
    port_var="POSTGRES_EXPORTER_PORT",
    default_port=9187,
    image_var="POSTGRES_EXPORTER_IMAGE",
    liveness=Probe("/metrics"),
    readiness=Probe("/metrics", read_pg_up),
)
