"""``monctl backup``: one consistent, incremental, deduplicated backup of the stack's data.

Flow per service: ``consistency.hold`` makes the data consistent (as the
service's declaration says) and yields a ``Source``; ``ingest`` lists it
where the declaration says how, reuses the immutable units the repository
holds unchanged (not even read from the engine), reads the rest as tar
streams, and stores each file's bytes once: as a shared object, or in the
service's pack (docs/repository-format.md). Nothing is held whole in memory.

A backup is complete or absent: objects first, in one staging batch that is
committed (made durable) before the manifest, which is written last and
marks the backup complete. Just before it, one listing confirms that every
object the manifest references is there (a prune on another host cannot
have swept one meanwhile unnoticed). A failed run writes no manifest; objects
it uploaded stay for the garbage collection of ``prune`` (another backup may
be writing the very same object). ``full`` re-reads and re-writes
everything (and so repairs missing or damaged objects). Metrics for
node-exporter's textfile collector are published after every run.
"""

from __future__ import annotations

import dataclasses
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING

from monctl import __version__
from monctl import services as declared
from monctl.backup import consistency, prune
from monctl.backup.ingest import Ingest, parse_listing, plan
from monctl.backup.reports import BackupReport, ServiceResult, publish_metrics
from monctl.errors import (
    ExitCode,
    MonctlError,
    OperationFailed,
    OutOfSpace,
    UsageError,
)
from monctl.repository import Repository, index, project_lock
from monctl.repository.filelist import FileEntry, ServiceFiles, Stats
from monctl.repository.manifest import (
    Manifest,
    ServiceData,
    written_version,
)
from monctl.repository.objects import Blob, check_mode
from monctl.repository.retention import Policy
from monctl.result import SILENT, Failure, Progress
from monctl.services.model import Service
from monctl.signals import Terminated
from monctl.text import human_size

if TYPE_CHECKING:  # pragma: no cover
    from monctl.project import Project
    from monctl.repository import RepositoryLike
    from monctl.repository.index import Staging
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


@dataclass(frozen=True)
class BackupRequest:
    """What ``monctl backup`` is asked, built by the command from its options and ``.env``:
    where (``destination``: None, the project's; the S3 settings), what, and how."""

    project: Project
    runtime: Runtime
    destination: str | None
    services: tuple[Service, ...]
    compression: str = "auto"
    full: bool = False
    encrypt_to: tuple[str, ...] = ()  # as given; parsed (with .env's) by keys.recipients_for
    retention: Policy | None = None
    sse: str | None = None
    kms_key_id: str | None = None
    storage_class: str | None = None


def perform(request: BackupRequest, progress: Progress = SILENT) -> BackupReport:
    """``monctl backup``: the keys first (a bad one stops it before anything is opened),
    then the destination, then the run (``run``, which takes the lock)."""
    from monctl.repository import keys

    recipients = keys.recipients_for(request.project, request.encrypt_to)
    repo = Repository.open(
        request.project,
        request.destination,
        sse=request.sse,
        kms_key_id=request.kms_key_id,
        storage_class=request.storage_class,
    )
    return run(
        request.project,
        request.runtime,
        repo,
        request.services,
        compression=request.compression,
        full=request.full,
        recipients=recipients,
        retention=request.retention,
        progress=progress,
    )


def run(
    project: Project,
    runtime: Runtime,
    repo: RepositoryLike,
    services: tuple[Service, ...],
    *,
    compression: str = "auto",
    full: bool = False,
    recipients: tuple[str, ...] = (),
    retention: Policy | None = None,
    progress: Progress = SILENT,
) -> BackupReport:
    """Back up ``services`` to ``repo`` under a new backup id, holding the project lock.

    Return the report; ``report.error`` says why the backup failed (then no
    manifest of it is left in ``repo``). Raise LockHeld when another backup or
    restore runs, StorageError when the destination cannot be written (before
    anything is paused). An interruption is re-raised after the same clean-up.
    ``compression``: auto (per file), or a codec forced on everything.
    ``full``: read and write everything again, reusing nothing.
    ``recipients``: age public keys (``adapters.age.parse_recipients``): every object
    is encrypted to them as it streams; only objects of backups encrypted to exactly
    these keys are reused (another set makes this backup write everything anew).
    ``retention`` (a policy, as ``prune``'s) runs only after a complete backup.
    """
    repo = Repository.of(repo)
    check_mode(compression)
    if recipients:  # canonical whoever calls: the manifest never records a key's comment
        from monctl.adapters import age

        recipients = age.parse_recipients(recipients)
    with project_lock(project, "backup"):
        repo.check_writable()
        started = datetime.now(UTC)
        report = BackupReport(repo.new_backup_id(), repo.location, compression, started)
        report.full = full
        report.recipients = recipients
        try:
            # The lease marks the id as a backup in progress for every host's prune
            # (and tells its garbage collection which objects may be about to be used).
            with repo.lease(report.backup_id, "backup"):
                _back_up_all(project, runtime, repo, services, report, progress)
        finally:
            report.finished_at = datetime.now(UTC)
            publish_metrics(project, report, services)
        if report.ok and retention is not None and not retention.empty:
            try:
                report.prune = prune.prune(repo, retention)
            except MonctlError as exc:
                report.prune_error = Failure.of(exc, "retention failed: ")
        return report


def _back_up_all(
    project: Project,
    runtime: Runtime,
    repo: Repository,
    services: tuple[Service, ...],
    report: BackupReport,
    progress: Progress,
) -> None:
    """Back up each service in turn; the manifest only when every one succeeded."""
    entries: dict[str, ServiceData] = {}
    current = services[0].name if services else ""
    space: Space | None = None
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
        known = repo.index([s.name for s in services], report.recipients)
        space = Space.before(repo, known, services, report)
        ctx = consistency.Context(project, runtime, states, report.warnings)
        with repo.staging() as staging:
            for service in services:
                current = service.name
                result, entry = _back_up_one(ctx, staging, known, service, report, progress)
                report.services.append(result)
                entries[service.name] = entry
            current = "objects"
            staging.commit()
        repo.confirm_present(entries)
        report.repository_bytes = known.stored_bytes
        manifest = Manifest(
            backup_id=report.backup_id,
            monctl_version=__version__,
            started_at=report.started_at,
            finished_at=datetime.now(UTC),
            compression=report.compression,
            services=entries,
            recipients=report.recipients,
            format_version=written_version(entries),
        )
        current = "manifest"
        repo.write_manifest(manifest)
    except BaseException as exc:
        if isinstance(exc, OutOfSpace) and space is not None:
            space.explain(exc)
        done = {r.service for r in report.services}
        report.services = [
            dataclasses.replace(r, status="discarded") if r.status == "ok" else r
            for r in report.services
        ]
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


@dataclass
class Space:
    """Free space at a local destination, against what the previous backup of the same
    services wrote (its manifests' ``written_bytes``): a warning before the run when
    less is free, and, when the disk fills, roughly how much more the run needed."""

    place: str
    free: int | None  # at the start
    expected: int  # bytes the previous backup of these services wrote; 0: none known

    @classmethod
    def before(
        cls,
        repo: Repository,
        known: index.Index,
        services: tuple[Service, ...],
        report: BackupReport,
    ) -> Space | None:
        if not repo.is_local:
            return None  # S3 has no free space to ask about
        last = [known.services[s.name] for s in services if s.name in known.services]
        space = cls(
            repo.location,
            repo.free_bytes(),
            sum(data.stats.written_bytes for data in last),
        )
        if space.free is not None and space.free < space.expected:
            report.warnings.append(
                f"only {human_size(space.free)} free at {space.place}, less than the "
                f"{human_size(space.expected)} the previous backup of these services wrote: "
                "this one may run out of space (free some, prune old backups, or use "
                "another destination)"
            )
        return space

    def explain(self, exc: OutOfSpace) -> None:
        """Add to ``exc`` roughly how much more the backup needed."""
        if exc.place != self.place:
            return
        if not self.expected:
            exc.message += "; no earlier backup of these services tells how much it needed"
            return
        written = (self.free - exc.free) if self.free is not None and exc.free is not None else 0
        left = self.expected - max(written, 0)
        wrote = f"the previous backup of these services wrote {human_size(self.expected)}"
        if left > 0:
            exc.message += f"; it needed roughly {human_size(left)} more ({wrote})"
        else:
            exc.message += f"; it needed more than {wrote}"


def _message(exc: BaseException) -> str:
    if isinstance(exc, MonctlError):
        return exc.message
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    if isinstance(exc, Terminated):
        return f"stopped by {exc}"
    return f"{type(exc).__name__}: {exc}"


def _read(
    ctx: consistency.Context,
    service: Service,
    ingest: Ingest,
    known: index.Index,
    report: BackupReport,
) -> tuple[tuple[FileEntry, ...], Blob | None, Stats, tuple[str, ...]]:
    """Hold the service's data, read what the repository lacks; the ingest's result."""
    assert service.data is not None
    layout = service.data.layout
    units = known.units(service.name)
    with consistency.hold(ctx, service) as source:
        # Listing pays only when there is something to reuse (not on a first or full backup).
        listed = None
        if units and not report.full and layout.listing:
            output = source.listing()
            listed = parse_listing(output, source.path) if output is not None else None
            if listed is None:
                report.warnings.append(
                    f"{service.name}: its data could not be listed; everything was read"
                )
        todo = plan(listed, layout, units, known, report.full)
        note = todo.note()
        if note:
            source.notes.append(note)
        for top, unit in todo.reuse.items():
            ingest.reuse(top, unit)
        if todo.whole:
            source.add_to(ingest, skip=frozenset(todo.reuse))
        else:
            for top in todo.read:
                source.add_to(ingest, top)
    files, pack, stats = ingest.finish()
    return files, pack, stats, tuple(source.notes)


def _back_up_one(
    ctx: consistency.Context,
    staging: Staging,
    known: index.Index,
    service: Service,
    report: BackupReport,
    progress: Progress,
) -> tuple[ServiceResult, ServiceFiles]:
    assert service.data is not None  # services_to_back_up() guarantees it
    # Asked before the hold: a paused service cannot answer.
    facts = consistency.record(ctx, service)
    layout = service.data.layout
    started = time.monotonic()
    ingest = Ingest(
        service.name, layout, staging, known, report.compression, report.full, progress,
        recipients=report.recipients,
    )  # fmt: skip
    try:
        files, pack, stats, notes = _read(ctx, service, ingest, known, report)
    except BaseException:
        ingest.abort()
        raise
    state = ctx.states[service.name]
    entry = ServiceFiles(
        image=state.image,
        version=state.version,
        strategy=service.data.strategy,
        files=files,
        pack=pack,
        stats=stats,
        facts=facts,
    )
    result = ServiceResult(
        service=service.name,
        status="ok",
        size=entry.stored_size,
        raw_size=entry.raw_size,
        seconds=time.monotonic() - started,
        strategy=service.data.strategy,
        notes=notes,
        stats=stats,
        files=len(files),
    )
    return result, entry
