"""What ``monctl health`` found, and the exit code it means.

- ``OK`` (0): every service healthy, every watched target up;
- ``UNHEALTHY`` (3): a stack service is down, not ready or unhealthy, or a deep
  check of the stack failed (a stack scrape target down, a rule failing, a
  reload failed); with ``strict`` also when a watched target is down;
- ``TARGETS_DOWN`` (4): the stack is fine but something it watches (the
  backend's scrape jobs, the database behind postgres-exporter) is down;
  ``ignore_targets`` turns this into 0.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from monctl.errors import ExitCode
from monctl.services.answers import Check, Target

Status = Literal["healthy", "degraded", "not ready", "unhealthy", "down"]
GOOD: tuple[Status, ...] = ("healthy", "degraded")  # degraded: works, with a note


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    status: Status
    state: str  # container state; "unknown" when Docker could not be asked
    health: str | None  # Docker's healthcheck status, None without one
    live: bool | None  # None: not probed (nothing to probe)
    ready: bool | None
    latency_ms: float | None
    detail: str
    url: str | None
    has_readiness: bool = True

    @property
    def ok(self) -> bool:
        return self.status in GOOD

    def to_json(self) -> dict[str, Any]:
        doc = {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}
        doc.pop("has_readiness")
        return doc


@dataclass(frozen=True)
class HealthReport:
    services: tuple[ServiceHealth, ...]
    checks: tuple[Check, ...] = ()
    targets: tuple[Target, ...] = ()
    alerts: dict[str, int] | None = None
    docker: str | None = None  # why Docker could not be asked; None when it answered
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    strict: bool = False  # a watched target down counts as a stack failure
    ignore_targets: bool = False  # a watched target down does not change the exit code

    @property
    def stack_ok(self) -> bool:
        return all(s.ok for s in self.services) and all(
            c.ok for c in self.checks if c.severity == "stack"
        )

    @property
    def targets_ok(self) -> bool:
        return not any(t.state == "down" for t in self.targets)

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    @property
    def exit_code(self) -> ExitCode:
        if not self.stack_ok or (self.strict and not self.targets_ok):
            return ExitCode.UNHEALTHY
        if not self.targets_ok and not self.ignore_targets:
            return ExitCode.TARGETS_DOWN
        return ExitCode.OK

    def with_policy(self, *, strict: bool = False, ignore_targets: bool = False) -> HealthReport:
        """The same findings judged with ``--strict`` / ``--ignore-targets``."""
        return dataclasses.replace(self, strict=strict, ignore_targets=ignore_targets)

    def to_json(self) -> dict[str, Any]:
        return {
            "stack_ok": self.stack_ok,
            # null when no target could be checked (Prometheus did not answer): not a pass
            "targets_ok": self.targets_ok
            if any(t.state in ("up", "down") for t in self.targets)
            else None,
            "services": [s.to_json() for s in self.services],
            "checks": [c.to_json() for c in self.checks],
            "targets": [t.to_json() for t in self.targets],
            "alerts": self.alerts,
            "docker": self.docker or "reachable",
            "checked_at": self.checked_at.isoformat(timespec="seconds"),
        }

    def summary(self) -> str:
        """One line: the verdict and, when not healthy, what is wrong."""
        bad = [f"{s.name} {s.status}" for s in self.services if not s.ok]
        bad += [f"{c.service} {c.name}" for c in self.checks if c.severity == "stack" and not c.ok]
        down = [t.name for t in self.targets if t.state == "down"]
        code = f"(exit {int(self.exit_code)})"
        if not self.stack_ok:
            return f"UNHEALTHY: {', '.join(bad)} {code}"
        if down and self.strict:
            return f"UNHEALTHY (--strict): watched targets down: {', '.join(down)} {code}"
        if down:
            return f"STACK HEALTHY, watched targets down: {', '.join(down)} {code}"
        return f"HEALTHY: {len(self.services)} services ready {code}"


class AfterHealth:
    """What the results of verbs that end by waiting on the health check share (``up``'s
    ``StatusReport``, ``credentials rotate``'s ``RotateReport``): the exit code the verb
    decided, and that check's report under ``health`` in the JSON when it ran."""

    health: HealthReport | None
    code: ExitCode

    @property
    def exit_code(self) -> ExitCode:
        return self.code

    def with_health(self, doc: dict[str, Any]) -> dict[str, Any]:
        """``doc`` (the result's own keys) with the health report added when there is one."""
        if self.health is not None:
            doc["health"] = self.health.to_json()
        return doc
