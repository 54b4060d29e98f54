"""How ``monctl backup`` and its list, prune and verify look (and the warnings of a
run's announcements)."""

from __future__ import annotations

from typing import TYPE_CHECKING

from monctl.cli.output import Output, human_size, styled
from monctl.monitoring.announce import Announced, problems

if TYPE_CHECKING:  # pragma: no cover
    from monctl.backup.listing import BackupList
    from monctl.backup.prune import PruneReport
    from monctl.backup.reports import BackupReport, VerifyReport
    from monctl.backup.verify_all import RepositoryCheck


def backup(out: Output, report: BackupReport) -> None:
    for warning in report.warnings:
        out.warn(warning)
    error = report.error or report.prune_error
    if error is not None:
        out.error(error.message, error.hint)
    if out.quiet:
        return
    table = out.table("SERVICE", "RESULT", "SIZE", "READ", "WRITTEN", "REUSED", "TIME", "NOTES")
    for s in report.services:
        done = s.status in ("ok", "discarded")
        table.add_row(
            s.service,
            styled(s.status),
            human_size(s.size) if done else "",
            human_size(s.stats.read_bytes) if done else "",
            human_size(s.stats.written_bytes) if done else "",
            f"{s.stats.reused_objects} objects" if done else "",
            f"{s.seconds:.1f} s",
            out.text(s.error or ", ".join(s.notes)),
        )
    out.print(table)
    if report.ok:
        kind = "full backup" if report.full else "backup"
        if report.recipients:
            n = len(report.recipients)
            kind = f"{kind} (encrypted to {n} key{'s' if n > 1 else ''})"
        total = (
            f"; repository {human_size(report.repository_bytes)}"
            if (report.repository_bytes is not None)
            else ""
        )
        out.print_text(
            f"{kind} {report.backup_id} complete in {report.duration:.1f} s: "
            f"{report.location}{total}"
        )
    else:
        out.print_text(f"backup {report.backup_id} FAILED; nothing of it was kept")
    if report.prune is not None:
        prune(out, report.prune)


def listing(out: Output, report: BackupList) -> None:
    if not report.entries:
        out.info(f"no backups in {report.location}")
        return
    table = out.table("ID", "STATE", "SERVICES", "SIZE", "WRITTEN", title=out.text(report.location))
    for e in report.entries:
        services = ", ".join(sorted(e.manifest.services)) if e.manifest else ""
        state = e.state if e.complete else f"{e.state} ({e.problem})"
        if e.manifest is not None and e.manifest.recipients:
            state += ", encrypted"
        written = human_size(e.written) if e.written is not None else ""
        table.add_row(e.backup_id, out.text(state), services, human_size(e.total_size), written)
    out.print(table)
    out.info(
        f"repository: {human_size(report.repository_bytes)} in {len(report.objects)} objects "
        "(SIZE counts shared objects in every backup that needs them)"
    )


def prune(out: Output, report: PruneReport) -> None:
    verb = "would delete" if report.dry_run else "deleted"
    by_id = {e.backup_id: e for e in report.entries}
    table = out.table("ID", "STATE", "SIZE", "ACTION", "WHY", title=out.text(report.location))
    for d in report.decisions:
        e = by_id[d.backup_id]
        gone = d.backup_id in report.deleted or (report.dry_run and not d.keep)
        action = verb if gone else ("keep" if d.keep else "delete failed")
        table.add_row(
            e.backup_id, e.state, human_size(e.total_size), styled(action), out.text(d.reason)
        )
    out.print(table)
    doomed = (
        [d.backup_id for d in report.decisions if not d.keep] if report.dry_run else report.deleted
    )
    collected = report.collected
    objects = f" and {collected.swept} unreferenced object(s)" if collected else ""
    out.info(f"{verb} {len(doomed)} backup(s){objects}, {human_size(report.freed)}")
    if collected is not None and collected.refused:
        out.warn(f"no object was deleted: {collected.refused}")
    elif collected is not None and collected.retired_kept:
        out.info(
            "objects of deleted backup(s) kept while a backup that may use them runs: "
            + ", ".join(collected.retired_kept)
        )
    for err in report.errors + (collected.errors if collected else []):
        out.warn(err)


def verify(out: Output, report: VerifyReport) -> None:
    table = out.table("SERVICE", "RESULT", "SIZE", "FILES", "SHA256 / ERROR")
    for c in report.checks:
        files = str(c.tar.files) if c.tar else ""
        table.add_row(
            c.service,
            styled("ok" if c.ok else "failed"),
            human_size(c.size),
            files,
            c.sha256[:16] if c.ok else out.text(c.error or ""),
        )
    out.print(table)
    if not report.contents_checked:
        out.print_text(
            "encrypted: the stored bytes were checked (sizes, and hashes against the "
            "objects' names), not what they decrypt to; give --identity (verify --deep) "
            "for that"
        )
    error = report.error()
    if error is not None:
        out.error(error.message, error.hint)


def verify_all(out: Output, report: RepositoryCheck) -> None:
    table = out.table("ID", "STATE", "RESULT", "PROBLEM", title=out.text(report.location))
    for b in report.backups:
        problems = [f"{c.service}: {c.error}" for c in b.checks if not c.ok]
        problem = b.problem or "; ".join(problems)
        table.add_row(b.backup_id, b.state, styled("ok" if b.ok else "failed"), out.text(problem))
    out.print(table)
    for object_id, ids in report.needed_by.items():
        out.warn(f"object {object_id} is missing or damaged; needed by {', '.join(ids)}")
    if report.sealed:
        say = out.warn if report.deep else out.info
        say(
            "encrypted, stored bytes checked but not what they decrypt to (give "
            f"--identity): {'; '.join(report.sealed)}"
        )
    out.info(
        f"{report.objects} objects read once each ({human_size(report.read_bytes)}); "
        f"{report.unreferenced} referenced by no backup (the next prune removes them)"
    )
    if not report.ok:
        bad = [b.backup_id for b in report.backups if not b.ok]
        if report.deep:
            bad += [s.split(":")[0] for s in report.sealed]
        out.error(
            f"{len(bad)} backup(s) failed verification: {', '.join(bad)}",
            "`monctl backup --full` writes missing or damaged objects again from the live "
            "data; restore only from a backup that verifies",
        )


def announced(out: Output, result: Announced) -> None:
    from monctl.cli.render import draw

    draw(out, result.inner)
    for warning in problems(result.pings, result.sent):
        out.warn(warning)
