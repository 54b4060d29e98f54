"""Every command declared once: its name (also the ``command`` of its JSON document),
where its click command lives, its short help and the exit codes it can end with.

``monctl/cli/__init__.py`` lists and loads the commands from here (``COMMANDS``,
``SHORT_HELP``: imported on use, so ``monctl --help`` imports no command module),
``monctl/cli/exit_codes.py`` renders the exit codes (``COMMAND_CODES``) into
``--help`` and the docs, and ``monctl/cli/__init__.py::_command_of`` names a
subcommand for the JSON document from ``SUBCOMMANDS``. A new command is one
``Command`` here (and its click function).
"""

from __future__ import annotations

from monctl.errors import ExitCode as E


class Command:
    """One command. A plain class, not a dataclass: this module is imported by every
    start-up, ``--help`` included, and a dataclass costs a millisecond to make."""

    __slots__ = ("codes", "help", "name", "names_subcommand", "target")

    def __init__(
        self,
        name: str,
        target: str = "",
        help: str = "",
        codes: tuple[E, ...] = (),
        *,
        names_subcommand: bool = False,
    ) -> None:
        self.name = name  # "backup list": the group's name, then the subcommand's
        self.target = target  # "module:function" of a top-level command
        self.help = help  # its line in `monctl --help` (top-level commands)
        self.codes = codes  # the exit codes it can end with (USAGE and signals added)
        # A group whose subcommand is named in the JSON document already when the
        # command line is read (`backup list`), before its own --json is parsed.
        self.names_subcommand = names_subcommand


DECLARED: tuple[Command, ...] = (
    Command(
        "up",
        "monctl.cli.stack:up",
        "Start the stack and wait until it is ready.",
        (E.OK, E.UNHEALTHY, E.DOCKER, E.CONFIG, E.START_FAILED),
    ),
    Command(
        "down",
        "monctl.cli.stack:down",
        "Stop the stack (--volumes also deletes its data).",
        (E.OK, E.FAILED, E.DOCKER, E.CONFIG),
    ),
    Command(
        "status",
        "monctl.cli.stack:status",
        "One row per service: state, health, uptime, image, URLs.",
        (E.OK, E.DOCKER, E.CONFIG),
    ),
    Command(
        "logs",
        "monctl.cli.stack:logs",
        "Show service logs (passes through to docker compose).",
        (E.OK, E.FAILED, E.DOCKER, E.CONFIG),
    ),
    Command(
        "init",
        "monctl.cli.stack:init",
        "Write an editable copy of the stack to a directory.",
        (E.OK, E.CONFIG),
    ),
    Command(
        "health",
        "monctl.cli.health:health",
        "Check every service, concurrently (the CI gate).",
        (E.OK, E.UNHEALTHY, E.TARGETS_DOWN, E.CONFIG),
    ),
    Command(
        "reload",
        "monctl.cli.config:reload",
        "Validate, reload and confirm a service's configuration.",
        (E.OK, E.FAILED, E.DOCKER, E.CONFIG),
    ),
    Command(
        "validate",
        "monctl.cli.config:validate",
        "Check all configuration without a running stack.",
        (E.OK, E.FAILED, E.DOCKER, E.CONFIG),
    ),
    Command(
        "backup",
        "monctl.cli.backup:backup",
        "Back up the stack's data to a directory or S3 (+ list/verify/prune/test/export).",
        (E.OK, E.FAILED, E.DOCKER, E.CONFIG, E.STORAGE, E.LOCKED),
        names_subcommand=True,
    ),
    Command("backup list", codes=(E.OK, E.CONFIG, E.STORAGE)),
    Command("backup verify", codes=(E.OK, E.CONFIG, E.STORAGE, E.LOCKED, E.INTEGRITY)),
    # CONFIG: the lock file
    Command("backup prune", codes=(E.OK, E.CONFIG, E.STORAGE, E.LOCKED)),
    Command("backup export", codes=(E.OK, E.CONFIG, E.STORAGE, E.INTEGRITY)),
    Command(
        "backup test",
        codes=(
            E.OK,
            E.FAILED,
            E.DOCKER,
            E.CONFIG,
            E.START_FAILED,
            E.STORAGE,
            E.LOCKED,
            E.INTEGRITY,
        ),
    ),
    Command(
        "restore",
        "monctl.cli.restore:restore",
        "Restore a verified backup into the stack's volumes.",
        (E.OK, E.FAILED, E.DOCKER, E.CONFIG, E.STORAGE, E.LOCKED, E.INTEGRITY),
    ),
    Command(
        "credentials",
        "monctl.cli.credentials:credentials",
        "Rotate the password Prometheus and Alertmanager require.",
        names_subcommand=True,
    ),
    Command("credentials rotate", codes=(E.OK, E.UNHEALTHY, E.DOCKER, E.CONFIG, E.START_FAILED)),
)

# The views the rest of the CLI reads, all derived from DECLARED.
COMMANDS: dict[str, str] = {c.name: c.target for c in DECLARED if " " not in c.name}
SHORT_HELP: dict[str, str] = {c.name: c.help for c in DECLARED if " " not in c.name}
COMMAND_CODES: dict[str, tuple[E, ...]] = {c.name: c.codes for c in DECLARED if c.codes}
SUBCOMMANDS: dict[str, tuple[str, ...]] = {
    g.name: tuple(c.name.split()[1] for c in DECLARED if c.name.startswith(f"{g.name} "))
    for g in DECLARED
    if g.names_subcommand
}
