"""monctl's command line: the main group, global options and the one error boundary.

Commands are thin: they parse options, call one operation, and hand its
result to ``common.finish`` (print it, exit with its code). They live in
sibling modules imported only when invoked, so ``monctl --version`` and
``--help`` stay fast (no rich, docker or boto3 import).
"""

from __future__ import annotations

import errno
import gc
import importlib
import logging
import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monctl import RUNTIMES, __version__
from monctl.cli.commands import COMMANDS, SHORT_HELP, SUBCOMMANDS
from monctl.cli.params import checked_path

if TYPE_CHECKING:  # pragma: no cover
    from monctl.errors import MonctlError
    from monctl.project import Project
    from monctl.runtime import Runtime


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
    """What every command receives: where the stack is, and how it runs."""

    def __init__(
        self, project_dir: Path | None, project_name: str | None, runtime: str | None = None
    ) -> None:
        self.project_dir = project_dir
        self.project_name = project_name
        self.runtime_name = runtime
        self._project: Project | None = None
        self._runtime: Runtime | None = None

    @property
    def project(self) -> Project:
        """The loaded monctl.project.Project (loaded on first use)."""
        if self._project is None:
            from monctl import project

            self._project = project.load(self.project_dir, self.project_name, self.runtime_name)
        return self._project

    @property
    def runtime(self) -> Runtime:
        """The runtime of the project's stack (nothing is contacted until it is used)."""
        if self._runtime is None:
            from monctl.runtime import open_runtime

            self._runtime = open_runtime(self.project)
        return self._runtime


class Invocation:
    """What the error boundary must know about the running command: its name,
    and whether ``--json`` asked for a JSON document even on failure."""

    command = ""
    json = False


INVOCATION = Invocation()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="monctl")
@click.option(
    "--project-dir",
    type=click.Path(file_okay=False, path_type=Path),
    envvar="MONCTL_PROJECT_DIR",
    callback=checked_path,
    help="The stack's directory [env MONCTL_PROJECT_DIR; default: nearest with compose/].",
)
@click.option(
    "--project-name",
    envvar="COMPOSE_PROJECT_NAME",
    help="Compose project (or Swarm stack) name [env COMPOSE_PROJECT_NAME; default: monitoring].",
)
@click.option(
    "--runtime",
    type=click.Choice(RUNTIMES),
    help="How the stack runs: compose (one engine) or swarm (docker stack deploy) "
    "[env or .env MONCTL_RUNTIME; default: compose].",
)
@click.option("-v", "--verbose", count=True, help="More detail on stderr (-vv: debug).")
@click.pass_context
def cli(
    ctx: click.Context,
    project_dir: Path | None,
    project_name: str | None,
    runtime: str | None,
    verbose: int,
) -> None:
    """monctl: run, check, reload and back up the Residency Scheduler monitoring stack.

    Exit codes are listed in the README and in each command's --help.
    """
    level = logging.WARNING - 10 * verbose
    logging.basicConfig(
        level=level, format="%(levelname)s %(name)s: %(message)s", stream=sys.stderr
    )
    from monctl.redaction import install_log_filter

    install_log_filter()
    ctx.obj = AppContext(project_dir, project_name, runtime)


def main(argv: list[str] | None = None) -> None:
    """Console-script entry point: run the CLI, turning MonctlErrors into exit codes."""
    # Start-up time is part of every command (and of `monctl health`'s wall
    # time). In monctl's own process, optional imports are made to look absent:
    # httpcore imports trio whenever it is installed (~0.25 s) though monctl only
    # runs asyncio; httpx imports its own command-line client (rich, pygments) on
    # `import httpx`; the Docker SDK imports paramiko (and invoke: ~70 ms, a tenth
    # of a first backup's fixed cost) whenever the ssh extra is installed, for a
    # transport only DOCKER_HOST=ssh://... uses. None of them is used here.
    optional = ["trio", "httpx._main"]
    if not os.environ.get("DOCKER_HOST", "").startswith("ssh://"):
        optional.append("paramiko")
    for name in optional:
        sys.modules.setdefault(name, None)  # type: ignore[arg-type]

    sys.exit(_run(argv))


def _run(argv: list[str] | None) -> int:
    """Run the CLI and return the exit code; the one place errors become codes."""
    from monctl import signals
    from monctl.errors import ExitCode, MonctlError, UsageError

    signals.install()
    args = list(sys.argv[1:] if argv is None else argv)
    INVOCATION.json = "--json" in args
    INVOCATION.command = _command_of(args)
    try:
        # standalone_mode=False: click returns Exit codes instead of exiting, and
        # lets MonctlError through to this one place.
        code = cli.main(args=args, prog_name="monctl", standalone_mode=False)
    except MonctlError as exc:
        code = _fail(exc.message, exc, int(exc.exit_code))
    except click.exceptions.Abort:
        code = _fail("aborted", None, int(ExitCode.INTERRUPTED))
    except KeyboardInterrupt:
        code = _fail(
            "interrupted (Ctrl-C); everything paused was resumed", None, int(ExitCode.INTERRUPTED)
        )
    except signals.Terminated as exc:
        code = _fail(
            f"stopped by {exc}; everything paused was resumed, stopped services started, "
            "partial files and uploads removed",
            None,
            exc.exit_code,
        )
    except OSError as exc:
        if exc.errno != errno.ENAMETOOLONG:
            code = _unexpected(exc)
        else:
            # A path from .env or the environment that no file can have (the command
            # line's own paths are refused before the command runs).
            code = _fail(
                "a path is too long for this system"
                + (f": {_shorten(exc.filename)}" if isinstance(exc.filename, str) else ""),
                UsageError(
                    "", hint="shorten the path (in .env, the environment or the command line)"
                ),
                int(ExitCode.USAGE),
            )
    except click.ClickException as exc:
        code = _click_error(exc)
    except Exception as exc:
        code = _unexpected(exc)
    # The interpreter's final garbage collections walk every object the
    # imports made (~0.05 s); they are about to be freed with the process.
    gc.freeze()
    return code if isinstance(code, int) else 0


def _unexpected(exc: Exception) -> int:
    """The last resort: an exception monctl did not expect (a bug, or a failure nobody
    foresaw) ends like every other failure, as one error line (its type and message,
    redacted like all output) and exit 1, a JSON document with --json; the traceback
    only with -v, for the bug report. The heartbeat has pinged its failure already
    (``Announcer.call``)."""
    import logging
    import traceback

    from monctl.errors import ExitCode, OperationFailed

    if logging.getLogger().isEnabledFor(logging.INFO):  # -v
        from monctl.cli.output import inert
        from monctl.redaction import redact

        sys.stderr.write(inert(redact("".join(traceback.format_exception(exc)))))
    text = " ".join(str(exc).split())  # one line, whatever the message holds
    text = text if len(text) <= 300 else f"{text[:300]}…"
    hint = "this is a bug in monctl, or a failure it does not know yet: "
    hint += "run it again with -v for the traceback, and report it"
    message = f"unexpected error: {type(exc).__name__}" + (f": {text}" if text else "")
    return _fail(message, OperationFailed(message, hint=hint), int(ExitCode.FAILED))


def _click_error(exc: click.ClickException) -> int:
    """click's own errors (usage errors above all) as every expected failure: one
    `error:` line, and the command's --help as the hint (in --json too)."""
    from monctl.cli.output import inert
    from monctl.errors import UsageError

    if isinstance(exc, getattr(click.exceptions, "NoArgsIsHelpError", ())):
        exc.show()  # `monctl` alone: the help, as click shows it
        return exc.exit_code
    # click quotes values from the command line back, some without repr():
    # they are outside text like any other.
    message = inert(exc.format_message())
    ctx = exc.ctx if isinstance(exc, click.UsageError) else None
    hint = f"see `{ctx.command_path} --help`" if ctx is not None else None
    return _fail(message, UsageError(message, hint=hint), exc.exit_code)


def _shorten(path: str) -> str:
    return path if len(path) <= 60 else f"{path[:60]}…"


def _command_of(args: list[str]) -> str:
    """The command's name ("backup list") from the command line, for the JSON document."""
    words: list[str] = []
    skip = False
    for arg in args:
        if skip:
            skip = False
            continue
        if arg in ("--project-dir", "--project-name", "--runtime"):
            skip = True
            continue
        if arg.startswith("-"):
            if words:
                break
            continue
        if not words and arg in COMMANDS:
            words.append(arg)
        elif len(words) == 1 and arg in SUBCOMMANDS.get(words[0], ()):
            words.append(arg)
            break
        elif words:
            break
    return " ".join(words)


def _fail(message: str, error: MonctlError | None, code: int) -> int:
    from monctl.cli.output import Output

    if INVOCATION.json:
        _json_error(message, error, code)
    Output().error(message, error.hint if error else None)
    return code


def _json_error(message: str, error: MonctlError | None, code: int) -> None:
    from monctl.cli.output import Output
    from monctl.result import error_envelope

    Output(json_mode=True).json(error_envelope(INVOCATION.command, error, code, message))
