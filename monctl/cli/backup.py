"""backup (+ list, verify, prune): thin commands over ``monctl.backup``.

`restore` and `backup test` (the drill) are in ``restore.py``."""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from monctl.cli import AppContext
from monctl.cli.backup_options import (
    DEST_HELP,
    dest_from,
    identity_option,
    run_announced,
    services_option,
)
from monctl.cli.common import (
    F,
    epilog,
    finish,
    json_option,
    output,
    quiet_option,
)
from monctl.cli.export import export
from monctl.cli.params import BackupId, checked_path
from monctl.cli.restore import drill_command

if TYPE_CHECKING:  # pragma: no cover
    from monctl.backup.reports import BackupReport
    from monctl.repository.retention import Policy


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
    from monctl.repository.retention import Policy

    return Policy(**{name: options.get(name) for _, name, _ in RETENTION})


def checked_policy(options: dict[str, int | None], *, required: bool = False) -> Policy:
    """The retention rules given, checked before anything runs (usage error, exit 2):
    none at all only where ``required``, and never rules that are all 0."""
    policy = policy_of(options)
    if policy.empty and not required:
        return policy
    try:
        policy.check()
    except ValueError as exc:
        raise click.UsageError(str(exc)) from None
    return policy


@click.group(invoke_without_command=True, epilog=epilog("backup"))
@click.option("--repo", "--to", "dest", metavar="DEST", callback=checked_path, help=DEST_HELP)
@services_option("Back up", "all with data")
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
@click.option(
    "--encrypt-to",
    "encrypt_to",
    multiple=True,
    metavar="RECIPIENT",
    help="Encrypt every object with age to this public key: age1… or an SSH public key "
    "(repeatable; comma-separated also) [default: MONCTL_BACKUP_ENCRYPT_TO].",
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
    encrypt_to: tuple[str, ...],
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
    complete backup. With --encrypt-to, every object is encrypted (age) as it
    streams: no plaintext reaches the destination or a temporary file.

    \b
    Examples:
      monctl backup -q --keep-last 14 --keep-days 30   the nightly job
      monctl backup --repo s3://bucket/monitoring --service grafana
    """
    if ctx.invoked_subcommand is not None:
        _pass_down(ctx, ctx.invoked_subcommand)
        return
    from monctl.backup import create
    from monctl.cli.progress import CliProgress

    app: AppContext = ctx.obj
    out = output(as_json, quiet)
    request = create.BackupRequest(
        app.project,
        app.runtime,
        dest,
        create.services_to_back_up(services),
        compression=compression,
        full=full,
        encrypt_to=encrypt_to,
        retention=checked_policy(keep),
        sse=sse,
        kms_key_id=sse_kms_key_id,
        storage_class=storage_class,
    )

    def run() -> BackupReport:
        with CliProgress(out, "backing up") as progress:
            return create.perform(request, progress)

    names = ", ".join(s.name for s in request.services)
    run_announced(out, app.project, "backup", f"services: {names}", run)


def _pass_down(ctx: click.Context, name: str) -> None:
    """Options given to `backup` before a subcommand are that subcommand's where it has
    them (`backup --to D list` lists D: --to is its --repo/--from); any other is a
    usage error, never silently dropped."""
    from click.core import ParameterSource

    sub = backup.commands[name]
    takes = {p.name for p in sub.params}
    passed: dict[str, object] = {}
    for param in ctx.command.params:
        if (
            not param.name
            or ctx.get_parameter_source(param.name) is not ParameterSource.COMMANDLINE
        ):
            continue
        target = "source" if param.name == "dest" else param.name
        if target not in takes:
            raise click.UsageError(
                f"{param.opts[0]} is an option of `monctl backup` itself, "
                f"not of `monctl backup {name}` (give it after `{name}`, if it takes it)",
                ctx,
            )
        passed[target] = ctx.params[param.name]
    if passed:
        ctx.default_map = {**(ctx.default_map or {}), name: passed}


@backup.command("list", epilog=epilog("backup list"))
@dest_from
@json_option
@click.pass_obj
def list_(app: AppContext, source: str | None, as_json: bool) -> None:
    """List the backups in DEST, newest first (incomplete ones say why).

    \b
    Examples:
      monctl backup list
      monctl backup list --repo /mnt/backups --json
    """
    from monctl.backup import listing

    finish(output(as_json), listing.perform(listing.ListRequest(app.project, source)))


@backup.command(epilog=epilog("backup verify"))
@click.argument("backup_id", metavar="ID", type=BackupId(), required=False)
@dest_from
@click.option("--service", "services", multiple=True, help="Verify only this service's data.")
@click.option(
    "--all", "everything", is_flag=True, help="Verify every backup and every object they need."
)
@identity_option
@click.option(
    "--deep",
    is_flag=True,
    help="Encrypted backups: require a key and check what the objects decrypt to "
    "(without a key, only their stored bytes are checked).",
)
@json_option
@click.pass_obj
def verify(
    app: AppContext,
    backup_id: str | None,
    source: str | None,
    services: tuple[str, ...],
    everything: bool,
    identity: tuple[str, ...],
    deep: bool,
    as_json: bool,
) -> None:
    """Check backup ID (`latest`: the newest complete one), or with --all the whole
    repository, against its manifest.

    Re-hashes every archive (old flat backups) or every object a backup needs: its
    stored bytes against its name, its content against the manifest. Also checks
    everything a restore relies on (names, links), before any Docker is involved.
    A missing or damaged object is named with every backup that needs it (exit 10).

    An encrypted backup is checked without its key as far as that goes: every
    object present, its stored bytes hashing to its name. With --identity (or
    MONCTL_BACKUP_IDENTITY), what they decrypt to is checked too; --deep makes
    that required (no key, or a key that opens none of them: exit 10).

    \b
    Examples:
      monctl backup verify latest
      monctl backup verify --all --repo s3://bucket/monitoring
    """
    from monctl.cli.progress import CliProgress

    if everything == (backup_id is not None):
        raise click.UsageError("give a backup ID, or --all")
    if everything and services:
        raise click.UsageError("--service goes with a backup ID, not with --all")
    from monctl.backup import verify as op

    out = output(as_json)
    request = op.VerifyRequest(app.project, source, backup_id, services, identity, deep)
    with CliProgress(out, "verifying") as progress:
        result = op.perform(request, on_bytes=progress.moved)
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

    \b
    Examples:
      monctl backup prune --keep-daily 7 --keep-weekly 4 --dry-run
    """
    from monctl.backup import prune as op

    policy = checked_policy(keep, required=True)
    finish(output(as_json), op.perform(op.PruneRequest(app.project, source, policy, dry_run)))


# `backup test` restores, so it lives with restore; it is a subcommand of backup.
backup.add_command(drill_command)
backup.add_command(export)  # `backup export`: a plain tar of a backup
