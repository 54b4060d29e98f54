"""How the stack's results look: status, down, init --upgrade, credentials rotate."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monctl.cli.output import Output, styled
from monctl.errors import ExitCode

if TYPE_CHECKING:  # pragma: no cover
    from rich.text import Text

    from monctl.lifecycle.down import DownReport
    from monctl.lifecycle.rotate import RotateReport
    from monctl.lifecycle.status import StatusReport
    from monctl.lifecycle.upgrade import UpgradeReport


def status(out: Output, report: StatusReport) -> None:
    swarm = any(s.tasks is not None for s in report.services)
    columns = ["service", "state", "health", "uptime", "image", "version", "url"]
    if swarm:
        columns.insert(2, "tasks")
    table = out.table(*columns)
    for s in report.services:
        row: list[str | Text] = [
            s.name,
            styled(s.state),
            styled(s.health or "-"),
            _duration(s.uptime_seconds),
            out.text(s.image or "-"),
            out.text(s.version or "-"),
            out.text("\n".join(s.urls) or "-"),
        ]
        if swarm:
            row.insert(2, out.text(s.tasks or "-"))
        table.add_row(*row)
    out.print(table)
    for s in report.services:
        for problem in s.problems:
            out.print_text(f"{s.name}: {problem}")
    for note in report.notes:
        out.print_text(note)


def down(out: Output, report: DownReport) -> None:
    deleted = " and its volumes deleted" if report.volumes_deleted else ""
    out.info(f"stack {report.project!r} stopped{deleted}")


def upgrade(out: Output, report: UpgradeReport) -> None:
    changed = [(p, a) for p, a in report.files if a != "unchanged"]
    title = f"init --upgrade {report.target}" + (
        " (dry run: nothing written)" if report.dry_run else ""
    )
    if changed:
        table = out.table("FILE", "ACTION", title=title)
        for path, action in changed:
            shown = f"{path} -> {path}.new" if action == "review" else path
            table.add_row(shown, action)
        out.print(table)
    else:
        out.print_text(f"{title}: every stack file is as this monctl ships it")
    if report.images:
        table = out.table("SETTING", "IN .env", "SHIPPED", title="image pins in .env")
        for var, env, shipped in report.images:
            table.add_row(var, env, shipped)
        out.print(table)
    if report.to_review:
        out.print_text(
            "review: compare each FILE with FILE.new (e.g. diff -u FILE FILE.new), "
            "merge what you need into FILE, then delete FILE.new"
        )
    if report.images:
        out.print_text(
            "review: .env pins other images than this monctl ships; to take a shipped "
            "pin, set it in .env (or delete the line)"
        )
    if not report.dry_run and any(a != "unchanged" for _, a in report.files):
        out.print_text("then: monctl validate, and monctl up to apply")


def rotate(out: Output, report: RotateReport) -> None:
    from monctl.credentials import PASSWORD_VAR

    out.info(f"new {PASSWORD_VAR} and its hash written to .env (mode 0600)")
    if report.handed_over:
        ready = "ready" if report.code == ExitCode.OK else "NOT ready: see `monctl health`"
        out.info(f"{', '.join(report.handed_over)} now use them ({ready})")
    else:
        out.info("no service is running: the next `monctl up` uses them")


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return "-"
    days, rest = divmod(int(seconds), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, secs = divmod(rest, 60)
    if days:
        return f"{days}d{hours}h"
    if hours:
        return f"{hours}h{minutes}m"
    return f"{minutes}m{secs}s" if minutes else f"{secs}s"
