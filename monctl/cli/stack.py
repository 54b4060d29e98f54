"""up, down, status, logs, init: the stack's lifecycle."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from monctl import catalogue
from monctl.cli import AppContext
from monctl.cli.common import finish, json_option, services_argument
from monctl.errors import ExitCode, Interrupted


@click.command()
@services_argument
@click.option("--timeout", default=180.0, show_default=True, help="Seconds to wait for ready.")
@click.option("--no-wait", is_flag=True, help="Return once containers are started.")
@json_option
@click.pass_obj
def up(
    app: AppContext, services: tuple[str, ...], timeout: float, no_wait: bool, as_json: bool
) -> None:
    """Start the stack (or SERVICEs) and wait until every service is ready.

    Creates .env from .env.example on first run (fresh secrets, mode 0600) and
    the application's external network if missing. Exit 0 when the stack's
    services are ready in time; 3 when not; a missing application is reported,
    not fatal.
    """
    from monctl.ops import lifecycle
    from monctl.output import Output

    out = Output(json_mode=as_json)
    project = app.project
    result = lifecycle.up(
        project, catalogue.select(services), timeout=timeout, wait=not no_wait, out=out
    )
    out.emit(result.report)
    finish(result.exit_code)


@click.command()
@click.option("--volumes", is_flag=True, help="Also delete the stack's data volumes.")
@click.option("--yes", "-y", is_flag=True, help="Do not ask before deleting data.")
@click.pass_obj
def down(app: AppContext, volumes: bool, yes: bool) -> None:
    """Stop and remove the stack's containers (--volumes: and its data)."""
    from monctl.ops import lifecycle
    from monctl.output import Output

    out = Output()
    project = app.project
    if volumes and not yes:
        if not sys.stdin.isatty():
            raise Interrupted(
                "deleting volumes needs a confirmation and there is no one to ask",
                hint="run it on a terminal, or pass --yes",
            )
        names = lifecycle.volumes(project)
        listing = ", ".join(names) if names else "(none exist)"
        # No terminal to ask: refuse rather than delete data unasked.
        click.confirm(
            f"This deletes the volumes {listing} of project {project.name!r}: all metrics, "
            "dashboards, logs and silences. Continue?",
            abort=True,
            err=True,
        )
    lifecycle.down(project, volumes)
    out.info(f"stack {project.name!r} stopped" + (" and its volumes deleted" if volumes else ""))


@click.command()
@json_option
@click.pass_obj
def status(app: AppContext, as_json: bool) -> None:
    """One row per service: container state, Docker health, uptime, image, version, URLs."""
    from monctl.ops import lifecycle
    from monctl.output import Output

    Output(json_mode=as_json).emit(lifecycle.status(app.project))


@click.command(context_settings={"ignore_unknown_options": False})
@services_argument
@click.option("-f", "--follow", is_flag=True, help="Keep following the logs.")
@click.option("--tail", metavar="N", help="Only the last N lines of each service.")
@click.pass_obj
def logs(app: AppContext, services: tuple[str, ...], follow: bool, tail: str | None) -> None:
    """Show the services' logs (passes through to `docker compose logs`)."""
    from monctl.adapters import compose

    finish(compose.logs(app.project, services, follow, tail))


@click.command()
@click.argument("directory", type=click.Path(file_okay=False, path_type=Path))
@click.option("--force", is_flag=True, help="Overwrite the stack files of an existing copy.")
def init(directory: Path, force: bool) -> None:
    """Write an editable copy of the stack (compose/, config/, .env.example) to DIRECTORY."""
    from monctl import project
    from monctl.output import Output

    target = project.init(directory, force=force)
    Output().info(f"wrote the stack to {target}; next: cd {target} && monctl up")
    finish(ExitCode.OK)
