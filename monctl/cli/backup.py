"""backup (+ list, verify, prune) and restore: thin commands over the backup operations."""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from monctl import catalogue
from monctl.cli import AppContext
from monctl.cli.common import finish, json_option, quiet_option
from monctl.errors import ExitCode, Interrupted

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage import Storage
    from monctl.output import Output
    from monctl.project import Project

DEFAULT_DEST = "backups"  # relative to the project root


def destination(project: Project, given: str | None) -> str:
    """DEST from the option, else MONCTL_BACKUP_DEST, else <root>/backups.
    A relative directory is relative to the project root, not the working directory."""
    dest = given or project.setting("MONCTL_BACKUP_DEST", "") or DEFAULT_DEST
    if "://" in dest:
        return dest
    path = Path(dest).expanduser()
    return str(path if path.is_absolute() else project.root / path)


def open_dest(
    project: Project,
    given: str | None,
    sse: str | None = None,
    kms_key_id: str | None = None,
    storage_class: str | None = None,
) -> Storage:
    from monctl.adapters.storage import S3Options, open_storage

    options = S3Options(
        sse=sse or project.setting("MONCTL_BACKUP_SSE", "") or None,
        kms_key_id=kms_key_id or project.setting("MONCTL_BACKUP_SSE_KMS_KEY_ID", "") or None,
        storage_class=storage_class or project.setting("MONCTL_BACKUP_STORAGE_CLASS", "") or None,
    )
    return open_storage(destination(project, given), s3_options=options)


class _Bytes:
    """A bytes-read progress display on stderr, one line per name (rich)."""

    def __init__(self, out: Output, label: str) -> None:
        from rich.progress import (
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TimeElapsedColumn,
            TransferSpeedColumn,
        )

        self.label = label
        self.tasks: dict[str, Any] = {}
        self.progress = Progress(
            SpinnerColumn(),
            TextColumn("{task.description}"),
            DownloadColumn(),
            TransferSpeedColumn(),
            TimeElapsedColumn(),
            console=out.err,
            transient=True,
        )

    def advance(self, name: str, n: int) -> None:
        if name not in self.tasks:
            self.tasks[name] = self.progress.add_task(f"{self.label} {name}", total=None)
        self.progress.advance(self.tasks[name], n)

    def stop(self) -> None:
        self.progress.stop()


@contextlib.contextmanager
def _progress(out: Output, label: str) -> Iterator[_Bytes | None]:
    """Progress only when a person watches (a terminal, not --json/-q); else None."""
    if not out.interactive:
        yield None
        return
    bar = _Bytes(out, label)
    bar.progress.start()
    try:
        yield bar
    finally:
        bar.stop()


def _counter(bar: _Bytes | None, name: str) -> Callable[[int], None] | None:
    return (lambda n: bar.advance(name, n)) if bar is not None else None


dest_from = click.option(
    "--from",
    "source",
    metavar="DEST",
    help="Directory or s3://bucket/prefix [default: MONCTL_BACKUP_DEST, else <project>/backups].",
)


@click.group(invoke_without_command=True)
@click.option(
    "--to",
    "dest",
    metavar="DEST",
    help="Directory or s3://bucket/prefix [default: MONCTL_BACKUP_DEST, else <project>/backups].",
)
@click.option(
    "--service",
    "services",
    multiple=True,
    type=click.Choice([s.name for s in catalogue.BACKED_UP]),
    help="Back up only this service (repeatable) [default: all with data].",
)
@click.option(
    "--compression",
    type=click.Choice(["zstd", "gzip", "none"]),
    default="zstd",
    show_default=True,
)
@click.option("--keep-last", type=click.IntRange(min=1), help="After success: keep N newest.")
@click.option("--keep-days", type=click.IntRange(min=0), help="After success: keep D days.")
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
    written last; if any service fails, nothing of the run is kept (exit 1).
    Exit codes: 0 ok, 1 failed, 8 storage, 9 another backup/restore runs,
    130 interrupted.
    """
    if ctx.invoked_subcommand is not None:
        return
    from monctl.ops import backup as op
    from monctl.output import Output

    app: AppContext = ctx.obj
    out = Output(json_mode=as_json, quiet=quiet)
    project = app.project
    selected = op.backed_up_services(services)
    storage = open_dest(project, dest, sse, sse_kms_key_id, storage_class)
    with _progress(out, "backing up") as bar:
        report = op.run(
            project,
            storage,
            selected,
            compression=compression,
            keep_last=keep_last,
            keep_days=keep_days,
            on_bytes=bar.advance if bar else None,
        )
    out.emit(report)
    if report.error is not None:
        raise report.error
    if report.prune_error is not None:
        raise report.prune_error
    if report.prune is not None and report.prune.errors:
        finish(ExitCode.STORAGE)


@backup.command("list")
@dest_from
@json_option
@click.pass_obj
def list_(app: AppContext, source: str | None, as_json: bool) -> None:
    """List the backups in DEST, newest first (incomplete ones say why)."""
    from monctl.ops import backups
    from monctl.output import Output

    storage = open_dest(app.project, source)
    Output(json_mode=as_json).emit(
        backups.BackupList(storage.location, backups.list_backups(storage))
    )


@backup.command()
@click.argument("backup_id", metavar="ID")
@dest_from
@click.option("--service", "services", multiple=True, help="Verify only this service's archive.")
@json_option
@click.pass_obj
def verify(
    app: AppContext, backup_id: str, source: str | None, services: tuple[str, ...], as_json: bool
) -> None:
    """Re-hash every archive of backup ID against its manifest and check each tar.

    Exit 0 when all match, 10 when any is corrupt, truncated, unsafe or the
    backup has no manifest, 8 when the backup or destination is missing.
    """
    from monctl.ops import backups
    from monctl.output import Output

    out = Output(json_mode=as_json)
    storage = open_dest(app.project, source)
    with _progress(out, "verifying") as bar:
        report = backups.verify(
            storage,
            backup_id,
            list(services) or None,
            check=False,
            on_bytes=_counter(bar, backup_id),
        )
    out.emit(report)
    report.raise_if_failed()


@backup.command()
@dest_from
@click.option("--keep-last", type=click.IntRange(min=1), help="Keep the N newest backups.")
@click.option("--keep-days", type=click.IntRange(min=0), help="Keep backups newer than D days.")
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
    from monctl.ops import backups
    from monctl.output import Output

    if keep_last is None and keep_days is None:
        raise click.UsageError("give --keep-last N and/or --keep-days D")
    storage = open_dest(app.project, source)
    report = backups.prune(storage, keep_last, keep_days, dry_run)
    Output(json_mode=as_json).emit(report)
    if report.errors:
        finish(ExitCode.STORAGE)


@click.command()
@click.argument("backup_id", metavar="ID")
@dest_from
@click.option(
    "--service",
    "services",
    multiple=True,
    type=click.Choice([s.name for s in catalogue.BACKED_UP]),
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
    Then per service: stop, replace the volume's contents, start, wait until
    ready. Exit 0 when every service is back and ready, 1 when one is not,
    10 when the backup fails verification, 8 when it is missing, 9 when a
    backup or restore runs, 130 when not confirmed.
    """
    from monctl.ops import restore as op
    from monctl.output import Output

    out = Output(json_mode=as_json)
    storage = open_dest(app.project, source)

    with _progress(out, "verifying") as bar:
        report = op.run(
            app.project,
            storage,
            backup_id,
            services,
            confirm=_confirmer(yes, bar),
            on_bytes=_counter(bar, backup_id),
        )
    out.emit(report)
    if not report.ok:
        finish(ExitCode.FAILED)


def _confirmer(yes: bool, bar: _Bytes | None) -> Callable[[str], bool]:
    """Ask on the terminal (stderr) unless --yes; with stdin closed, refuse (exit 130)."""

    def confirm(question: str) -> bool:
        if yes:
            return True
        if bar is not None:
            bar.stop()  # the question must not fight the progress display
        try:
            return click.confirm(question, default=False, err=True)
        except click.exceptions.Abort:  # stdin closed: nobody to ask
            raise Interrupted(
                "restore needs a confirmation and there is no one to ask",
                hint="run it on a terminal, or pass --yes",
            ) from None

    return confirm
