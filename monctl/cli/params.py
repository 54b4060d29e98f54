"""Command-line values checked where they enter: numbers, backup ids, paths.

Anything out of range is a usage error (exit 2) before a command runs: a NaN
timeout would never be reached, a path longer than the system allows fails
deep inside with an OSError, and a huge id would be echoed back whole. Values
quoted back in a message are shortened and printed inert.
"""

from __future__ import annotations

import math
import os
from typing import Any

import click


def shown(value: str, limit: int = 40) -> str:
    """``output.shown``, imported on use: --version and --help load this module."""
    from monctl.cli.output import shown as excerpt

    return excerpt(value, limit)


PATH_MAX = 4096  # bytes, with the terminating NUL (Linux)
NAME_MAX = 255  # bytes per path component
S3_URL_MAX = 1100  # "s3://" + a 63-byte bucket + a key prefix within S3's 1024-byte keys


class Seconds(click.FloatRange):
    """A number of seconds within [min, max]; NaN is refused (it compares false with
    every bound, so a NaN deadline is never reached)."""

    name = "seconds"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        number = super().convert(value, param, ctx)
        if not math.isfinite(number):
            self.fail(f"{shown(str(value))} is not a number of seconds", param, ctx)
        return number


class TailLines(click.ParamType):  # type: ignore[type-arg]
    """`--tail N`: a number of lines (0 to 10^9) or "all", as docker compose takes it."""

    name = "N"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        text = str(value).strip()
        if text == "all" or (text.isascii() and text.isdigit() and int(text) <= 10**9):
            return text
        self.fail(f"{shown(text)} is not a number of lines (or 'all')", param, ctx)


LATEST = "latest"  # as a backup id, everywhere one is taken: the newest complete backup


class BackupId(click.ParamType):  # type: ignore[type-arg]
    """A backup id as ``monctl backup list`` shows it: YYYYMMDDTHHMMSSZ, a real date;
    or ``latest`` (the command resolves it once the destination is open)."""

    name = "ID"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> str:
        from monctl.repository.manifest import is_backup_id

        text = str(value)
        if text == LATEST or (len(text) <= 32 and is_backup_id(text)):
            return text
        self.fail(
            f"{shown(text)} is not a backup id (YYYYMMDDTHHMMSSZ, as `monctl backup list` "
            "shows, or latest)",
            param,
            ctx,
        )

    def shell_complete(
        self, ctx: click.Context, param: click.Parameter, incomplete: str
    ) -> list[Any]:
        """`latest` and the ids in a local repository (an S3 one is not asked: a
        completion must answer at once, and never fail)."""
        from click.shell_completion import CompletionItem

        try:
            ids = [LATEST, *local_backup_ids(ctx)]
        except Exception:  # whatever goes wrong, complete what can be
            ids = [LATEST]
        return [CompletionItem(i) for i in ids if i.startswith(incomplete)]


def local_backup_ids(ctx: click.Context) -> list[str]:
    """The backup ids in the repository the command would use, newest first, when it is
    a directory: --repo/--from/--to, else MONCTL_BACKUP_DEST, else <project>/backups."""
    from pathlib import Path

    from monctl.repository.manifest import is_backup_id

    given = ctx.params.get("source") or (ctx.parent.params.get("dest") if ctx.parent else None)
    if not given:
        from monctl import project

        root = ctx.find_root().params.get("project_dir")
        loaded = project.load(root, None)
        given = loaded.setting("MONCTL_BACKUP_DEST") or str(loaded.root / "backups")
    if str(given).startswith("s3://"):
        return []
    found = [p.name for p in Path(str(given)).iterdir() if is_backup_id(p.name)]
    return sorted(found, reverse=True)[:200]


def too_long(path: str) -> str | None:
    """Why ``path`` cannot name a file on this system, or None when it can."""
    if path.startswith("s3://"):
        return None if len(path.encode()) <= S3_URL_MAX else f"longer than {S3_URL_MAX} bytes"
    raw = os.fsencode(path)
    if len(raw) >= PATH_MAX:
        return f"longer than {PATH_MAX - 1} bytes"
    if any(len(part) > NAME_MAX for part in raw.split(b"/")):
        return f"a name in it is longer than {NAME_MAX} bytes"
    return None


def checked_path(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """A click callback: refuse a path (or s3:// destination) too long to exist
    (each of them, for a repeatable option)."""
    if value is None:
        return value
    if isinstance(value, tuple):
        return tuple(checked_path(ctx, param, v) for v in value)
    why = too_long(str(value))
    if why:
        raise click.BadParameter(f"the path is too long ({why}): {shown(str(value))}", ctx, param)
    return value
