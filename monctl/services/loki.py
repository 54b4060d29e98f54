"""Loki: the log store. Everything monctl knows about it.

Readiness: ``/ready`` answers 200 "ready", or 503 with the ingester's reason
(e.g. "waiting for 15s after being ready", its min-ready ramp-up). Reload:
Loki has no reload API, so a configuration change is a restart. Backup:
``POST /flush`` writes in-memory chunks out, then the container is paused for
the copy (filesystem storage has no official backup procedure). The upstream
image is distroless: no shell, nothing can run inside it but Loki. Runs as 10001.
"""

from __future__ import annotations

from monctl.services.answers import Fetched, Role, Verdict, status_200
from monctl.services.model import (
    ConfigMount,
    DataVolume,
    Layout,
    Pause,
    Probe,
    RestartReload,
    Service,
)


def read_ready(f: Fetched, role: Role) -> Verdict:
    """200 "ready"; 503 with the ingester's reason (not ready yet)."""
    if f.status == 200:
        return Verdict("ok")
    if f.status == 503:
        return Verdict("not ready", f.excerpt() or "503 without a reason")
    return status_200(f, role)


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
)
