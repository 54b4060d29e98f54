"""The one exception family of monctl, and the exit codes: defined here, once.

Every expected failure is raised as a ``MonctlError`` subclass carrying a
message (what failed) and a hint (what to try next). The CLI turns it into one
line on stderr (or the JSON error document with ``--json``) and the class's
exit code, in exactly one place (``monctl.cli.main``). Anything else is a bug
(or a failure nobody foresaw): the same place ends it as one error line with
the exception's type and message, exit 1, the traceback only with ``-v``.

``ExitCode`` carries each code's meaning; the exit-code tables of README.md and
docs/ and every command's ``--help`` epilog are generated from it
(``monctl.cli.exit_codes``; a test fails when a document differs).
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Documented process exit codes. Scripts and CI rely on these numbers."""

    meaning: str

    def __new__(cls, value: int, meaning: str) -> ExitCode:
        member = int.__new__(cls, value)
        member._value_ = value
        member.meaning = meaning
        return member

    OK = 0, "success (health: every check passed)"
    FAILED = 1, "an operation failed (reload refused, backup or restore failed)"
    USAGE = 2, "invalid command line (or an optional extra that is not installed)"
    UNHEALTHY = 3, "a stack service is down or not ready"
    TARGETS_DOWN = 4, "stack healthy, but a watched application target is down"
    DOCKER = 5, "Docker daemon not running or not permitted, compose missing, not a swarm manager"
    CONFIG = 6, "no stack found, malformed .env, or invalid configuration"
    START_FAILED = 7, "the stack could not start (host port taken, image missing)"
    STORAGE = 8, "backup storage unreachable, credentials refused, backup not found"
    LOCKED = 9, "another backup or restore is running"
    INTEGRITY = 10, "an archive is corrupt, truncated, unsafe or incomplete"
    HANGUP = 129, "hung up (SIGHUP): stopped after resuming, restarting and cleaning up"
    INTERRUPTED = 130, "interrupted (Ctrl-C), or a confirmation declined"
    TERMINATED = 143, "terminated (SIGTERM): stopped after resuming, restarting and cleaning up"


class MonctlError(Exception):
    """An expected failure: a message for the operator and a hint for what to do next."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class OperationFailed(MonctlError):
    exit_code = ExitCode.FAILED


class UsageError(MonctlError):
    exit_code = ExitCode.USAGE


class DockerUnavailable(MonctlError):
    exit_code = ExitCode.DOCKER


class ConfigError(MonctlError):
    exit_code = ExitCode.CONFIG


class StartFailed(MonctlError):
    exit_code = ExitCode.START_FAILED


class PortInUse(StartFailed):
    def __init__(self, port: int, address: str, owner: str | None, service: str | None) -> None:
        who = f" by {owner}" if owner else ""
        for_service = f" (needed by {service})" if service else ""
        super().__init__(
            f"host port {address}:{port} is already in use{who}{for_service}",
            hint="stop whatever holds it, or choose another port in .env and run again",
        )
        self.port = port
        self.owner = owner
        self.service = service


class StorageError(MonctlError):
    exit_code = ExitCode.STORAGE


class OutOfSpace(StorageError):
    """No space (or quota) left where backup bytes go: ``place`` and the bytes ``free``
    there when it happened (None: unknown), for a caller that can say what it still
    needed (``monctl.adapters.storage.os_errors``)."""

    def __init__(
        self, message: str, hint: str | None = None, *, place: str = "", free: int | None = None
    ) -> None:
        super().__init__(message, hint)
        self.place = place
        self.free = free


class LockHeld(MonctlError):
    exit_code = ExitCode.LOCKED


class IntegrityError(MonctlError):
    exit_code = ExitCode.INTEGRITY


class Interrupted(MonctlError):
    exit_code = ExitCode.INTERRUPTED
