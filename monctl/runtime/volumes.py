"""Replacing a live data volume with a staged copy: the step both runtimes share.

Docker cannot rename a volume, nor can the archive API delete files, so the
live volume is removed and created again empty under the same name, driver
and labels, and the staged data is copied into it through the archive API
(engine to engine: the staged copy was already checked). The caller has
stopped every container using the volume, and starts the service again.
"""

from __future__ import annotations

import posixpath
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.docker import Engine


def recreate_empty(engine: Engine, name: str) -> None:
    """Remove volume ``name`` and create it again empty, as it was (labels, driver, options)."""
    old = engine.volume(name) or {}
    engine.remove_volume(name)
    engine.create_volume(
        name,
        labels=old.get("Labels") or {},
        driver=old.get("Driver") or "local",
        options=old.get("Options") or None,
    )


def copy_into(engine: Engine, staged_container: str, volume: str, path: str, label: str) -> None:
    """Copy ``path`` of the (never started) staging container into ``volume``,
    through a never-started container of the same image mounting it at ``path``."""
    image = str(engine.inspect(staged_container)["Image"])
    target = engine.create_idle(image, volume, path, label)
    try:
        engine.put_archive(
            target,
            posixpath.dirname(path.rstrip("/")),
            engine.get_archive(staged_container, path),
        )
    finally:
        engine.remove(target)
