"""restore, and `backup test` (the restore drill): thin commands over ``monctl.backup``."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import click

from monctl.cli import AppContext
from monctl.cli.backup_options import (
    allow_downgrade_option,
    backup_id,
    dest_from,
    identity_option,
    run_announced,
    services_option,
)
from monctl.cli.common import epilog, json_option, output
from monctl.cli.params import Seconds
from monctl.errors import Interrupted

if TYPE_CHECKING:  # pragma: no cover
    from monctl.backup.reports import DrillReport
    from monctl.backup.restore import RestoreReport
    from monctl.cli.progress import CliProgress


@click.command("test", epilog=epilog("backup test"))
@backup_id
@dest_from
@services_option("Drill", "all in the backup")
@click.option(
    "--timeout",
    type=Seconds(min=1, max=3600),
    default=180.0,
    show_default=True,
    help="Seconds each restored service may take to become ready.",
)
@identity_option
@allow_downgrade_option
@json_option
@click.pass_obj
def drill_command(
    app: AppContext,
    backup_id: str,
    source: str | None,
    services: tuple[str, ...],
    timeout: float,
    identity: tuple[str, ...],
    allow_downgrade: bool,
    as_json: bool,
) -> None:
    """Restore drill: restore backup ID into a throwaway stack and check the data is usable.

    ID may be `latest`: the newest complete backup in DEST.

    The throwaway stack has its own project name, volumes and networks, publishes
    no port and cannot reach outside the host; the production stack is not
    touched. Each restored service is asked from inside that network whether its
    data is usable, compared with what the backup recorded (Prometheus: the
    samples of its series over the hour before; Grafana: the dashboards; Loki: the
    lines of a few streams over the hour before; Alertmanager: the silences;
    nothing recorded: nothing to compare). The backup is verified first, before
    Docker is contacted. The throwaway stack and its volumes are removed afterwards, always
    (also on failure, Ctrl-C or SIGTERM). Exit 0 only if every check passed.

    The throwaway stack runs as plain containers (compose) on the engine monctl
    talks to, also with --runtime swarm: on Swarm the drill runs on that manager,
    not as a Swarm stack.

    \b
    Examples:
      monctl backup test latest
      monctl backup test 20260101T020000Z --service prometheus
    """
    from monctl.backup import drill
    from monctl.cli.progress import CliProgress

    out = output(as_json)
    if app.project.runtime != "compose":
        # Said, not silently ignored: the drill does not use the project's runtime.
        out.info(
            f"the drill runs as plain containers on this engine, not on the "
            f"{app.project.runtime} runtime (see `monctl backup test --help`)"
        )

    request = drill.DrillRequest(
        app.project, source, backup_id, services, identity, allow_downgrade, timeout
    )

    def run() -> DrillReport:
        with CliProgress(out, "drilling") as progress:
            return drill.perform(request, progress)

    run_announced(out, app.project, "backup test", f"restore drill of backup {backup_id}", run)


@click.command(epilog=epilog("restore"))
@backup_id
@dest_from
@services_option("Restore", "all in the backup")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before overwriting the volumes.")
@identity_option
@allow_downgrade_option
@json_option
@click.pass_obj
def restore(
    app: AppContext,
    backup_id: str,
    source: str | None,
    services: tuple[str, ...],
    yes: bool,
    identity: tuple[str, ...],
    allow_downgrade: bool,
    as_json: bool,
) -> None:
    """Restore backup ID into the stack's volumes (verified first; asks unless --yes).

    ID may be `latest`: the newest complete backup in DEST.

    Every archive is checked against the manifest before anything is touched, and
    a service running an older major.minor than the one that wrote its data is
    refused (exit 6) unless --allow-downgrade. An encrypted backup needs --identity:
    without it, or with one that fits none of its keys, exit 10 and nothing touched.
    On the Docker host as root (a local engine, plain local volumes, compose) each
    service's data is written once, checked as it is written, into a directory
    beside its live data while it keeps running; once every object checked out,
    each service is stopped, the directories swapped by renames, and it is started
    and waited for: the downtime is the swap, not the copy. Otherwise each service
    is staged in a fresh volume through the engine (checked again as it is
    written), stopped, its volume refilled, started and waited for.

    \b
    Examples:
      monctl restore latest --service grafana
      monctl restore 20260101T020000Z --repo /mnt/backups --yes
    """
    from monctl.backup import restore as op
    from monctl.cli.progress import CliProgress

    out = output(as_json)

    request = op.RestoreRequest(
        app.project, app.runtime, source, backup_id, services, identity, allow_downgrade
    )

    def run() -> RestoreReport:
        with CliProgress(out, "verifying") as progress:
            return op.perform(request, _confirmer(yes, progress), progress)

    run_announced(out, app.project, "restore", f"restore of backup {backup_id}", run)


def _confirmer(yes: bool, progress: CliProgress) -> Callable[[str], bool]:
    """Ask on the terminal (stderr) unless --yes; with stdin closed, refuse (exit 130)."""

    def confirm(question: str) -> bool:
        if yes:
            return True
        progress.stop()  # the question must not fight the progress display
        try:
            from monctl.cli.output import inert

            return click.confirm(inert(question), default=False, err=True)
        except click.exceptions.Abort:  # stdin closed: nobody to ask
            raise Interrupted(
                "restore needs a confirmation and there is no one to ask",
                hint="run it on a terminal, or pass --yes",
            ) from None

    return confirm
