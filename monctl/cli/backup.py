"""backup (+ list, verify, prune) and restore: thin commands over ``monctl.backup``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, TypeVar

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
    from pathlib import Path

    from monctl.backup.announce import Announcer
    from monctl.backup.drill_report import DrillReport
    from monctl.backup.report import BackupReport
    from monctl.backup.restore import RestoreReport
    from monctl.backup.retention import Policy
    from monctl.cli.progress import CliProgress
    from monctl.project import Project
    from monctl.result import Result

F = TypeVar("F", bound=Callable[..., Any])

DEST_HELP = "Directory or s3://bucket/prefix [default: MONCTL_BACKUP_DEST, else <project>/backups]."

dest_from = click.option("--from", "source", metavar="DEST", callback=checked_path, help=DEST_HELP)
backup_id = click.argument("backup_id", metavar="ID", type=BackupId())
allow_downgrade_option = click.option(
    "--allow-downgrade",
    is_flag=True,
    help="Restore even into an older major.minor version than the one that wrote the data.",
)

# Retention, the same for `backup --keep-*` (after a complete backup) and `backup prune`.
# A count beyond 100 years of daily backups means nothing but can overflow a date.
_COUNT = click.IntRange(min=0, max=36500)
RETENTION = (
    ("--keep-last", "keep_last", "Keep the N newest complete backups."),
    ("--keep-days", "keep_days", "Keep backups started less than N days ago."),
    ("--keep-daily", "keep_daily", "Keep the newest backup of each of the last N days with one."),
    ("--keep-weekly", "keep_weekly", "The same per ISO week."),
    ("--keep-monthly", "keep_monthly", "The same per month."),
    ("--keep-yearly", "keep_yearly", "The same per year."),
)


def retention_options(f: F) -> F:
    for flag, name, text in reversed(RETENTION):
        f = click.option(flag, name, type=_COUNT, metavar="N", help=text)(f)
    return f


def policy_of(options: dict[str, int | None]) -> Policy:
    from monctl.backup.retention import Policy

    return Policy(**{name: options.get(name) for _, name, _ in RETENTION})


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
    type=click.Choice(["auto", "zstd", "gzip", "none"]),
    default="auto",
    show_default=True,
    help="auto: compress each file only where it pays (a sample of it shrinks); "
    "or force one codec on everything.",
)
@click.option(
    "--full",
    is_flag=True,
    help="Read and write everything again, reusing nothing from the repository "
    "(repairs missing or damaged objects).",
)
@retention_options
@click.option("--sse", type=click.Choice(["AES256", "aws:kms"]), help="S3 server-side encryption.")
@click.option("--sse-kms-key-id", metavar="ID", help="KMS key for --sse aws:kms.")
@click.option("--storage-class", metavar="CLASS", help="S3 storage class, e.g. STANDARD_IA.")
@json_option
@quiet_option
@click.pass_context
def backup(
    ctx: click.Context,
    /,
    dest: str | None,
    services: tuple[str, ...],
    compression: str,
    full: bool,
    sse: str | None,
    sse_kms_key_id: str | None,
    storage_class: str | None,
    as_json: bool,
    quiet: bool,
    **keep: int | None,
) -> None:
    """Back up the stack's data (Prometheus, Grafana, Loki, Alertmanager) to DEST.

    Each service is copied consistently (Prometheus: TSDB snapshot; Grafana and
    Alertmanager: paused for the copy; Loki: flushed, then paused). Incremental:
    file contents are stored once, by hash, and shared between backups; TSDB
    blocks the repository holds are not even read again. The manifest is
    written last; if any service fails, no backup is recorded. With --keep-*
    options, retention and garbage collection (as `backup prune`) run after a
    complete backup.
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
    announcer = _announcer(project, "backup")

    def run() -> BackupReport:
        storage = open_destination(
            project, dest, sse=sse, kms_key_id=sse_kms_key_id, storage_class=storage_class
        )
        with CliProgress(out, "backing up") as progress:
            return create.run(
                project,
                app.runtime,
                storage,
                selected,
                compression=compression,
                full=full,
                retention=policy_of(keep),
                progress=progress,
            )

    names = ", ".join(s.name for s in selected)
    report = announcer.call(run, f"services: {names}", out)
    finish(out, announcer.wrap(report))


@backup.command("list", epilog=epilog("backup list"))
@dest_from
@json_option
@click.pass_obj
def list_(app: AppContext, source: str | None, as_json: bool) -> None:
    """List the backups in DEST, newest first (incomplete ones say why)."""
    from monctl.backup import repository
    from monctl.backup.destination import open_destination

    storage = open_destination(app.project, source)
    finish(output(as_json), repository.list_repository(storage))


@backup.command(epilog=epilog("backup verify"))
@click.argument("backup_id", metavar="ID", type=BackupId(), required=False)
@dest_from
@click.option("--service", "services", multiple=True, help="Verify only this service's data.")
@click.option(
    "--all", "everything", is_flag=True, help="Verify every backup and every object they need."
)
@json_option
@click.pass_obj
def verify(
    app: AppContext,
    backup_id: str | None,
    source: str | None,
    services: tuple[str, ...],
    everything: bool,
    as_json: bool,
) -> None:
    """Check backup ID (or, with --all, the whole repository) against its manifest.

    Re-hashes every archive (old flat backups) or every object a backup needs: its
    stored bytes against its name, its content against the manifest. Also checks
    everything a restore relies on (names, links), before any Docker is involved.
    A missing or damaged object is named with every backup that needs it (exit 10).
    """
    from monctl.backup.destination import open_destination
    from monctl.cli.progress import CliProgress

    if everything == (backup_id is not None):
        raise click.UsageError("give a backup ID, or --all")
    if everything and services:
        raise click.UsageError("--service goes with a backup ID, not with --all")
    out = output(as_json)
    storage = open_destination(app.project, source)
    with CliProgress(out, "verifying") as progress:
        result: Result
        if everything:
            from monctl.backup.verify_all import verify_all

            result = verify_all(storage, on_bytes=lambda n: progress.moved("repository", n))
        else:
            from monctl.backup import verify as op

            assert backup_id is not None
            result = op.verify(
                storage,
                backup_id,
                list(services) or None,
                check=False,
                on_bytes=lambda n: progress.moved(backup_id, n),
            )
    finish(out, result)


@backup.command(epilog=epilog("backup prune"))
@dest_from
@retention_options
@click.option("--dry-run", is_flag=True, help="Only show what would be deleted, and why.")
@json_option
@click.pass_obj
def prune(
    app: AppContext, /, source: str | None, dry_run: bool, as_json: bool, **keep: int | None
) -> None:
    """Delete old backups: those no --keep-* rule keeps (--dry-run says which rule keeps each).

    The newest complete backup is never deleted, nor a backup in use (a restore,
    a verify, a backup in progress: their lease), nor an incomplete backup that
    may still be running, nor a backup whose id lies in the future; names that
    are not monctl backup ids are never touched. Takes the project's lock.
    """
    from monctl.backup import lock, repository
    from monctl.backup.destination import open_destination

    policy = policy_of(keep)
    try:
        policy.check()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    project = app.project
    storage = open_destination(project, source)
    with lock.hold(lock.lock_path(project), "prune"):
        report = repository.prune(storage, policy, dry_run)
    finish(output(as_json), report)


@backup.command("test", epilog=epilog("backup test"))
@click.argument("backup_id", metavar="ID")
@dest_from
@click.option(
    "--service",
    "services",
    multiple=True,
    type=ServiceChoice(with_data=True),
    help="Drill only this service (repeatable) [default: all in the backup].",
)
@click.option(
    "--timeout",
    type=click.FloatRange(min=1, max=3600),
    default=180.0,
    show_default=True,
    help="Seconds each restored service may take to become ready.",
)
@allow_downgrade_option
@json_option
@click.pass_obj
def test(
    app: AppContext,
    backup_id: str,
    source: str | None,
    services: tuple[str, ...],
    timeout: float,
    allow_downgrade: bool,
    as_json: bool,
) -> None:
    """Restore drill: restore backup ID into a throwaway stack and check the data is usable.

    ID may be `latest`: the newest complete backup in DEST.

    The throwaway stack has its own project name, volumes and networks, publishes
    no port and cannot reach outside the host; the production stack is not
    touched. Each restored service is asked from inside that network whether its
    data is usable (Prometheus: a query over the backup's time range returns
    series; Grafana: its database lists the dashboards the backup recorded; Loki:
    lines from the backup's range; Alertmanager: the silences the backup
    recorded). The throwaway stack and its volumes are removed afterwards, always
    (also on failure, Ctrl-C or SIGTERM). Exit 0 only if every check passed.
    """
    from monctl.backup import drill
    from monctl.backup.destination import open_destination
    from monctl.cli.progress import CliProgress

    out = output(as_json)
    announcer = _announcer(app.project, "backup test")

    def run() -> DrillReport:
        storage = open_destination(app.project, source)
        with CliProgress(out, "drilling") as progress:
            return drill.run(
                app.project,
                storage,
                backup_id,
                services,
                allow_downgrade=allow_downgrade,
                ready_timeout=timeout,
                progress=progress,
            )

    report = announcer.call(run, f"restore drill of backup {backup_id}", out)
    finish(out, announcer.wrap(report))


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
@allow_downgrade_option
@json_option
@click.pass_obj
def restore(
    app: AppContext,
    backup_id: str,
    source: str | None,
    services: tuple[str, ...],
    yes: bool,
    allow_downgrade: bool,
    as_json: bool,
) -> None:
    """Restore backup ID into the stack's volumes (verified first; asks unless --yes).

    Every archive is checked against the manifest before anything is touched, and
    a service running an older major.minor than the one that wrote its data is
    refused (exit 6) unless --allow-downgrade.
    Then per service: the data is staged in a fresh volume (checked again as it
    is written), the service is stopped, its volume replaced, and it is started
    and waited for.
    """
    from monctl.backup import restore as op
    from monctl.backup.destination import open_destination
    from monctl.cli.progress import CliProgress

    out = output(as_json)
    announcer = _announcer(app.project, "restore")

    def run() -> RestoreReport:
        storage = open_destination(app.project, source)
        with CliProgress(out, "verifying") as progress:
            return op.run(
                app.project,
                app.runtime,
                storage,
                backup_id,
                services,
                confirm=_confirmer(yes, progress),
                progress=progress,
                allow_downgrade=allow_downgrade,
            )

    report = announcer.call(run, f"restore of backup {backup_id}", out)
    finish(out, announcer.wrap(report))


def _announcer(project: Project, command: str) -> Announcer:
    """Heartbeat and notifications of one run (settings read now: a bad one stops it).
    Backups ping MONCTL_BACKUP_PING_URL; restores and drills MONCTL_RESTORE_PING_URL.
    While another run holds a lock this one needs, no start is pinged."""
    from monctl.backup import heartbeat, lock
    from monctl.backup.announce import Announcer

    var = heartbeat.BACKUP_PING_VAR if command == "backup" else heartbeat.RESTORE_PING_VAR
    locks: tuple[Path, ...] = (lock.lock_path(project),)
    if command == "backup test":
        from monctl.backup.drill import drill_lock_path

        locks += (drill_lock_path(project),)
    return Announcer.for_command(project, command, var, locks)


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
