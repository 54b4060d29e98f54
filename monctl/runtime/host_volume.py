"""A service's data volume as a directory of this host, for a restore that writes it directly.

When the engine runs on this host (its local socket) and monctl runs as root, a
plain local-driver volume is a directory here: ``<volumes>/<name>/_data``, which
the engine bind-mounts into the service's container when it starts. A restore
then writes its staging copy beside it, in the volume's own directory
(``_data.monctl-restore-<id>``: the same file system, and invisible to the
service, which sees ``_data`` only — so no service's rules about extra entries
in its data directory matter), and swaps it in by two renames while the service
is stopped: the downtime is the swap, not the copy. The engine never looks at
anything in that directory but ``_data`` (``docker volume rm`` deletes the whole
directory, a stage left by a killed monctl with it).

Anything else — a remote engine (DOCKER_HOST not a unix socket), monctl not
root, an engine that remaps users (``userns-remap``: owners on the host are not the
container's), a volume with driver options (its ``_data`` is a mount point), Swarm, or
``MONCTL_RESTORE_VIA=engine`` (the bench's "today" figure) — is told by
``locate`` returning None, and restore writes through the engine as before.
A backup reads the held data from the same directory under the same conditions
(``backup.host_read``; ``MONCTL_BACKUP_VIA=engine`` forces the archive API).

That the directory is the engine's own volume, not a stale one of another
engine at the same path, is checked: the local driver reports a volume's
``CreatedAt`` from the ctime of its ``_data``.
"""

from __future__ import annotations

import contextlib
import datetime
import functools
import logging
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

from monctl import signals
from monctl.errors import MonctlError, OperationFailed

if TYPE_CHECKING:  # pragma: no cover
    from docker.models.containers import Container

    from monctl.adapters.docker import Engine
    from monctl.runtime import Runtime
    from monctl.services.model import Service

# "engine": always the engine's archive API (the bench's "today" figures, tests of that path)
RESTORE_VIA = "MONCTL_RESTORE_VIA"
BACKUP_VIA = "MONCTL_BACKUP_VIA"
log = logging.getLogger(__name__)

STAGE = "_data.monctl-restore-"
PREVIOUS = "_data.monctl-previous-"


@dataclass(frozen=True)
class HostVolume:
    """The live data directory of ``volume`` on this host, and how to stop and start
    every container that mounts it."""

    volume: str
    data: Path  # .../volumes/<name>/_data
    stop: Callable[[], None]
    start: Callable[[], None]

    def new_stage(self) -> Path:
        """A fresh empty directory beside ``data`` (stages left by a killed run removed)."""
        live = self.data.is_dir()  # else a previous data is the only copy: kept
        for old in self.data.parent.iterdir():
            if old.name.startswith(STAGE) or (live and old.name.startswith(PREVIOUS)):
                remove(old)
        with signals.deferred():  # made and known, or not made
            path = self.data.parent / f"{STAGE}{secrets.token_hex(4)}"
            path.mkdir(mode=0o700)
        return path

    def previous(self) -> Path:
        """Where ``swap`` is to put the previous data (a new name)."""
        return self.data.parent / f"{PREVIOUS}{secrets.token_hex(4)}"

    def swap(self, stage: Path, previous: Path) -> None:
        """Stop the service, make ``stage`` its data by two renames (the previous data
        to ``previous``: the caller removes it), start it again — always, whatever
        failed. Signals wait until the service is started again: the swap is never cut
        between the renames (and is done when one is raised at the end)."""
        with signals.deferred():
            began = stopped = time.monotonic()
            try:
                self.stop()
                stopped = time.monotonic()
                os.rename(self.data, previous)
                try:
                    os.rename(stage, self.data)
                except OSError:
                    os.rename(previous, self.data)  # the old data back: never neither
                    raise
            except OSError as exc:
                raise OperationFailed(
                    f"could not swap the restored data into {self.volume}: {exc.strerror}",
                    hint="the service runs on its previous data; nothing was lost",
                ) from exc
            finally:
                renamed = time.monotonic()
                self.start()
                log.debug("%s: stopped in %.2f s, renamed in %.3f s, started in %.2f s",
                          self.volume, stopped - began, renamed - stopped,
                          time.monotonic() - renamed)  # fmt: skip


def flush(stages: list[Path]) -> None:
    """Make the staged data durable before it replaces the live data (one ``syncfs`` per
    file system): a power cut after the swap finds whole files, and the previous data
    is only deleted once they are. It costs no downtime: the service still runs on its
    previous data — and its own flush when it stops, which otherwise waits behind the
    staged gigabytes still in memory, is quick."""
    from monctl.adapters.disk import syncfs

    done: set[int] = set()
    for stage in stages:
        device = os.stat(stage).st_dev
        if device not in done and not syncfs(stage):
            os.sync()  # no syncfs here: every file system
        done.add(device)


def remove(path: Path) -> None:
    """Remove a stage or previous data monctl made (never following a symlink out)."""
    with contextlib.suppress(FileNotFoundError):
        if path.is_symlink() or not path.is_dir():
            path.unlink()
        else:
            shutil.rmtree(path)


def _created(volume: dict[str, object]) -> float | None:
    raw = str(volume.get("CreatedAt") or "")
    try:
        return datetime.datetime.fromisoformat(raw).timestamp()
    except ValueError:
        return None


def _plain_directory(doc: dict[str, object]) -> Path | None:
    """The volume's ``_data`` when it is a plain directory of a plain local volume."""
    if doc.get("Driver") != "local" or doc.get("Options") or doc.get("Scope") != "local":
        return None
    data = Path(str(doc.get("Mountpoint") or ""))
    if data.name != "_data" or not data.is_absolute():
        return None
    try:
        top, here = os.lstat(data.parent), os.lstat(data)
    except OSError:
        return None
    if not (stat.S_ISDIR(top.st_mode) and stat.S_ISDIR(here.st_mode)):
        return None  # a symlink, or not there: not the engine's plain directory
    if top.st_dev != here.st_dev or os.path.ismount(data):
        return None
    return data


def remaps_users(info: dict[str, object]) -> bool:
    """Whether the engine (``docker info``) maps the containers' users to others on the
    host (``userns-remap``): a file written here as the image's user would then belong to
    nobody inside the container, and owners read here are not the container's."""
    options = info.get("SecurityOptions")
    return not isinstance(options, list) or any("name=userns" in str(o) for o in options)


@functools.lru_cache(maxsize=4)  # asked once per engine, not per service
def _remapped(engine: Engine) -> bool:
    try:
        return remaps_users(engine.info())
    except MonctlError:
        return True  # not known: the engine's way, which maps owners itself


def local_engine(via: str = RESTORE_VIA) -> bool:
    if os.environ.get(via) == "engine":
        return False
    host = os.environ.get("DOCKER_HOST") or "unix://"
    return host.startswith("unix://") and hasattr(os, "geteuid") and os.geteuid() == 0


def possible(runtime: Runtime, via: str = RESTORE_VIA) -> bool:
    """Whether ``locate`` may find anything, told without asking the engine."""
    from monctl.runtime.compose import ComposeRuntime

    return local_engine(via) and isinstance(runtime, ComposeRuntime)


def locate(runtime: Runtime, service: Service, via: str = RESTORE_VIA) -> HostVolume | None:
    """``service``'s data volume as a directory here, when it can be written directly
    (see the module's docstring); None when not. Raise DockerUnavailable. ``via``: the
    variable that forces the engine's way (restore's, or backup's: ``host_read``)."""
    from monctl.runtime.compose import ComposeRuntime

    if not possible(runtime, via) or not isinstance(runtime, ComposeRuntime):
        return None
    engine = runtime.engine
    name = runtime.data_volume(service)
    data = _plain_directory(engine.volume(name) or {})
    if data is None or _remapped(engine):
        return None
    for _ in range(3):  # the service may touch its directory (its ctime) meanwhile
        before = os.lstat(data).st_ctime
        created = _created(engine.volume(name) or {})
        after = os.lstat(data).st_ctime
        if created is not None and int(created) in (int(before), int(after)):
            break
    else:
        return None  # another engine's directory at the same path, or one changing
    stopped: list[Container] = []

    def stop() -> None:
        for container in runtime._containers(service):
            engine.stop(container)
            stopped.append(container)

    def start() -> None:
        # The containers stopped, as they were (fast); compose when that is not enough.
        try:
            for container in stopped:
                engine.start(container)
            if stopped:
                return
        except MonctlError:
            pass
        from monctl.adapters import compose_cli

        compose_cli.up(runtime.project, [service.name], no_deps=True)

    return HostVolume(name, data, stop, start)
