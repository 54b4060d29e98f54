"""Staging a restore and replacing a live data volume with it: the steps both runtimes share.

``staged`` makes a fresh volume mounted in a never-started container of the
service's own image (the archive API writes through it: no shell needed), and
removes both unless the swap took them over. Docker cannot rename a volume,
nor can the archive API delete files, so the swap removes the live volume and
creates it again empty under the same name, driver and labels
(``recreate_empty``), and fills it: from the restore's own checked stream when
the caller gives one (``refill``: one transfer), else — or when that fails — by
copying the staged data through the archive API (``copy_into``, engine to
engine, two transfers: the staged copy was already checked).
The caller has stopped every container using the volume, and starts the
service again.
"""

from __future__ import annotations

import contextlib
import logging
import posixpath
import secrets
from collections.abc import Callable, Iterable, Iterator
from typing import TYPE_CHECKING

from monctl import signals
from monctl.adapters.docker import HELPER_LABEL
from monctl.errors import MonctlError

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.docker import Engine

log = logging.getLogger(__name__)


class Stage:
    """A fresh volume mounted in a never-started container of the service's image."""

    def __init__(
        self, engine: Engine, image: str, container: str, volume: str, live_volume: str, path: str
    ):
        self.engine = engine
        self.image = image  # the service's: the live volume is filled through it too
        self.container = container
        self.volume = volume
        self.live_volume = live_volume
        self.path = path  # the data path inside the service's container
        self.taken = False  # the swap took it over (and removes it itself)

    def write(self, chunks: Iterable[bytes]) -> None:
        self.engine.put_archive(
            self.container,
            posixpath.dirname(self.path.rstrip("/")),
            chunks,
            where=f"the staging volume {self.volume}",
        )


@contextlib.contextmanager
def staged(engine: Engine, image: str, live: str, path: str, label: str) -> Iterator[Stage]:
    """A ``Stage`` beside the live volume ``live``; removed on exit unless ``taken``."""
    name = f"{live}-monctl-restore-{secrets.token_hex(4)}"
    stage: Stage | None = None
    try:
        # Both made under held signals: a signal between the two would leave a
        # volume that nothing removes.
        with signals.deferred():
            engine.create_volume(name, {HELPER_LABEL: label})
            helper = engine.create_idle(image, name, path, label)
            stage = Stage(engine, image, helper, name, live, path)
        yield stage
    finally:
        if stage is None or not stage.taken:
            discard(engine, stage.container if stage else None, name)


def discard(engine: Engine, container: str | None, volume: str) -> None:
    """Remove a stage's container and volume (what exists of them)."""
    if container:
        engine.remove(container)
    with contextlib.suppress(MonctlError):
        engine.remove_volume(volume)


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


def fill_live(
    engine: Engine, stage: Stage, label: str, chunks: Callable[[], Iterable[bytes]]
) -> None:
    """Write the tar stream ``chunks()`` (opened once the target exists) into the live
    volume, through a never-started container of the service's image mounting it."""
    target = engine.create_idle(stage.image, stage.live_volume, stage.path, label)
    try:
        engine.put_archive(
            target,
            posixpath.dirname(stage.path.rstrip("/")),
            chunks(),
            where=f"volume {stage.live_volume}",
        )
    finally:
        engine.remove(target)


def copy_into(engine: Engine, stage: Stage, label: str) -> None:
    """Copy the staged data (engine to engine, already checked) into the live volume."""
    fill_live(engine, stage, label, lambda: engine.get_archive(stage.container, stage.path))


def refilled(
    engine: Engine, stage: Stage, label: str, refill: Callable[[], Iterable[bytes]]
) -> bool:
    """Fill the (empty) live volume from ``refill``; True when that worked, else the
    volume is made empty again for the staged copy (the failure is logged)."""
    try:
        fill_live(engine, stage, label, refill)
        return True
    except MonctlError as exc:
        log.warning(
            "restoring %s directly failed (%s); copying the staged data",
            stage.live_volume,
            exc.message,
        )
    recreate_empty(engine, stage.live_volume)
    return False


def swap(
    engine: Engine,
    stage: Stage,
    label: str,
    stop: Callable[[], None],
    start: Callable[[], None],
    refill: Callable[[], Iterable[bytes]] | None = None,
) -> None:
    """Make ``stage`` the live volume: ``stop`` every user of the live volume, recreate
    it empty, fill it (``refill``, else the staged copy), drop the stage, and ``start``
    the service again — always, whatever failed. Signals wait until it is done: a swap
    cut in the middle would leave the service without its data. If the copy fails, the
    staged volume is kept and named in the error, so the data is not lost with the live
    volume."""
    stage.taken = True
    with signals.deferred():
        keep_stage = False
        try:
            stop()
            recreate_empty(engine, stage.live_volume)
            keep_stage = True  # from here on the stage holds the only copy of the data
            if refill is None or not refilled(engine, stage, label, refill):
                copy_into(engine, stage, label)
            keep_stage = False
        except MonctlError as exc:
            if keep_stage:
                exc.message += (
                    f"; the restored data is kept in volume {stage.volume}: "
                    "run the restore again to finish it"
                )
            raise
        finally:
            if keep_stage:
                engine.remove(stage.container)
            else:
                discard(engine, stage.container, stage.volume)
            start()
