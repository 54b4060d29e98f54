"""``monctl backup``: one consistent, streamed, verified-by-hash backup of the stack's data.

Flow per service: a strategy named in the catalogue (``DataVolume.backup``)
makes the data consistent and opens a tar stream of it through Docker's
archive API; the stream is compressed and hashed as it passes
(``archive.compress_stream``) and written atomically to the destination
(``Storage.put``). Nothing is held whole in memory or staged on disk.

A backup is complete or absent: when any service fails, the archives already
written by this run are deleted and no manifest is written. The manifest is
written last; its presence marks the backup complete. Metrics for
node-exporter's textfile collector are published after every run, failed or not.
The report and those metrics are made in ``backup_report``.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import posixpath
import re
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from datetime import UTC, datetime

from monctl import __version__, catalogue
from monctl.adapters import http
from monctl.adapters.docker import ContainerInfo, Docker
from monctl.adapters.storage import Storage
from monctl.catalogue import BackupKind, DataVolume, Service
from monctl.errors import ConfigError, MonctlError, OperationFailed
from monctl.ops import backups, lock
from monctl.ops.archive import Digest, check_compression, compress_stream
from monctl.ops.backup_report import BackupReport, ServiceResult, publish_metrics
from monctl.ops.endpoints import discover
from monctl.ops.manifest import Manifest, ServiceEntry, archive_key, new_backup_id, write_manifest
from monctl.project import Project

log = logging.getLogger(__name__)

# Prometheus names snapshots "<YYYYMMDDTHHMMSSZ>-<hex>"; anything else is refused
# before it reaches an `rm -rf` inside the container.
_SNAPSHOT_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]*$")
SNAPSHOT_TIMEOUT = 300.0  # a snapshot of a large head block takes a while


@dataclass
class Source:
    """A service's data as a tar stream, while the strategy holds it consistent."""

    chunks: Iterator[bytes]
    data_root: str  # the tar's top-level directory (Docker names it after the path)
    notes: list[str] = field(default_factory=list)  # filled in as the strategy finishes

    def close(self) -> None:
        """End the stream (and Docker's archive request) whether or not it was read to
        the end: a container cannot be unpaused while an archive request is open."""
        close = getattr(self.chunks, "close", None)
        if close is not None:
            close()


@dataclass
class Context:
    """What a strategy needs: the project, Docker, and where each service answers."""

    project: Project
    docker: Docker
    containers: dict[str, ContainerInfo]
    warnings: list[str] = field(default_factory=list)

    def url(self, service: Service) -> str:
        endpoint = discover(self.project, (service,), self.containers)[service.name]
        if endpoint.url is None:
            raise OperationFailed(
                f"{service.name} publishes no port, so monctl cannot reach its API",
                hint=f"publish {service.container_port} in the compose file or set "
                f"{service.url_var}",
            )
        return endpoint.url


Strategy = Callable[[Context, Service, DataVolume], AbstractContextManager[Source]]


@contextlib.contextmanager
def _prometheus_snapshot(ctx: Context, service: Service, data: DataVolume) -> Iterator[Source]:
    """TSDB snapshot (hard links, so instant and consistent), streamed out, ALWAYS deleted."""
    url = ctx.url(service)
    response = http.call(
        "POST",
        f"{url}/api/v1/admin/tsdb/snapshot",
        what=f"taking a TSDB snapshot of {service.name}",
        timeout=SNAPSHOT_TIMEOUT,
    )
    if response.status_code != 200:
        hint = None
        if response.status_code == 503:
            hint = "start Prometheus with --web.enable-admin-api (the compose file does)"
        raise OperationFailed(
            f"{service.name} refused the TSDB snapshot: HTTP {response.status_code} "
            f"{http.body_excerpt(response)}",
            hint=hint,
        )
    try:
        name = str(response.json()["data"]["name"])
    except (ValueError, KeyError, TypeError):
        raise OperationFailed(
            f"{service.name} answered the snapshot request with {http.body_excerpt(response)}"
        ) from None
    if not _SNAPSHOT_NAME.match(name):
        raise OperationFailed(f"{service.name} named its snapshot {name!r}, refusing to use it")
    path = posixpath.join(data.path, "snapshots", name)
    source = Source(ctx.docker.get_archive(service.name, path), data_root=name)
    try:
        yield source
    finally:
        source.close()
        # Prometheus never deletes snapshots and has no API to: left behind,
        # every backup would grow the volume by a full copy's worth of blocks.
        _delete_snapshot(ctx, service, path, source)


def _delete_snapshot(ctx: Context, service: Service, path: str, source: Source) -> None:
    try:
        code, output = ctx.docker.exec(service.name, ["rm", "-rf", path])
    except MonctlError as exc:
        code, output = 1, exc.message
    if code == 0:
        source.notes.append("snapshot deleted")
    else:
        ctx.warnings.append(
            f"could not delete the snapshot {path} in {service.name}: {output.strip()} "
            f"(delete it by hand: docker exec <container> rm -rf {path})"
        )


@contextlib.contextmanager
def _pause_copy(ctx: Context, service: Service, data: DataVolume) -> Iterator[Source]:
    """Pause the container for exactly the length of the copy; it is always unpaused."""
    started = time.monotonic()
    with ctx.docker.paused(service.name):
        source = Source(
            ctx.docker.get_archive(service.name, data.path),
            data_root=posixpath.basename(data.path.rstrip("/")),
        )
        try:
            yield source
        finally:
            source.close()
            source.notes.append(f"paused {time.monotonic() - started:.1f} s")


@contextlib.contextmanager
def _flush_pause_copy(ctx: Context, service: Service, data: DataVolume) -> Iterator[Source]:
    """Ask the service to write its in-memory data out (Loki's /flush), then pause and copy."""
    if data.flush_path:
        response = http.call(
            "POST",
            f"{ctx.url(service)}{data.flush_path}",
            what=f"flushing {service.name}",
            timeout=120,
        )
        if response.status_code >= 300:
            raise OperationFailed(
                f"{service.name} refused {data.flush_path}: HTTP {response.status_code} "
                f"{http.body_excerpt(response)}"
            )
    with _pause_copy(ctx, service, data) as source:
        source.notes.append("flushed")
        yield source


STRATEGIES: dict[BackupKind, Strategy] = {
    "prometheus-snapshot": _prometheus_snapshot,
    "pause-copy": _pause_copy,
    "flush-pause-copy": _flush_pause_copy,
}


def backed_up_services(names: tuple[str, ...] | list[str]) -> tuple[Service, ...]:
    """The services to back up: those named (each must hold data), or all that hold data."""
    if not names:
        return catalogue.BACKED_UP
    chosen = catalogue.select(names)
    empty = [s.name for s in chosen if s.data is None]
    if empty:
        raise ConfigError(
            f"{', '.join(empty)} keeps no data to back up",
            hint="services with data: " + ", ".join(s.name for s in catalogue.BACKED_UP),
        )
    return chosen


ByteCounter = Callable[[str, int], None]


def _counted(
    chunks: Iterator[bytes], service: str, on_bytes: ByteCounter | None
) -> Iterator[bytes]:
    for chunk in chunks:
        if on_bytes is not None:
            on_bytes(service, len(chunk))
        yield chunk


def _unique_id(storage: Storage) -> str:
    """A fresh backup id; two runs within the same second must not share one."""
    for _ in range(3):
        backup_id = new_backup_id()
        if not storage.list(f"{backup_id}/"):
            return backup_id
        time.sleep(1.0)
    raise OperationFailed("could not choose a backup id that is not in use")


def run(
    project: Project,
    storage: Storage,
    services: tuple[Service, ...],
    *,
    compression: str = "zstd",
    keep_last: int | None = None,
    keep_days: int | None = None,
    on_bytes: ByteCounter | None = None,
) -> BackupReport:
    """Back up ``services`` to ``storage`` under a new backup id, holding the project lock.

    Return the report; ``report.error`` says why the backup failed (then nothing
    of it is left in ``storage``). Raise LockHeld when another backup or restore
    runs, StorageError when the destination cannot be written (before anything
    is paused). KeyboardInterrupt is re-raised after the same clean-up.
    Retention (``keep_last``/``keep_days``) runs only after a complete backup.
    """
    check_compression(compression)
    with lock.hold(lock.lock_path(project), "backup"):
        storage.check_writable()
        started = datetime.now(UTC)
        report = BackupReport(_unique_id(storage), storage.location, compression, started)
        try:
            _back_up_all(project, storage, services, report, on_bytes)
        finally:
            report.finished_at = datetime.now(UTC)
            publish_metrics(project, report, services)
        if report.ok and (keep_last is not None or keep_days is not None):
            try:
                report.prune = backups.prune(storage, keep_last, keep_days)
            except MonctlError as exc:
                report.prune_error = exc
        return report


def _back_up_all(
    project: Project,
    storage: Storage,
    services: tuple[Service, ...],
    report: BackupReport,
    on_bytes: ByteCounter | None,
) -> None:
    """Back up each service in turn; on the first failure delete what this run wrote."""
    entries: dict[str, ServiceEntry] = {}
    written: list[str] = []
    current = services[0].name if services else ""
    try:
        docker = Docker(project.name)
        containers = docker.inspect_all()
        down = [
            s.name
            for s in services
            if containers.get(s.name, None) is None or containers[s.name].state != "running"
        ]
        if down:
            raise OperationFailed(
                f"not running: {', '.join(down)}; a backup must hold every selected service",
                hint=f"start them with `monctl up {' '.join(down)}`, or leave them out "
                "with --service",
            )
        ctx = Context(project, docker, containers, report.warnings)
        for service in services:
            current = service.name
            result, entry = _back_up_one(ctx, storage, service, report, written, on_bytes)
            report.services.append(result)
            entries[service.name] = entry
        manifest = Manifest(
            backup_id=report.backup_id,
            monctl_version=__version__,
            started_at=report.started_at,
            finished_at=datetime.now(UTC),
            compression=report.compression,
            services=entries,
        )
        current = "manifest"
        write_manifest(storage, manifest)
    except BaseException as exc:
        _discard(storage, written, report)
        done = {r.service for r in report.services}
        for s in services:
            if s.name == current and s.name not in done:
                report.services.append(ServiceResult(s.name, "failed", error=_message(exc)))
            elif s.name not in done:
                report.services.append(ServiceResult(s.name, "not started"))
        if not isinstance(exc, MonctlError):
            report.error = OperationFailed(f"backup interrupted ({type(exc).__name__})")
            raise
        exc.message = f"backup failed ({current}): {exc.message}"
        exc.args = (exc.message,)
        report.error = exc


def _message(exc: BaseException) -> str:
    if isinstance(exc, MonctlError):
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted"
    return f"{type(exc).__name__}: {exc}"


def _back_up_one(
    ctx: Context,
    storage: Storage,
    service: Service,
    report: BackupReport,
    written: list[str],
    on_bytes: ByteCounter | None,
) -> tuple[ServiceResult, ServiceEntry]:
    assert service.data is not None  # backed_up_services() guarantees it
    data = service.data
    key = archive_key(report.backup_id, service.name, report.compression)
    digest = Digest()
    started = time.monotonic()
    # The key is recorded before the upload: put() is atomic, but if the
    # manifest write fails later, this archive must be deleted with the rest.
    written.append(key)
    with STRATEGIES[data.backup](ctx, service, data) as source:
        chunks = _counted(source.chunks, service.name, on_bytes)
        storage.put(key, compress_stream(chunks, report.compression, digest))
    if not digest.complete:  # put() returned without draining the stream: a bug, not data
        raise OperationFailed(f"the archive of {service.name} was not written completely")
    info = ctx.containers[service.name]
    entry = ServiceEntry(
        archive=key.rsplit("/", 1)[1],
        image=info.image,
        version=info.version,
        size=digest.size,
        raw_size=digest.raw_size,
        sha256=digest.sha256,
        strategy=data.backup,
        data_root=source.data_root,
    )
    result = ServiceResult(
        service=service.name,
        status="ok",
        key=key,
        size=digest.size,
        raw_size=digest.raw_size,
        sha256=digest.sha256,
        seconds=time.monotonic() - started,
        strategy=data.backup,
        notes=tuple(source.notes),
    )
    return result, entry


def _discard(storage: Storage, written: list[str], report: BackupReport) -> None:
    """Delete this run's archives: a backup is complete or absent."""
    if written:
        try:
            storage.delete(written)
        except BaseException as exc:  # also Ctrl-C twice: say what is left
            report.warnings.append(
                f"could not delete the archives of the failed backup {report.backup_id} "
                f"({_message(exc)}); `monctl backup prune` removes them later"
            )
    report.services = [
        dataclasses.replace(r, status="discarded") if r.status == "ok" else r
        for r in report.services
    ]
