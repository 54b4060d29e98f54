"""monctl's command line: the main group, global options and the one error boundary.

Commands live in sibling modules and are imported only when invoked, so
`monctl --version` and `--help` stay fast (no rich, docker or boto3 import).
"""

from __future__ import annotations

import gc
import importlib
import logging
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monctl import __version__

if TYPE_CHECKING:  # pragma: no cover
    from monctl.project import Project

# name -> "module:function". One line per command; the module is imported on use.
COMMANDS: dict[str, str] = {
    "up": "monctl.cli.stack:up",
    "down": "monctl.cli.stack:down",
    "status": "monctl.cli.stack:status",
    "logs": "monctl.cli.stack:logs",
    "init": "monctl.cli.stack:init",
    "health": "monctl.cli.health:health",
    "reload": "monctl.cli.reload:reload",
    "validate": "monctl.cli.reload:validate",
    "backup": "monctl.cli.backup:backup",
    "restore": "monctl.cli.backup:restore",
}

SHORT_HELP: dict[str, str] = {
    "up": "Start the stack and wait until it is ready.",
    "down": "Stop the stack (--volumes also deletes its data).",
    "status": "One row per service: state, health, uptime, image, URLs.",
    "logs": "Show service logs (passes through to docker compose).",
    "init": "Write an editable copy of the stack to a directory.",
    "health": "Check every service, concurrently (the CI gate).",
    "reload": "Validate, reload and confirm a service's configuration.",
    "validate": "Check all configuration without a running stack.",
    "backup": "Back up the stack's data to a directory or S3 (+ list/verify/prune).",
    "restore": "Restore a verified backup into the stack's volumes.",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return list(COMMANDS)

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        target = COMMANDS.get(cmd_name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        command: click.Command = getattr(importlib.import_module(module_name), attr)
        return command

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        # Listing commands must not import them all; the short help lives here.
        with formatter.section("Commands"):
            formatter.write_dl([(name, SHORT_HELP.get(name, "")) for name in COMMANDS])


class AppContext:
    """What every command receives: where the stack is, and how to find it."""

    def __init__(self, project_dir: Path | None, project_name: str | None) -> None:
        self.project_dir = project_dir
        self.project_name = project_name
        self._project: Project | None = None

    @property
    def project(self) -> Project:
        """The loaded monctl.project.Project (loaded on first use)."""
        if self._project is None:
            from monctl import project

            self._project = project.load(self.project_dir, self.project_name)
        return self._project


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="monctl")
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MONCTL_PROJECT_DIR",
    help="The stack's directory [env MONCTL_PROJECT_DIR; default: nearest with compose/].",
)
@click.option(
    "--project-name",
    envvar="COMPOSE_PROJECT_NAME",
    help="Compose project name [env COMPOSE_PROJECT_NAME; default: monitoring].",
)
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-vv: debug).")
@click.pass_context
def cli(
    ctx: click.Context, project_dir: Path | None, project_name: str | None, verbose: int
) -> None:
    """monctl: run, check, reload and back up the Residency Scheduler monitoring stack.

    Exit codes are listed in the README (and in `monctl.errors.ExitCode`).
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    ctx.obj = AppContext(project_dir, project_name)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning MonctlErrors into exit codes."""
    # Start-up time is part of every command (and of `monctl health`'s wall
    # time). In monctl's own process, two optional imports are made to look
    # absent: httpcore imports trio whenever it is installed (~0.25 s) though
    # monctl only runs asyncio, and httpx imports its own command-line client
    # (rich, pygments) on `import httpx`. Neither is ever used here.
    for optional in ("trio", "httpx._main"):
        sys.modules.setdefault(optional, None)  # type: ignore[arg-type]

    sys.exit(_run(argv))


def _run(argv: list[str] | None) -> int:
    """Run the CLI and return the exit code; the one place errors become codes."""
    from monctl.errors import ExitCode, Interrupted, MonctlError

    try:
        # standalone_mode=False: click returns Exit codes instead of exiting, and
        # lets MonctlError through to this one place.
        code = cli.main(args=argv, prog_name="monctl", standalone_mode=False)
    except MonctlError as exc:
        _report(exc.message, exc.hint)
        code = int(exc.exit_code)
    except click.exceptions.Abort:
        _report("aborted", None)
        code = int(Interrupted.exit_code)
    except KeyboardInterrupt:
        _report("interrupted", None)
        code = int(ExitCode.INTERRUPTED)
    except click.ClickException as exc:
        exc.show()
        code = exc.exit_code
    # The interpreter's final garbage collections walk every object the
    # imports made (~0.05 s); they are about to be freed with the process.
    gc.freeze()
    return code if isinstance(code, int) else 0


def _report(message: str, hint: str | None) -> None:
    from monctl.output import Output

    Output().error(message, hint)
