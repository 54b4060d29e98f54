"""What the commands share: option decorators, service names, and ``finish``.

``finish`` is the one way a command ends: it prints the operation's result (a
table, or the JSON document with ``--json``) and exits with the result's code.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from monctl.cli import INVOCATION

if TYPE_CHECKING:  # pragma: no cover
    from monctl.cli.output import Output
    from monctl.result import Result

F = TypeVar("F", bound=Callable[..., Any])


def _remember_json(ctx: click.Context, param: click.Parameter, value: bool) -> bool:
    INVOCATION.json = INVOCATION.json or value
    command = " ".join(ctx.command_path.split()[1:])
    # A group's option is read before its subcommand's: keep the subcommand's name
    # (`backup list`, from the command line) when a usage error stops it first.
    if not INVOCATION.command.startswith(f"{command} "):
        INVOCATION.command = command
    return value


json_option = click.option(
    "--json",
    "as_json",
    is_flag=True,
    callback=_remember_json,
    help="Print one JSON document on stdout, nothing else (also on failure).",
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")


class ServiceChoice(click.ParamType):  # type: ignore[type-arg]
    """A service name, checked against the declarations when the command runs
    (not when the module is imported), so every declared service is accepted."""

    name = "service"

    def __init__(self, extra: tuple[str, ...] = (), with_data: bool = False) -> None:
        self.extra = extra
        self.with_data = with_data

    def choices(self) -> tuple[str, ...]:
        from monctl import services

        declared = services.with_data() if self.with_data else services.SERVICES
        return (*(s.name for s in declared), *self.extra)

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        if value in self.choices():
            return str(value)
        self.fail(f"{value!r} is not one of {', '.join(self.choices())}", param, ctx)

    def get_metavar(self, param: click.Parameter, ctx: click.Context | None = None) -> str:
        return "SERVICE"

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[Any]:
        from click.shell_completion import CompletionItem

        return [CompletionItem(name) for name in self.choices() if name.startswith(incomplete)]


services_argument = click.argument(
    "services", nargs=-1, type=ServiceChoice(), metavar="[SERVICE]..."
)


def output(as_json: bool = False, quiet: bool = False) -> Output:
    from monctl.cli.output import Output

    return Output(json_mode=as_json, quiet=quiet)


def finish(out: Output, result: Result) -> NoReturn:
    """Print ``result`` (its table, or its JSON document) and exit with its code."""
    out.emit(INVOCATION.command, result)
    raise click.exceptions.Exit(int(result.exit_code))


def epilog(command: str) -> str:
    from monctl.cli.exit_codes import epilog as render

    return render(command)
