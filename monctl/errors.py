"""The one exception family of monctl and the exit codes it maps to.

Every expected failure is raised as a ``MonctlError`` subclass carrying a
message (what failed) and a hint (what to try next). The CLI turns it into one
line on stderr and the class's exit code, in exactly one place
(``monctl.cli.main``). Anything else is a bug and keeps its traceback.

The README's exit-code table is generated from ``ExitCode``; keep them in step.
"""

from __future__ import annotations

import enum


class ExitCode(enum.IntEnum):
    """Documented process exit codes. Scripts and CI rely on these numbers."""

    OK = 0
    FAILED = 1  # an operation failed (a reload refused, a backup or restore failed)
    USAGE = 2  # bad command line (click's own code)
    UNHEALTHY = 3  # a stack service is down or not ready
    TARGETS_DOWN = 4  # the stack is fine, but a watched application target is down
    DOCKER = 5  # Docker daemon unreachable or not permitted, compose missing
    CONFIG = 6  # no stack at the project dir, malformed .env, invalid configuration
    START_FAILED = 7  # the stack could not start: a host port taken, an image missing
    STORAGE = 8  # backup destination unreachable, bad credentials, missing backup
    LOCKED = 9  # another backup or restore holds the lock
    INTEGRITY = 10  # an archive is corrupt, truncated, unsafe or has no manifest
    INTERRUPTED = 130  # Ctrl-C, or a confirmation declined


EXIT_CODE_MEANINGS: dict[ExitCode, str] = {
    ExitCode.OK: "success; for health: every check passed",
    ExitCode.FAILED: "an operation failed (reload refused, backup or restore failed)",
    ExitCode.USAGE: "invalid command line",
    ExitCode.UNHEALTHY: "a stack service is down or not ready",
    ExitCode.TARGETS_DOWN: "stack healthy, but a watched application target is down",
    ExitCode.DOCKER: "Docker daemon not running or not permitted, or compose missing",
    ExitCode.CONFIG: "no stack found, malformed .env, or invalid configuration",
    ExitCode.START_FAILED: "the stack could not start (host port taken, image missing)",
    ExitCode.STORAGE: "backup storage unreachable, credentials refused, backup not found",
    ExitCode.LOCKED: "another backup or restore is running",
    ExitCode.INTEGRITY: "an archive is corrupt, truncated, unsafe or incomplete",
    ExitCode.INTERRUPTED: "interrupted (Ctrl-C) or confirmation declined",
}


class MonctlError(Exception):
    """An expected failure: a message for the operator and a hint for what to do next."""

    exit_code: ExitCode = ExitCode.FAILED

    def __init__(self, message: str, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint


class OperationFailed(MonctlError):
    exit_code = ExitCode.FAILED


class Unhealthy(MonctlError):
    exit_code = ExitCode.UNHEALTHY


class TargetsDown(MonctlError):
    exit_code = ExitCode.TARGETS_DOWN


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


class LockHeld(MonctlError):
    exit_code = ExitCode.LOCKED


class IntegrityError(MonctlError):
    exit_code = ExitCode.INTEGRITY


class Interrupted(MonctlError):
    exit_code = ExitCode.INTERRUPTED
