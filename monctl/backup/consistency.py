"""Holding a service's data consistent while it is copied: what the declaration's ``copy`` says.

``hold(ctx, service)`` yields a ``Source`` while the data is held consistent,
and lets go when the block ends, however it ends (an error, Ctrl-C, a signal).
A source reads the data, or part of it, into an ``Ingest``: from the volume's
directory on this host when it can (``host_read``), else as tar streams from the
runtime; and it lists it when the declaration says how (``Layout.listing``), so an
incremental backup asks only for what the repository lacks:

- ``Snapshot``: the service makes a consistent copy itself (Prometheus' TSDB
  snapshot: hard links, instant); the copy is streamed and ALWAYS deleted
  afterwards (the service never deletes it, and each one would grow the volume);
- ``Pause``: the container is paused for exactly the length of the copy, after
  an optional flush of in-memory data (Loki's /flush); always resumed.

Recording for the drill (``record``)
====================================

What a backup records for the restore drill to compare with (``Drill.record``).

Asked of the live service through its published URL, just before its data is held (a
paused service cannot answer): Grafana's dashboards, Alertmanager's silences,
Prometheus' samples and Loki's lines over the last hour, all asked through
``HostAsk.get`` (the one HTTP call of a record). The facts go into the manifest
(``ServiceEntry.facts``), so a drill of the backup, days later and elsewhere, knows
what the data held. Recording is never a reason for a backup to fail: when the
service cannot tell, the backup warns and records nothing (the drill then checks
what it can without them).
"""

from __future__ import annotations

import contextlib
import json
import logging
import posixpath
import re
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monctl import credentials, signals
from monctl.adapters import http
from monctl.errors import MonctlError, OperationFailed
from monctl.services.answers import Fetched
from monctl.services.model import DataVolume, Pause, Service, Snapshot

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.http import Response
    from monctl.backup.ingest import Ingest
    from monctl.project import Project
    from monctl.runtime import Runtime, ServiceState

# A snapshot name is refused unless it is a plain name, before it reaches a
# deletion, here or inside the container (Prometheus names them "<YYYYMMDDTHHMMSSZ>-<hex>").
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,200}$")
log = logging.getLogger(__name__)
SNAPSHOT_TIMEOUT = 300.0  # a snapshot of a large head block takes a while
HOST_NOTE = "read from the volume's directory"  # not through the engine (``host_read``)


@dataclass
class Source:
    """A service's data while it is held consistent: ``path`` in its container."""

    runtime: Runtime
    service: Service
    path: str  # the consistent copy: the snapshot directory, or the data path
    notes: list[str] = field(default_factory=list)  # filled in as the hold ends
    # The volume's directory on this host, when the data is read from it (``host_read``).
    host: Path | None = None
    _streams: list[Iterator[bytes]] = field(default_factory=list)

    @property
    def data_root(self) -> str:
        """The top-level directory of a whole read (the archive API names it after the path)."""
        return posixpath.basename(self.path.rstrip("/"))

    def read(self, sub: str = "") -> Iterator[bytes]:
        """``path`` (or ``path/sub``) as a tar stream; its top entry is the basename."""
        stream = self.runtime.read_data(
            self.service, posixpath.join(self.path, sub) if sub else self.path
        )
        self._streams.append(stream)
        return stream

    def add_to(self, ingest: Ingest, sub: str = "", skip: frozenset[str] = frozenset()) -> None:
        """Read ``path`` (whole: names relative to it, ``skip``'s top-level names passed
        over) or ``path/sub`` (a unit: names keep it) into ``ingest``: from the host's
        directory when there is one, else as the engine's tar stream."""
        root = sub or self.data_root
        if self.host is None:
            ingest.add_stream(self.read(sub), root, keep_root=bool(sub), skip=skip)
            return
        from monctl.backup import host_read

        assert self.service.data is not None
        where = posixpath.relpath(posixpath.join(self.path, sub), self.service.data.path)
        pairs = host_read.members(self.host, where, root, ingest.count, skip)
        if HOST_NOTE not in self.notes:
            self.notes.append(HOST_NOTE)
        ingest.add_members(pairs, root, keep_root=bool(sub), skip=skip)

    def listing(self) -> str | None:
        """The output of the declaration's listing program, or None when the
        service declares none or it failed (then everything is read)."""
        assert self.service.data is not None
        argv = self.service.data.layout.listing
        if not argv:
            return None
        try:
            code, output = self.runtime.exec(
                self.service, [a.replace("{path}", self.path) for a in argv]
            )
        except MonctlError:
            return None
        return output if code == 0 else None

    def close(self) -> None:
        """End every stream (and its archive request) whether or not it was read to
        the end: a container cannot be resumed while an archive request is open."""
        for stream in self._streams:
            close = getattr(stream, "close", None)
            if close is not None:
                close()
        self._streams.clear()


@dataclass
class Context:
    """What holding data needs: the project, its runtime, and the services' states."""

    project: Project
    runtime: Runtime
    states: dict[str, ServiceState]
    warnings: list[str] = field(default_factory=list)

    def url(self, service: Service) -> str:
        from monctl.health.endpoints import discover

        endpoint = discover(self.project, self.runtime, (service,), self.states)[service.name]
        if endpoint.url is None:
            raise OperationFailed(
                f"{service.name} publishes no port, so monctl cannot reach its API",
                hint=f"publish {service.container_port} in the compose file or set "
                f"{service.url_var}",
            )
        return endpoint.url


def hold(ctx: Context, service: Service) -> contextlib.AbstractContextManager[Source]:
    """The service's data as a consistent tar stream, for the length of the block."""
    assert service.data is not None
    data = service.data
    host = _host_directory(ctx, service)
    if isinstance(data.copy, Snapshot):
        return _snapshot(ctx, service, data, data.copy, host)
    return _paused(ctx, service, data, data.copy, host)


def _host_directory(ctx: Context, service: Service) -> Path | None:
    """The volume's directory on this host when the held data is read from it (faster:
    no archive through the engine, see ``host_read``); None: read through the engine."""
    from monctl.runtime import host_volume

    try:
        where = host_volume.locate(ctx.runtime, service, host_volume.BACKUP_VIA)
    except MonctlError:
        return None  # the hold's own requests tell what is wrong with the engine
    return where.data if where is not None else None


@contextlib.contextmanager
def _snapshot(
    ctx: Context, service: Service, data: DataVolume, spec: Snapshot, host: Path | None
) -> Iterator[Source]:
    url = ctx.url(service)
    # A signal while the snapshot request is on its way is held until it returns,
    # then raised inside the ``try`` that deletes the snapshot.
    path: str | None = None
    source: Source | None = None
    try:
        with signals.deferred():
            response = credentials.to_service(
                ctx.project,
                service,
                "POST",
                f"{url}{spec.create}",
                what=f"taking a snapshot of {service.name}",
                timeout=SNAPSHOT_TIMEOUT,
            )
            name = _snapshot_name(service, spec, response)
            path = posixpath.join(data.path, spec.directory, name)
        source = Source(ctx.runtime, service, path, host=host)
        yield source
    finally:
        if source is not None:
            source.close()
        if path is not None:
            _delete_snapshot(ctx, service, path, source or Source(ctx.runtime, service, path))


def _snapshot_name(service: Service, spec: Snapshot, response: Response) -> str:
    """The name the service gave its snapshot; OperationFailed unless it made a usable one."""
    if response.status_code != 200:
        hint = spec.off_hint if response.status_code == spec.off_status else None
        raise OperationFailed(
            f"{service.name} refused the snapshot: HTTP {response.status_code} "
            f"{http.body_excerpt(response)}",
            hint=hint or None,
        )
    try:
        name = str(response.json()["data"]["name"])
    except (ValueError, KeyError, TypeError):
        raise OperationFailed(
            f"{service.name} answered the snapshot request with {http.body_excerpt(response)}"
        ) from None
    if not _SNAPSHOT_NAME.match(name) or name in (".", ".."):
        raise OperationFailed(
            f"{service.name} named its snapshot {name[:80]!r}, refusing to use it"
        )
    return name


def _delete_snapshot(ctx: Context, service: Service, path: str, source: Source) -> None:
    if source.host is not None and _deleted_here(service, path, source.host):
        source.notes.append("snapshot deleted")
        return
    try:
        code, output = ctx.runtime.exec(service, ["rm", "-rf", path])
    except MonctlError as exc:
        code, output = 1, exc.message
    if code == 0:
        source.notes.append("snapshot deleted")
    else:
        ctx.warnings.append(
            f"could not delete the snapshot {path} in {service.name}: {output.strip()[:300]} "
            f"(delete it by hand: docker exec <container> rm -rf {path})"
        )


def _deleted_here(service: Service, path: str, host: Path) -> bool:
    """The snapshot deleted in the volume's directory on this host (no ``docker exec``:
    a tenth of a second less); False when not (then the container deletes it)."""
    from monctl.backup import host_read

    assert service.data is not None
    try:
        host_read.remove(host, posixpath.relpath(path, service.data.path))
    except (OSError, MonctlError) as exc:
        log.debug("the snapshot %s not deleted on this host: %s", path, exc)
        return False
    return True


@contextlib.contextmanager
def _paused(
    ctx: Context, service: Service, data: DataVolume, spec: Pause, host: Path | None
) -> Iterator[Source]:
    if spec.flush:
        response = credentials.to_service(
            ctx.project,
            service,
            "POST",
            f"{ctx.url(service)}{spec.flush}",
            what=f"flushing {service.name}",
            timeout=120,
        )
        if response.status_code >= 300:
            raise OperationFailed(
                f"{service.name} refused {spec.flush}: HTTP {response.status_code} "
                f"{http.body_excerpt(response)}"
            )
    started = time.monotonic()
    with ctx.runtime.paused(service):
        source = Source(ctx.runtime, service, data.path, host=host)
        if spec.flush:
            source.notes.append("flushed")
        try:
            yield source
        finally:
            source.close()
            source.notes.append(f"paused {time.monotonic() - started:.1f} s")


# Recording for the drill

RECORD_TIMEOUT = 15.0
# The manifest is read whole (at most 1 MiB): one service's facts stay well below.
MAX_FACTS_BYTES = 256 * 1024


class HostAsk:
    """``DrillAsk`` over HTTP to the service's URL on this host."""

    def __init__(self, project: Project, service: Service, base: str) -> None:
        self.project = project
        self._service = service
        self.service = service.name
        self.base = base
        self.facts: Mapping[str, Any] = {}
        now = time.time()
        self.window = (now, now)

    def get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Fetched:
        from monctl import credentials
        from monctl.adapters import http

        if auth is None:
            auth = credentials.auth(self.project, self._service)
        url = self.base + path
        started = time.perf_counter()
        try:
            response = http.get(url, params=params, auth=auth, timeout=RECORD_TIMEOUT)
        except http.NoAnswer as exc:
            return Fetched(url, None, error=exc.why)
        latency = round((time.perf_counter() - started) * 1000, 1)
        return Fetched(url, response.status_code, response.text, response.headers, latency)

    def setting(self, name: str, default: str = "") -> str:
        return self.project.setting(name, default)


def record(ctx: Context, service: Service) -> dict[str, Any]:
    """The facts ``service``'s drill declaration records, or {} (with a warning)."""
    if service.drill is None or service.drill.record is None:
        return {}
    what = f"could not record {service.name}'s state for restore drills"
    try:
        facts = service.drill.record(HostAsk(ctx.project, service, ctx.url(service)))
        size = len(json.dumps(facts))
    except MonctlError as exc:
        ctx.warnings.append(f"{what}: {exc.message}")
        return {}
    except (ValueError, TypeError) as exc:
        ctx.warnings.append(f"{what}: {exc}")
        return {}
    if size > MAX_FACTS_BYTES:
        ctx.warnings.append(f"{what}: {size} bytes of facts, more than {MAX_FACTS_BYTES}")
        return {}
    return facts
