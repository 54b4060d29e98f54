"""What ``monctl reload`` reports: one ``Outcome`` per service, and the ``ReloadReport``.

Kept apart from the kinds (``reload_kinds``) and the flow (``reload``) so
each reads on its own; every kind returns an ``Outcome``,
and the report's exit code is the worst one seen.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from monctl.errors import ExitCode

FAILED_RESULTS = ("failed", "refused", "restart needed")


@dataclass(frozen=True)
class Outcome:
    service: str
    result: (
        str  # confirmed, unchanged, restarted, restart needed, refused, failed, nothing to reload
    )
    summary: str
    details: tuple[str, ...] = ()  # the service's or the tool's own words
    hint: str | None = None
    exit_code: ExitCode | None = None  # default: FAILED for a failed result, else OK

    def __post_init__(self) -> None:
        if self.exit_code is None:
            bad = self.result in FAILED_RESULTS
            object.__setattr__(self, "exit_code", ExitCode.FAILED if bad else ExitCode.OK)

    @property
    def code(self) -> ExitCode:
        return self.exit_code if self.exit_code is not None else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "result": self.result,
            "ok": self.code == ExitCode.OK,
            "summary": self.summary,
            "details": list(self.details),
            "hint": self.hint,
            "exit_code": int(self.code),
        }


@dataclass(frozen=True)
class ReloadReport:
    outcomes: tuple[Outcome, ...]

    @property
    def exit_code(self) -> ExitCode:
        return max((o.code for o in self.outcomes), default=ExitCode.OK)

    def to_json(self) -> dict[str, Any]:
        return {"services": [o.to_json() for o in self.outcomes]}
