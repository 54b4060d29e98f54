"""Options and helpers shared by the backup and restore commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import click

from monctl.cli.common import ServiceChoice, finish
from monctl.cli.params import BackupId, checked_path

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from monctl.cli.output import Output
    from monctl.monitoring.announce import Announcer
    from monctl.project import Project
    from monctl.result import Result

DEST_HELP = (
    "The backup repository: a directory or s3://bucket/prefix, the same for every backup "
    "command [default: MONCTL_BACKUP_DEST, else <project>/backups]."
)


def _dest_given(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """--repo/--from of a subcommand; the group's --repo/--to is its default
    (``backup --to D list`` lists D), and naming two different ones is an error."""
    value = checked_path(ctx, param, value)
    group = ctx.parent.params.get("dest") if ctx.parent is not None else None
    # Not ctx.get_parameter_source: click before 8.5 sets it only after the callback.
    # The group's value reaches the subcommand as its default, so any other value was
    # given to the subcommand.
    if group is not None and value is not None and value != group:
        raise click.UsageError(
            "two repositories given: one to `backup`, another to the subcommand", ctx
        )
    return value


# One destination option for every backup command (restic's --repo); --to (backup) and
# --from (the others) stay as the names they had.
dest_from = click.option(
    "--repo", "--from", "source", metavar="DEST", callback=_dest_given, help=DEST_HELP
)
backup_id = click.argument("backup_id", metavar="ID", type=BackupId())


identity_option = click.option(
    "--identity",
    "identity",
    multiple=True,
    metavar="FILE",
    callback=checked_path,
    help="An age identity file (age-keygen) or SSH private key that decrypts the backup "
    "(repeatable) [default: MONCTL_BACKUP_IDENTITY].",
)
allow_downgrade_option = click.option(
    "--allow-downgrade",
    is_flag=True,
    help="Restore even into an older major.minor version than the one that wrote the data.",
)


def services_option(
    doing: str, default: str
) -> Callable[[Callable[..., None]], Callable[..., None]]:
    """``--service NAME`` (repeatable), a service with data: "<doing> only this service"."""
    return click.option(
        "--service",
        "services",
        multiple=True,
        type=ServiceChoice(with_data=True),
        help=f"{doing} only this service (repeatable) [default: {default}].",
    )


def announcer_for(project: Project, command: str) -> Announcer:
    """Heartbeat and notifications of one run (settings read now: a bad one stops it).
    Backups ping MONCTL_BACKUP_PING_URL; restores and drills MONCTL_RESTORE_PING_URL.
    While another run holds a lock this one needs, no start is pinged."""
    from monctl.monitoring import heartbeat
    from monctl.monitoring.announce import Announcer
    from monctl.repository import locking

    var = heartbeat.BACKUP_PING_VAR if command == "backup" else heartbeat.RESTORE_PING_VAR
    locks: tuple[Path, ...] = (locking.lock_path(project),)
    if command == "backup test":
        from monctl.backup.drill import drill_lock_path

        locks += (drill_lock_path(project),)
    return Announcer.for_command(project, command, var, locks)


def run_announced(
    out: Output, project: Project, command: str, start_text: str, run: Callable[[], Result]
) -> None:
    """Run one backup, restore or drill between its heartbeat pings and notifications
    (settings read first: a bad one stops it before it starts), then print it."""
    announcer = announcer_for(project, command)
    finish(out, announcer.wrap(announcer.call(run, start_text, out)))
