"""backup (+ list, verify, prune) and restore: thin commands over ``monctl.backup``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from monctl.cli import AppContext
from monctl.cli.common import (
    ServiceChoice,
    epilog,
    finish,
    json_option,
    output,
    quiet_option,
)
from monctl.cli.params import BackupId, checked_path
from monctl.errors import Interrupted

if TYPE_CHECKING:  # pragma: no cover
    from monctl.cli.progress import CliProgress

# A keep count beyond this is a typo; days are bounded so "now - D days" stays a date.
KEEP_LAST = click.IntRange(min=1, max=1_000_000)
DEST_HELP = "Directory or s3://bucket/prefix [default: MONCTL_BACKUP_DEST, else <project>/backups]."

dest_from = click.option("--from", "source", metavar="DEST", callback=checked_path, help=DEST_HELP)
backup_id = click.argument("backup_id", metavar="ID", type=BackupId())


@click.group(invoke_without_command=True, epilog=epilog("backup"))
@click.option("--to", "dest", metavar="DEST", callback=checked_path, help=DEST_HELP)
@click.option(
    "--service",
    "services",
    multiple=True,
    type=ServiceChoice(with_data=True),
    help="Back up only this service (repeatable) [default: all with data].",
)
@click.option(
    "--compression",
    type=click.Choice(["zstd", "gzip", "none"]),
    default="zstd",
    show_default=True,
)
@click.option("--keep-last", type=KEEP_LAST, help="After success: keep N newest.")
@click.option(
    "--keep-days", type=click.IntRange(min=0, max=36500), help="After success: keep D days."
)
@click.option("--sse", type=click.Choice(["AES256", "aws:kms"]), help="S3 server-side encryption.")
@click.option("--sse-kms-key-id", metavar="ID", help="KMS key for --sse aws:kms.")
@click.option("--storage-class", metavar="CLASS", help="S3 storage class, e.g. STANDARD_IA.")
@json_option
@quiet_option
@click.pass_context
def backup(
    ctx: click.Context,
    dest: str | None,
    services: tuple[str, ...],
    compression: str,
    keep_last: int | None,
    keep_days: int | None,
    sse: str | None,
    sse_kms_key_id: str | None,
    storage_class: str | None,
    as_json: bool,
    quiet: bool,
) -> None:
    """Back up the stack's data (Prometheus, Grafana, Loki, Alertmanager) to DEST.

    Each service is copied consistently (Prometheus: TSDB snapshot; Grafana and
    Alertmanager: paused for the copy; Loki: flushed, then paused), streamed
    through zstd/gzip and sha256, and written atomically. The manifest is
    written last; if any service fails, nothing of the run is kept.
    """
    if ctx.invoked_subcommand is not None:
        return
    from monctl.backup import create
    from monctl.backup.destination import open_destination
    from monctl.cli.progress import CliProgress

    app: AppContext = ctx.obj
    out = output(as_json, quiet)
    project = app.project
    selected = create.services_to_back_up(services)
    storage = open_destination(
        project, dest, sse=sse, kms_key_id=sse_kms_key_id, storage_class=storage_class
    )
    with CliProgress(out, "backing up") as progress:
        report = create.run(
            project,
            app.runtime,
            storage,
            selected,
            compression=compression,
            keep_last=keep_last,
            keep_days=keep_days,
            progress=progress,
        )
    finish(out, report)


@backup.command("list", epilog=epilog("backup list"))
@dest_from
@json_option
@click.pass_obj
def list_(app: AppContext, source: str | None, as_json: bool) -> None:
    """List the backups in DEST, newest first (incomplete ones say why)."""
    from monctl.backup import repository
    from monctl.backup.destination import open_destination

    storage = open_destination(app.project, source)
    finish(
        output(as_json), repository.BackupList(storage.location, repository.list_backups(storage))
    )


@backup.command(epilog=epilog("backup verify"))
@backup_id
@dest_from
@click.option("--service", "services", multiple=True, help="Verify only this service's archive.")
@json_option
@click.pass_obj
def verify(
    app: AppContext, backup_id: str, source: str | None, services: tuple[str, ...], as_json: bool
) -> None:
    """Re-hash every archive of backup ID against its manifest and check each tar."""
    from monctl.backup import repository
    from monctl.backup.destination import open_destination
    from monctl.cli.progress import CliProgress

    out = output(as_json)
    storage = open_destination(app.project, source)
    with CliProgress(out, "verifying") as progress:
        report = repository.verify(
            storage,
            backup_id,
            list(services) or None,
            check=False,
            on_bytes=lambda n: progress.moved(backup_id, n),
        )
    finish(out, report)


@backup.command(epilog=epilog("backup prune"))
@dest_from
@click.option("--keep-last", type=KEEP_LAST, help="Keep the N newest backups.")
@click.option(
    "--keep-days", type=click.IntRange(min=0, max=36500), help="Keep backups newer than D days."
)
@click.option("--dry-run", is_flag=True, help="Only show what would be deleted.")
@json_option
@click.pass_obj
def prune(
    app: AppContext,
    source: str | None,
    keep_last: int | None,
    keep_days: int | None,
    dry_run: bool,
    as_json: bool,
) -> None:
    """Delete old backups: those kept by neither --keep-last nor --keep-days.

    The newest complete backup is never deleted; names that are not monctl
    backup ids are never touched.
    """
    from monctl.backup import repository
    from monctl.backup.destination import open_destination

    if keep_last is None and keep_days is None:
        raise click.UsageError("give --keep-last N and/or --keep-days D")
    storage = open_destination(app.project, source)
    finish(output(as_json), repository.prune(storage, keep_last, keep_days, dry_run))


@click.command(epilog=epilog("restore"))
@backup_id
@dest_from
@click.option(
    "--service",
    "services",
    multiple=True,
    type=ServiceChoice(with_data=True),
    help="Restore only this service (repeatable) [default: all in the backup].",
)
@click.option("--yes", "-y", is_flag=True, help="Do not ask before overwriting the volumes.")
@json_option
@click.pass_obj
def restore(
    app: AppContext,
    backup_id: str,
    source: str | None,
    services: tuple[str, ...],
    yes: bool,
    as_json: bool,
) -> None:
    """Restore backup ID into the stack's volumes (verified first; asks unless --yes).

    Every archive is checked against the manifest before anything is touched.
    Then per service: the data is staged in a fresh volume (checked again as it
    is written), the service is stopped, its volume replaced, and it is started
    and waited for.
    """
    from monctl.backup import restore as op
    from monctl.backup.destination import open_destination
    from monctl.cli.progress import CliProgress

    out = output(as_json)
    storage = open_destination(app.project, source)
    with CliProgress(out, "verifying") as progress:
        report = op.run(
            app.project,
            app.runtime,
            storage,
            backup_id,
            services,
            confirm=_confirmer(yes, progress),
            progress=progress,
        )
    finish(out, report)


def _confirmer(yes: bool, progress: CliProgress) -> Callable[[str], bool]:
    """Ask on the terminal (stderr) unless --yes; with stdin closed, refuse (exit 130)."""

    def confirm(question: str) -> bool:
        if yes:
            return True
        progress.stop()  # the question must not fight the progress display
        try:
            from monctl.output import inert

            return click.confirm(inert(question), default=False, err=True)
        except click.exceptions.Abort:  # stdin closed: nobody to ask
            raise Interrupted(
                "restore needs a confirmation and there is no one to ask",
                hint="run it on a terminal, or pass --yes",
            ) from None

    return confirm
