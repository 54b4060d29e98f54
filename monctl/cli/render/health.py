"""How ``monctl health`` looks: services, deep checks, watched targets, the verdict.
(``--junit`` writes the same report as XML: ``monctl.cli.render.junit``.)"""

from __future__ import annotations

from typing import TYPE_CHECKING

from monctl.cli.output import Output, styled
from monctl.errors import ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from rich.text import Text

    from monctl.health.report import HealthReport


def health(out: Output, report: HealthReport) -> None:
    table = out.table("service", "status", "state", "live", "ready", "latency", "detail")
    table.columns[0].no_wrap = True
    for s in report.services:
        state = f"{s.state} ({s.health})" if s.health else s.state
        table.add_row(
            s.name,
            styled(s.status),
            styled(state) if not s.health else out.text(state),
            _yes_no(s.live, "up", "down"),
            _yes_no(s.ready, "ready", "not ready"),
            f"{s.latency_ms:.0f} ms" if s.latency_ms is not None else "-",
            out.text(s.detail),
        )
    out.print(table)
    if report.checks:
        checks = out.table("deep check", "result", "detail")
        for c in report.checks:
            result = "ok" if c.ok else ("failed" if c.severity == "stack" else "warning")
            checks.add_row(f"{c.service}: {c.name}", styled(result), out.text(c.detail))
        out.print(checks)
    if report.targets:
        targets = out.table("watched target", "state", "seen by", "detail")
        for t in report.targets:
            name = f"{t.name} ({t.instance})" if t.instance else t.name
            targets.add_row(out.text(name), styled(t.state), t.source, out.text(t.detail))
        out.print(targets)
    if report.alerts is not None:
        counts = ", ".join(f"{n} {sev}" for sev, n in report.alerts.items())
        out.print_text(f"firing alerts: {counts}")
    if report.docker:
        out.print_text(f"Docker not reachable ({report.docker}): container state unknown")
    style = "green" if report.exit_code == ExitCode.OK else "red"
    if report.exit_code == ExitCode.TARGETS_DOWN:
        style = "yellow"
    out.print_text(report.summary(), style=style)


def _yes_no(value: bool | None, yes: str, no: str) -> str | Text:
    return "-" if value is None else styled(yes if value else no)
