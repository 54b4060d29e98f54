"""up, down, status, logs, init: the stack's lifecycle (thin commands over monctl/lifecycle/)."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from monctl.cli import AppContext
from monctl.cli.common import epilog, finish, json_option, output, services_argument
from monctl.cli.params import Seconds, TailLines, checked_path
from monctl.errors import Interrupted


@click.command(epilog=epilog("up"))
@services_argument
@click.option(
    "--timeout",
    type=Seconds(min=0, max=86400),
    default=180.0,
    show_default=True,
    help="Seconds to wait for ready.",
)
@click.option("--no-wait", is_flag=True, help="Return once containers are started.")
@json_option
@click.pass_obj
def up(
    app: AppContext, services: tuple[str, ...], timeout: float, no_wait: bool, as_json: bool
) -> None:
    """Start the stack (or SERVICEs) and wait until every service is ready.

    Creates .env from .env.example on first run (fresh secrets, mode 0600) and
    the application's external network if missing. A missing application is
    reported, not fatal.

    \b
    Examples:
      monctl up                      the whole stack, waiting until it is ready
      monctl up prometheus grafana   only these services
    """
    from monctl import services as declared
    from monctl.cli.progress import CliProgress
    from monctl.lifecycle import up as verb

    out = output(as_json)
    with CliProgress(out) as progress:
        selected = declared.select(services) if services else ()
        request = verb.UpRequest(app.project, app.runtime, selected, timeout, not no_wait)
        result = verb.perform(request, progress)
    finish(out, result)


@click.command(epilog=epilog("down"))
@click.option("--volumes", is_flag=True, help="Also delete the stack's data volumes.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting data.")
@json_option
@click.pass_obj
def down(app: AppContext, volumes: bool, yes: bool, as_json: bool) -> None:
    """Stop and remove the stack's containers (--volumes: and its data).

    \b
    Examples:
      monctl down                    stop the stack, keep its data
      monctl down --volumes --yes   also delete its data (no question)
    """
    from monctl.cli.output import inert
    from monctl.lifecycle import down as verb

    project, runtime = app.project, app.runtime
    if volumes and not yes:
        # No terminal to ask: refuse rather than delete data unasked.
        if not sys.stdin.isatty():
            raise Interrupted(
                "deleting volumes needs a confirmation and there is no one to ask",
                hint="run it on a terminal, or pass --yes",
            )
        names = runtime.volumes()
        listing = ", ".join(names) if names else "(none exist)"
        click.confirm(
            inert(
                f"This deletes the volumes {listing} of project {project.name!r}: all "
                "metrics, dashboards, logs and silences. Continue?"
            ),
            abort=True,
            err=True,
        )
    finish(output(as_json), verb.perform(verb.DownRequest(project, runtime, volumes)))


@click.command(epilog=epilog("status"))
@json_option
@click.pass_obj
def status(app: AppContext, as_json: bool) -> None:
    """One row per service: container state, Docker health, uptime, image, version, URLs.

    \b
    Examples:
      monctl status
      monctl status --json | jq '.services[].state'
    """
    from monctl.lifecycle import status as verb

    finish(output(as_json), verb.perform(verb.StatusRequest(app.project, app.runtime)))


@click.command(epilog=epilog("logs"))
@services_argument
@click.option("-f", "--follow", is_flag=True, help="Keep following the logs.")
@click.option("--tail", type=TailLines(), help="Only the last N lines of each service.")
@click.pass_obj
def logs(app: AppContext, services: tuple[str, ...], follow: bool, tail: str | None) -> None:
    """Show the services' logs (passes through to `docker compose logs`).

    \b
    Examples:
      monctl logs -f prometheus      follow Prometheus' log
      monctl logs --tail 100         the last 100 lines of every service
    """
    from monctl import services as declared

    selected = declared.select(services) if services else ()
    code = app.runtime.logs(selected, follow, tail)
    raise click.exceptions.Exit(code)


@click.command(epilog=epilog("init"))
@click.argument(
    "directory", type=click.Path(file_okay=False, path_type=Path), callback=checked_path
)
@click.option(
    "--force", is_flag=True, help="Overwrite the stack files of an existing copy (edits too)."
)
@click.option(
    "--upgrade",
    is_flag=True,
    help="Update an existing copy to the files this monctl ships: untouched files are "
    "replaced, an edited one gets the new file beside it as FILE.new; .env's image pins "
    "are compared with the shipped ones.",
)
@click.option("--dry-run", is_flag=True, help="With --upgrade: only show what would change.")
@json_option
def init(directory: Path, force: bool, upgrade: bool, dry_run: bool, as_json: bool) -> None:
    """Write an editable copy of the stack (compose/, config/, .env.example) to DIRECTORY.

    \b
    Examples:
      monctl init /opt/monitoring                      a new copy of the stack
      monctl init --upgrade --dry-run /opt/monitoring  what a newer monctl ships differently
      monctl init --upgrade /opt/monitoring            update it, keeping every edit
    """
    from monctl import project

    if dry_run and not upgrade:
        raise click.UsageError("--dry-run goes with --upgrade")
    if upgrade:
        if force:
            raise click.UsageError("--upgrade keeps edits, --force overwrites them: choose one")
        from monctl.lifecycle import upgrade as verb

        request = verb.UpgradeRequest(project.packaged_stack(), directory, dry_run)
        finish(output(as_json), verb.perform(request))
    target = project.init(directory, force=force)
    if as_json:
        output(as_json).json(
            {"command": "init", "ok": True, "exit_code": 0, "directory": str(target)}
        )
        return
    output().info(f"wrote the stack to {target}; next: cd {target} && monctl up")
