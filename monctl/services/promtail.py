"""Promtail: ships every container's logs to Loki. Everything monctl knows about it.

Deprecated upstream (end of life 2026-03-02; successor Grafana Alloy).
Readiness: ``/ready`` answers 500 "Not ready: Unable to find any logs to
tail…" while it has nothing to tail. Reload: ``POST /reload`` when started
with ``-server.enable-runtime-reload`` (else 404: restarted instead); an
unchanged file answers 500 "config has not changed", which is no failure.
Check: ``promtail -check-syntax`` prints "Valid config file! No syntax issues
found" (exit 0), or "Unable to parse config: …" / "Invalid config file" (exit 1);
run as the image's entrypoint, without a shell. Runs on every node of a Swarm.
"""

from __future__ import annotations

from monctl.services.answers import Fetched, Role, Verdict, status_200
from monctl.services.model import ConfigMount, HttpReload, Probe, Service, ToolCheck


def read_ready(f: Fetched, role: Role) -> Verdict:
    """200 "Ready"; 500 "Not ready: Unable to find any logs to tail"."""
    if f.status == 200:
        return Verdict("ok")
    if f.status == 500 and "logs to tail" in f.text:
        return Verdict("not ready", "no logs to tail (check its log mounts and scrape_configs)")
    if f.status == 500:
        return Verdict("not ready", f.excerpt())
    return status_200(f, role)


SERVICE = Service(
    name="promtail",
    title="Promtail",
    role="log shipper (deprecated upstream; successor: Grafana Alloy)",
    container_port=9080,
    port_var="PROMTAIL_PORT",
    default_port=9080,
    image_var="PROMTAIL_IMAGE",
    liveness=Probe("/metrics"),
    readiness=Probe("/ready", read_ready),
    config=ConfigMount("config/promtail", "/etc/promtail"),
    checks=(
        ToolCheck(
            "config",
            ("/usr/bin/promtail", "-check-syntax"),
            "config/promtail/promtail-config.yml",
            ran=("Valid config file", "Unable to parse config", "Invalid config file"),
            file_arg="-config.file={}",
            gates_reload=True,
            provided_by="the grafana/promtail image or Loki's release binary (no Debian package)",
        ),
    ),
    # Promtail answers a reload of an unchanged file with 500 "failed to reload
    # config: config has not changed" (seen with 3.6): that is "unchanged", a success.
    reload=HttpReload("/reload", missing_restarts=True, unchanged="config has not changed"),
    placement="every-node",
)
