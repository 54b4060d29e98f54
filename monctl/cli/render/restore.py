"""How ``monctl restore``, ``monctl backup export`` and ``monctl backup test`` look."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monctl.cli.output import Output, human_size, styled

if TYPE_CHECKING:  # pragma: no cover
    from monctl.backup.export import ExportReport
    from monctl.backup.reports import DrillReport
    from monctl.backup.restore import RestoreReport


def restore(out: Output, report: RestoreReport) -> None:
    for failed in report.services:
        if failed.error:
            out.error(f"{failed.service}: {failed.error}", failed.hint)
        if failed.previous:
            out.warn(
                f"{failed.service} is not ready on the restored data; its previous data is "
                f"kept at {out.text(failed.previous)} (to go back: stop it and put that "
                "directory in place of _data beside it; the next restore of this volume "
                "removes it)"
            )
    table = out.table("SERVICE", "VOLUME", "RESULT", "STATE NOW", "TIME", "ERROR")
    for s in report.services:
        table.add_row(
            s.service,
            out.text(s.volume),
            styled(s.status),
            out.text(s.state),
            f"{s.seconds:.1f} s",
            out.text(s.error or ""),
        )
    out.print(table)
    verdict = "restored" if report.ok else "restore FAILED or incomplete"
    out.print_text(f"backup {report.backup_id} from {report.location}: {verdict}")


def export(out: Output, report: ExportReport) -> None:
    from monctl.backup.export import STDOUT

    if out.quiet:  # -q: nothing on success
        return
    if report.output == STDOUT:  # stdout holds the tar: a person reads stderr
        out.info(report.summary())
        return
    table = out.table("SERVICE", "FILES", "DIRS", "LINKS", "SIZE")
    for s in report.services:
        table.add_row(
            s.service,
            str(s.files),
            str(s.dirs),
            str(s.symlinks + s.hardlinks),
            human_size(s.bytes),
        )
    out.print(table)
    out.print_text(report.summary())


def drill(out: Output, report: DrillReport) -> None:
    for note in report.notes:
        out.warn(note)
    for problem in report.leftovers:
        out.error(f"the throwaway stack {report.stack} was not removed completely: {problem}")
    table = out.table("SERVICE", "RESTORE", "STATE", "CHECK", "RESULT", "DETAIL")
    for s in report.services:
        rows = [(c.name, "ok" if c.ok else "failed", c.detail) for c in s.checks]
        if s.error or not rows:
            rows.append(("", "", s.error or "no drill check declared"))
        for n, (name, result, detail) in enumerate(rows):
            table.add_row(
                s.service if n == 0 else "",
                styled(s.restore) if n == 0 else "",
                out.text(s.state) if n == 0 else "",
                name,
                styled(result) if result else "",
                out.text(detail),
            )
    out.print(table)
    passed = sum(s.ok for s in report.services)
    verdict = "PASSED" if report.ok else "FAILED"
    out.print_text(
        f"drill of backup {report.backup_id}: {verdict} ({passed} of {len(report.services)} "
        f"services usable); throwaway stack {report.stack} "
        + ("removed" if not report.leftovers else "NOT fully removed")
    )
