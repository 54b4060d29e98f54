"""How ``monctl reload`` and ``monctl validate`` look."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monctl.cli.output import Output, styled
from monctl.errors import ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from monctl.config.reload_report import ReloadReport
    from monctl.config.validate import ValidateReport


def reload(out: Output, report: ReloadReport) -> None:
    table = out.table("SERVICE", "RESULT", "DETAIL", title="reload")
    for o in report.outcomes:
        table.add_row(o.service, styled(o.result), out.text(o.summary))
    out.print(table)
    for o in report.outcomes:
        # a success needs no more than its row; JSON keeps the details
        if o.code == ExitCode.OK and not o.hint:
            continue
        out.print_text(f"{o.service}:")
        for line in o.details:
            out.print_text(f"  | {line}")
        if o.hint:
            out.print_text(f"  hint: {o.hint}")


def validate(out: Output, report: ValidateReport) -> None:
    how = (
        "the pinned images via `docker compose run`"
        if report.mode == "docker"
        else "tools from the host PATH"
    )
    table = out.table("SERVICE", "CHECK", "RESULT", "DETAIL", title=f"validate ({how})")
    for r in report.results:
        table.add_row(r.service, r.check, styled(r.status), out.text(r.summary))
    out.print(table)
    for r in report.results:
        if r.status in ("valid", "skipped"):
            continue
        out.print_text(f"{r.service} {r.check}:")
        for p in r.problems:
            out.print_text(f"  {p.describe()}")
        if r.output and not r.problems:
            for line in r.output.strip().splitlines():
                out.print_text(f"  | {line}")
    if report.missing_tools:
        verdict = (
            "accepted (--allow-missing-tools)"
            if report.allow_missing_tools
            else "a check that did not run is no pass: install them, drop --local "
            "(the images' own), or pass --allow-missing-tools"
        )
        out.print_text(f"not checked, tools missing: {', '.join(report.missing_tools)}: {verdict}")
