"""Backup metrics for node-exporter's textfile collector.

After every backup run monctl rewrites ``monctl_backup.prom`` in the textfile
directory (``MONCTL_TEXTFILE_DIR``, default ``<project root>/var/textfile``),
which node-exporter reads with ``--collector.textfile.directory``. Prometheus
can then alert when nightly backups stop (the last success grows old) or fail.

The file is replaced atomically (temporary file in the same directory, then
rename) so node-exporter never reads half of it. Services not part of this run
keep their previous lines, and a service whose latest attempt failed keeps the
timestamp and size of its last success: a failed night must not erase the
evidence of the last good backup. A restore drill (``monctl backup test``) adds
the time each service's drill last passed to the same file.
"""

from __future__ import annotations

import contextlib
import os
import re
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from monctl.project import Project

FILE_NAME = "monctl_backup.prom"

LAST_SUCCESS = "monctl_backup_last_success_timestamp_seconds"
LAST_ATTEMPT = "monctl_backup_last_attempt_timestamp_seconds"
SUCCESS = "monctl_backup_last_success"
DURATION = "monctl_backup_duration_seconds"
SIZE = "monctl_backup_size_bytes"
DRILL_SUCCESS = "monctl_backup_last_drill_success_timestamp_seconds"
WRITTEN = "monctl_backup_bytes_written"
REUSED = "monctl_backup_bytes_reused"

HELP: dict[str, str] = {
    LAST_SUCCESS: "Unix time the last successful monctl backup of the service finished.",
    LAST_ATTEMPT: "Unix time the last monctl backup attempt of the service finished.",
    SUCCESS: "1 if the last monctl backup attempt of the service succeeded, else 0.",
    DURATION: "Seconds the last monctl backup attempt of the service took.",
    DRILL_SUCCESS: "Unix time the last restore drill of the service passed (monctl backup test).",
    SIZE: "Stored bytes the service's last successful monctl backup references.",
    WRITTEN: "Bytes the service's last successful monctl backup wrote to the destination.",
    REUSED: "Stored bytes the service's last successful monctl backup reused from the repository.",
}

_SAMPLE = re.compile(r'^(monctl_backup_[a-z_]+)\{service="([^"\\]*)"\}\s+(\S+)')


@dataclass(frozen=True)
class Attempt:
    """One service's outcome in one backup run."""

    service: str
    finished_at: float  # Unix time
    success: bool
    duration_seconds: float
    size_bytes: int | None = None  # of the stored archive; None when nothing was kept
    written_bytes: int | None = None  # written to the destination by this backup
    reused_bytes: int | None = None  # already in the repository, referenced again


def textfile_dir(project: Project) -> Path:
    """The directory node-exporter's textfile collector reads."""
    configured = project.setting("MONCTL_TEXTFILE_DIR", "")
    path = Path(configured).expanduser() if configured else Path("var") / "textfile"
    return path if path.is_absolute() else project.root / path


def read(path: Path) -> dict[str, dict[str, float]]:
    """The samples of an existing file: {metric: {service: value}}; empty if unreadable."""
    samples: dict[str, dict[str, float]] = {}
    try:
        text = path.read_text(encoding="utf-8")
    except OSError:
        return samples
    for line in text.splitlines():
        match = _SAMPLE.match(line)
        if not match or match.group(1) not in HELP:
            continue
        with contextlib.suppress(ValueError):
            samples.setdefault(match.group(1), {})[match.group(2)] = float(match.group(3))
    return samples


def render(samples: dict[str, dict[str, float]]) -> str:
    """Prometheus text exposition format of ``samples``, in a stable order."""
    lines: list[str] = []
    for metric, help_text in HELP.items():
        values = samples.get(metric, {})
        if not values:
            continue
        lines += [f"# HELP {metric} {help_text}", f"# TYPE {metric} gauge"]
        for service in sorted(values):
            lines.append(f'{metric}{{service="{service}"}} {_number(values[service])}')
    return "\n".join(lines) + "\n"


def _number(value: float) -> str:
    value = float(value)  # ints slip in from callers; int.is_integer needs Python 3.12
    return str(int(value)) if value.is_integer() else f"{value:.3f}"


def publish(
    directory: Path, attempts: Sequence[Attempt], drilled: Sequence[str] = (), at: float = 0.0
) -> Path:
    """Merge ``attempts`` (backups) and ``drilled`` (services whose restore drill passed
    at ``at``) into ``directory``/monctl_backup.prom, atomically; return its path."""
    directory.mkdir(parents=True, exist_ok=True)
    target = directory / FILE_NAME
    samples = read(target)
    for service in drilled:
        samples.setdefault(DRILL_SUCCESS, {})[service] = round(at, 3)
    for a in attempts:
        samples.setdefault(LAST_ATTEMPT, {})[a.service] = round(a.finished_at, 3)
        samples.setdefault(SUCCESS, {})[a.service] = 1.0 if a.success else 0.0
        samples.setdefault(DURATION, {})[a.service] = round(a.duration_seconds, 3)
        if a.success:
            samples.setdefault(LAST_SUCCESS, {})[a.service] = round(a.finished_at, 3)
            for metric, value in (
                (SIZE, a.size_bytes),
                (WRITTEN, a.written_bytes),
                (REUSED, a.reused_bytes),
            ):
                if value is not None:
                    samples.setdefault(metric, {})[a.service] = float(value)
    fd, tmp = tempfile.mkstemp(prefix=f".{FILE_NAME}.", dir=directory)
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(render(samples))
        # node-exporter usually runs as nobody: the file must be world-readable.
        os.chmod(tmp, 0o644)
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(tmp)
        raise
    return target
