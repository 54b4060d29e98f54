"""``monctl backup``: one consistent, streamed, verified-by-hash backup of the stack's data.

Flow per service: ``consistency.hold`` makes the data consistent (as the
service's declaration says) and opens a tar stream of it through the runtime;
the stream is compressed and hashed as it passes (``archive.compress_stream``)
and written atomically to the destination (``Storage.put``). Nothing is held
whole in memory or staged on disk.

A backup is complete or absent: when any service fails, the archives already
written by this run are deleted and no manifest is written. The manifest is
written last; its presence marks the backup complete. Metrics for
node-exporter's textfile collector are published after every run, failed or not.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from monctl import __version__
from monctl import services as declared
from monctl.backup import consistency, lease, lock, repository
from monctl.backup.archive import Digest, check_compression, compress_stream
from monctl.backup.manifest import (
    Manifest,
    ServiceEntry,
    archive_key,
    new_backup_id,
    write_manifest,
)
from monctl.backup.report import BackupReport, ServiceResult, publish_metrics
from monctl.backup.retention import Policy
from monctl.errors import ExitCode, MonctlError, OperationFailed, UsageError
from monctl.result import SILENT, Failure, Progress
from monctl.services.model import Service
from monctl.signals import Terminated

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage import Storage
    from monctl.project import Project
    from monctl.runtime import Runtime

log = logging.getLogger(__name__)


def services_to_back_up(names: tuple[str, ...] | list[str]) -> tuple[Service, ...]:
    """The services to back up: those named (each must hold data), or all that hold data."""
    if not names:
        return declared.with_data()
    chosen = declared.select(names)
    empty = [s.name for s in chosen if s.data is None]
    if empty:
        raise UsageError(
            f"{', '.join(empty)} keeps no data to back up",
            hint="services with data: " + ", ".join(s.name for s in declared.with_data()),
        )
    return chosen


def _counted(chunks: Iterator[bytes], service: str, progress: Progress) -> Iterator[bytes]:
    for chunk in chunks:
        progress.moved(service, len(chunk))
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
    runtime: Runtime,
    storage: Storage,
    services: tuple[Service, ...],
    *,
    compression: str = "zstd",
    retention: Policy | None = None,
    progress: Progress = SILENT,
) -> BackupReport:
    """Back up ``services`` to ``storage`` under a new backup id, holding the project lock.

    Return the report; ``report.error`` says why the backup failed (then nothing
    of it is left in ``storage``). Raise LockHeld when another backup or restore
    runs, StorageError when the destination cannot be written (before anything
    is paused). An interruption is re-raised after the same clean-up.
    ``retention`` (a policy, as ``prune``'s) runs only after a complete backup.
    """
    check_compression(compression)
    with lock.hold(lock.lock_path(project), "backup"):
        storage.check_writable()
        started = datetime.now(UTC)
        report = BackupReport(_unique_id(storage), storage.location, compression, started)
        try:
            # The lease marks the id as a backup in progress for every host's prune.
            with lease.holding(storage, report.backup_id, "backup"):
                _back_up_all(project, runtime, storage, services, report, progress)
        finally:
            report.finished_at = datetime.now(UTC)
            publish_metrics(project, report, services)
        if report.ok and retention is not None and not retention.empty:
            try:
                report.prune = repository.prune(storage, retention)
            except MonctlError as exc:
                report.prune_error = Failure.of(exc, "retention failed: ")
        return report


def _back_up_all(
    project: Project,
    runtime: Runtime,
    storage: Storage,
    services: tuple[Service, ...],
    report: BackupReport,
    progress: Progress,
) -> None:
    """Back up each service in turn; on the first failure delete what this run wrote."""
    entries: dict[str, ServiceEntry] = {}
    written: list[str] = []
    current = services[0].name if services else ""
    try:
        states = runtime.states()
        down = [
            s.name
            for s in services
            if states.get(s.name, None) is None or states[s.name].state != "running"
        ]
        if down:
            raise OperationFailed(
                f"not running: {', '.join(down)}; a backup must hold every selected service",
                hint=f"start them with `monctl up {' '.join(down)}`, or leave them out "
                "with --service",
            )
        ctx = consistency.Context(project, runtime, states, report.warnings)
        for service in services:
            current = service.name
            result, entry = _back_up_one(ctx, storage, service, report, written, progress)
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
            code = exc.exit_code if isinstance(exc, Terminated) else ExitCode.INTERRUPTED
            report.error = Failure(f"backup stopped: {_message(exc)}", None, code)
            raise
        report.error = Failure.of(exc, f"backup failed ({current}): ")


def _message(exc: BaseException) -> str:
    if isinstance(exc, MonctlError):
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, Terminated):
        return f"stopped by {exc}"
    return f"{type(exc).__name__}: {exc}"


def _back_up_one(
    ctx: consistency.Context,
    storage: Storage,
    service: Service,
    report: BackupReport,
    written: list[str],
    progress: Progress,
) -> tuple[ServiceResult, ServiceEntry]:
    assert service.data is not None  # services_to_back_up() guarantees it
    key = archive_key(report.backup_id, service.name, report.compression)
    digest = Digest()
    started = time.monotonic()
    # The key is recorded before the upload: put() is atomic, but if the
    # manifest write fails later, this archive must be deleted with the rest.
    written.append(key)
    with consistency.hold(ctx, service) as source:
        chunks = _counted(source.chunks, service.name, progress)
        storage.put(key, compress_stream(chunks, report.compression, digest))
    if not digest.complete:  # put() returned without draining the stream: a bug, not data
        raise OperationFailed(f"the archive of {service.name} was not written completely")
    state = ctx.states[service.name]
    entry = ServiceEntry(
        archive=key.rsplit("/", 1)[1],
        image=state.image,
        version=state.version,
        size=digest.size,
        raw_size=digest.raw_size,
        sha256=digest.sha256,
        strategy=service.data.strategy,
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
        strategy=service.data.strategy,
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
