"""Option decorators and helpers shared by the commands."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import click

from monctl import catalogue
from monctl.errors import ExitCode

F = TypeVar("F", bound=Callable[..., Any])

json_option = click.option(
    "--json", "as_json", is_flag=True, help="Print one JSON document on stdout, nothing else."
)
quiet_option = click.option("-q", "--quiet", is_flag=True, help="Print nothing on success.")

services_argument = click.argument(
    "services", nargs=-1, type=click.Choice(catalogue.NAMES), metavar="[SERVICE]..."
)


def finish(code: ExitCode | int) -> None:
    """End the command with ``code`` (0 returns normally)."""
    if int(code) != 0:
        raise click.exceptions.Exit(int(code))
