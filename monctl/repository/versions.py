"""Refusing to restore data into an older version than the one that wrote it.

The manifest records, per service, the version its image said it was when the
backup was made (``ServiceEntry.version``: the OCI version label, else the image
tag). Prometheus' TSDB, Grafana's database migrations and Loki's index may be
written in a format an older release cannot read: restoring into an older
major.minor is refused (ConfigError: the stack's image setting is what must
change) unless the operator passes ``--allow-downgrade``. Patch releases differ
in fixes, not formats: they are not compared. A version that does not read as
``[v]MAJOR.MINOR...`` ("latest", "local", a digest) cannot be compared: the
restore goes on, and says so.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monctl.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from monctl.repository.manifest import Manifest
    from monctl.runtime import ServiceState
    from monctl.services.model import Service

_VERSION = re.compile(r"^v?(\d+)\.(\d+)(?:[.+\-~_]|$)")


def major_minor(version: str | None) -> tuple[int, int] | None:
    """(major, minor) of "v2.42.0", "13.2.3", "2.42.0+ds", "3.7"; None when it is not one."""
    match = _VERSION.match((version or "").strip())
    return (int(match.group(1)), int(match.group(2))) if match else None


@dataclass(frozen=True)
class Comparison:
    service: str
    backup: str | None  # the version that wrote the data
    running: str | None  # the version it would be restored into
    downgrade: bool
    comparable: bool

    def describe(self) -> str:
        return f"{self.service}: backup made by {self.backup}, the stack runs {self.running}"


def compare(
    manifest: Manifest, services: tuple[Service, ...], states: dict[str, ServiceState]
) -> list[Comparison]:
    found = []
    for service in services:
        entry = manifest.services.get(service.name)
        state = states.get(service.name)
        backup = entry.version if entry else None
        running = state.version if state else None
        old, new = major_minor(backup), major_minor(running)
        downgrade = old is not None and new is not None and new < old
        comparable = old is not None and new is not None
        found.append(Comparison(service.name, backup, running, downgrade, comparable))
    return found


def check(
    manifest: Manifest,
    services: tuple[Service, ...],
    states: dict[str, ServiceState],
    allow_downgrade: bool,
) -> list[str]:
    """Raise ConfigError for a downgrade (unless allowed); return notes for the operator."""
    comparisons = compare(manifest, services, states)
    downgrades = [c for c in comparisons if c.downgrade]
    if downgrades and not allow_downgrade:
        names = " ".join(c.service for c in downgrades)
        raise ConfigError(
            "refusing to restore into an older version than the one that wrote the data ("
            + "; ".join(c.describe() for c in downgrades)
            + "): an older release may not read it",
            hint="run an image at least as new (its *_IMAGE setting in .env, then "
            f"`monctl up {names}`), or pass --allow-downgrade to restore anyway",
        )
    notes = [f"downgrade allowed: {c.describe()}" for c in downgrades]
    notes += [
        f"{c.describe()}: versions not compared (not MAJOR.MINOR)"
        for c in comparisons
        if not c.comparable and c.backup != c.running
    ]
    return notes
