"""What a backup records for the restore drill to compare with (``Drill.record``).

Asked of the live service through its published URL, just before its data is held (a
paused service cannot answer): Grafana's dashboards, Alertmanager's silences,
Prometheus' samples and Loki's lines over the last hour, all asked through
``HostAsk.get`` (the one HTTP call of a record). The facts go into the manifest
(``ServiceEntry.facts``), so a drill of the backup, days later and elsewhere, knows
what the data held. Recording is never a reason for a backup to fail: when the
service cannot tell, the backup warns and records nothing (the drill then checks
what it can without them).
"""

from __future__ import annotations

import json
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from monctl.errors import MonctlError
from monctl.services.answers import Fetched

if TYPE_CHECKING:  # pragma: no cover
    from monctl.backup.consistency import Context
    from monctl.project import Project
    from monctl.services.model import Service

TIMEOUT = 15.0
# The manifest is read whole (at most 1 MiB): one service's facts stay well below.
MAX_FACTS_BYTES = 256 * 1024


class HostAsk:
    """``DrillAsk`` over HTTP to the service's URL on this host."""

    def __init__(self, project: Project, service: Service, base: str) -> None:
        self.project = project
        self._service = service
        self.service = service.name
        self.base = base
        self.facts: Mapping[str, Any] = {}
        now = time.time()
        self.window = (now, now)

    def get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Fetched:
        from monctl import credentials
        from monctl.adapters import http

        if auth is None:
            auth = credentials.auth(self.project, self._service)
        url = self.base + path
        started = time.perf_counter()
        try:
            response = http.get(url, params=params, auth=auth, timeout=TIMEOUT)
        except http.NoAnswer as exc:
            return Fetched(url, None, error=exc.why)
        latency = round((time.perf_counter() - started) * 1000, 1)
        return Fetched(url, response.status_code, response.text, response.headers, latency)

    def setting(self, name: str, default: str = "") -> str:
        return self.project.setting(name, default)


def record(ctx: Context, service: Service) -> dict[str, Any]:
    """The facts ``service``'s drill declaration records, or {} (with a warning)."""
    if service.drill is None or service.drill.record is None:
        return {}
    what = f"could not record {service.name}'s state for restore drills"
    try:
        facts = service.drill.record(HostAsk(ctx.project, service, ctx.url(service)))
        size = len(json.dumps(facts))
    except MonctlError as exc:
        ctx.warnings.append(f"{what}: {exc.message}")
        return {}
    except (ValueError, TypeError) as exc:
        ctx.warnings.append(f"{what}: {exc}")
        return {}
    if size > MAX_FACTS_BYTES:
        ctx.warnings.append(f"{what}: {size} bytes of facts, more than {MAX_FACTS_BYTES}")
        return {}
    return facts
