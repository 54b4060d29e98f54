"""`backup export`: a thin command over ``monctl.backup.export`` (a subcommand of backup)."""

from __future__ import annotations

import os
import sys

import click

from monctl.cli import AppContext
from monctl.cli.backup_options import (
    dest_from,
    identity_option,
    services_option,
)
from monctl.cli.common import epilog, finish, json_option, output, quiet_option
from monctl.cli.params import BackupId, checked_path


@click.command("export", epilog=epilog("backup export"))
@click.argument("backup_id", metavar="ID|latest", type=BackupId())
@dest_from
@services_option("Export", "all in the backup")
@click.option(
    "--output",
    "-o",
    "target",
    metavar="FILE|-",
    callback=checked_path,
    help="Write the tar here; '-' is stdout; a name ending in .zst or .gz is compressed "
    "[default: monctl-ID.tar in the current directory].",
)
@identity_option
@json_option
@quiet_option
@click.pass_obj
def export(
    app: AppContext,
    backup_id: str,
    source: str | None,
    services: tuple[str, ...],
    target: str | None,
    identity: tuple[str, ...],
    as_json: bool,
    quiet: bool,
) -> None:
    """Write backup ID (or `latest`) as one plain tar, for recovery without monctl.

    One POSIX (pax) tar stream that GNU tar, bsdtar and Python read: a top directory
    per service (grafana/, loki/, …) holding its data as a restore writes it —
    every file, directory, symlink and hard link with its mode, owner and time.
    Every object is verified as it streams (its stored hash, its content's size and
    sha256; an encrypted backup is decrypted with --identity or
    MONCTL_BACKUP_IDENTITY). A missing or damaged object stops the export with exit
    10 and no output file is left (the tar is written under a temporary name and
    renamed when complete, mode 0600); to stdout, the stream is cut (and ends in a
    block on which tar fails). The backup is leased meanwhile, so no prune deletes it.
    """
    from monctl.backup import export as op
    from monctl.cli.progress import CliProgress

    if target == op.STDOUT:
        if as_json:
            raise click.UsageError("--json prints on stdout, where --output - writes the tar")
        if sys.stdout.isatty():
            raise click.UsageError(
                "will not write a tar to a terminal: pipe it, or give --output FILE"
            )
    elif target is not None and os.path.isdir(target):
        raise click.UsageError(f"--output names a directory: {target}; give a file name")
    out = output(as_json, quiet)
    request = op.ExportRequest(app.project, source, backup_id, services, identity, target)
    with CliProgress(out, "exporting") as progress:
        report = op.perform(request, on_bytes=progress.moved)
    finish(out, report)
