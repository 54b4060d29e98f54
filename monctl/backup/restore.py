"""``monctl restore``: put a verified backup back into the stack's volumes.

Order of events, each step a guarantee:

1. Every selected archive is verified against the manifest (size, sha256,
   every tar member safe) BEFORE anything is touched, and before Docker is
   contacted at all (the version check that asks the engine comes after); a
   bad backup is refused and the live volumes stay as they were.
2. The operator confirms, told which volumes will be overwritten.
3. Per service: the archive is streamed into a fresh staging volume through a
   container of the service's own image that is never started (the runtime's
   ``stage``), while the service keeps running. The stream that is extracted
   is the stream that is checked: every member is judged again as it passes
   (``tar_safety``), names are moved under the data directory and owners set
   to the image's user, and the stored bytes are hashed on the way; a member
   that fails, or a hash that differs from the manifest (the archive changed
   since step 1), discards the stage and leaves the live volume untouched.
   Only then does the runtime swap the staged data in (``swap_in``: the
   service is stopped, its volume replaced, and it is ALWAYS started again),
   and the service is waited for until ready.

When the volumes are directories of this host (monctl as root beside a local engine), a
format-2 restore goes direct (``restore_direct``): each object read once, checked as written
beside the live data, nothing live touched until all checked out, the service down only for
a swap by renames. This module is the fallback.

A format-2 backup is assembled as it is staged: the manifest's file list, in order, each
file's bytes from its object or from the service's pack, every object's hashes checked at
its end (``object_reader.open_object``). A format-1 backup is its archive, as it was.

Nothing runs inside any image: no shell, no helper image, so the distroless
upstream images restore like the others. A Prometheus backup is a TSDB
snapshot: its blocks become the data directory (no WAL from before the
restore survives).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from monctl import services as declared
from monctl.backup import verify
from monctl.backup.reports import READY
from monctl.backup.restore_stream import archive_stream, assembled
from monctl.errors import ExitCode, IntegrityError, Interrupted, MonctlError, StorageError
from monctl.repository import Repository, project_lock, versions
from monctl.repository.filelist import ServiceFiles
from monctl.repository.manifest import Manifest
from monctl.result import SILENT, Progress
from monctl.services.model import Service

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.age import Identities
    from monctl.project import Project
    from monctl.repository import RepositoryLike
    from monctl.runtime import Runtime

READY_TIMEOUT = 180.0


@dataclass(frozen=True)
class ServiceRestore:
    service: str
    volume: str
    status: str  # restored, failed
    state: str  # the service afterwards: "running, ready", "running, not ready: …", "stopped"
    seconds: float
    error: str | None = None
    code: ExitCode = ExitCode.OK  # FAILED, or INTEGRITY when the archive was not what was verified
    hint: str | None = None  # what to do about ``error`` (shown, not in the JSON document)
    # The direct restore's previous data, kept because the service is not ready on the
    # restored data: where it is on the host (else None: removed, or none).
    previous: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "volume": self.volume,
            "status": self.status,
            "state": self.state,
            "seconds": round(self.seconds, 3),
            "error": self.error,
            "exit_code": int(self.exit_code),
            "previous_data": self.previous,
        }

    @property
    def exit_code(self) -> ExitCode:
        if self.status == "restored" and self.state == READY:
            return ExitCode.OK
        return max(self.code, ExitCode.FAILED)


@dataclass
class RestoreReport:
    backup_id: str
    location: str
    verified: verify.VerifyReport | None = None
    services: list[ServiceRestore] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return self.exit_code == ExitCode.OK

    @property
    def exit_code(self) -> ExitCode:
        """The worst of the services': INTEGRITY (10) outranks FAILED (1)."""
        return max((s.exit_code for s in self.services), default=ExitCode.OK)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.backup_id,
            "location": self.location,
            "verified": self.verified.to_json() if self.verified else None,
            "services": [s.to_json() for s in self.services],
        }


def selected(manifest: Manifest, names: tuple[str, ...]) -> tuple[Service, ...]:
    """The services of the backup with data: those named (StorageError naming any the
    backup does not hold), else every one, in declaration order. May be empty."""
    chosen = declared.select(names) if names else tuple(declared.SERVICES)
    missing = [s.name for s in chosen if names and s.name not in manifest.services]
    if missing:
        raise StorageError(
            f"backup {manifest.backup_id} holds no archive for {', '.join(missing)}",
            hint=f"it holds: {', '.join(sorted(manifest.services)) or 'nothing'}",
        )
    return tuple(s for s in chosen if s.name in manifest.services and s.data is not None)


def _selected(manifest: Manifest, names: tuple[str, ...]) -> tuple[Service, ...]:
    """The services to restore (``selected``); none at all is an integrity error."""
    result = selected(manifest, names)
    if not result:
        raise IntegrityError(f"backup {manifest.backup_id} holds nothing to restore")
    return result


def check(
    repo: RepositoryLike,
    manifest: Manifest,
    names: tuple[str, ...],
    *,
    progress: Progress = SILENT,
    identities: Identities | None = None,
    hold_lease: bool = False,
) -> verify.VerifyReport:
    """Everything about the backup that restoring ``names`` relies on, checked before
    Docker is ever contacted: something to restore, the keys, every archive or object
    (``verify``; IntegrityError when any fails). ``hold_lease``: the caller holds none."""
    repo = Repository.of(repo)
    services = _selected(manifest, names)
    repo.check_can_open(manifest, [s.name for s in services], identities)
    return verify.verify(
        repo,
        manifest.backup_id,
        [s.name for s in services],
        check=True,
        on_bytes=lambda n: progress.moved(manifest.backup_id, n),
        hold_lease=hold_lease,
        identities=identities,
        manifest=manifest,
    )


def describe(targets: list[tuple[Service, str]], backup_id: str) -> str:
    """The confirmation question: exactly what will be overwritten."""
    lines = [f"Restoring backup {backup_id} REPLACES the whole contents of:"]
    for service, volume in targets:
        assert service.data is not None
        lines.append(f"  - volume {volume} ({service.name}: {service.data.path})")
    lines.append("Each service is stopped while its volume is replaced, then started again.")
    lines.append("Continue?")
    return "\n".join(lines)


@dataclass(frozen=True)
class RestoreRequest:
    """What ``monctl restore`` is asked, built by the command from its options and ``.env``:
    the backup (or ``latest``), where it is (None: the project's), which services, keys."""

    project: Project
    runtime: Runtime
    destination: str | None
    backup_id: str
    services: tuple[str, ...] = ()
    identity: tuple[str, ...] = ()  # key files as given; read by Repository.open_keyed
    allow_downgrade: bool = False


def perform(
    request: RestoreRequest, confirm: Callable[[str], bool], progress: Progress = SILENT
) -> RestoreReport:
    """``monctl restore``: keys, destination, ``latest`` resolved, then ``run``."""
    repo, identities = Repository.open_keyed(request.project, request.destination, request.identity)
    return run(
        request.project,
        request.runtime,
        repo,
        repo.resolve(request.backup_id),
        request.services,
        confirm=confirm,
        progress=progress,
        allow_downgrade=request.allow_downgrade,
        identities=identities,
    )


def run(
    project: Project,
    runtime: Runtime,
    repo: RepositoryLike,
    backup_id: str,
    names: tuple[str, ...],
    *,
    confirm: Callable[[str], bool],
    progress: Progress = SILENT,
    ready_timeout: float = READY_TIMEOUT,
    allow_downgrade: bool = False,
    wait_ready: Callable[[Service], str] | None = None,
    identities: Identities | None = None,
    manifest: Manifest | None = None,
    verified: verify.VerifyReport | None = None,
) -> RestoreReport:
    """Verify, confirm, then restore ``names`` (default: all in the backup) from ``backup_id``.

    Raise IntegrityError (bad or incomplete backup) or StorageError (no such
    backup, destination failing) before any volume is touched; ConfigError when
    a service runs an older major.minor than the one that wrote its data (unless
    ``allow_downgrade``); Interrupted when ``confirm`` declines; LockHeld when a
    backup or restore runs. Failures of single services are in the report (the
    others are still restored). ``wait_ready`` replaces the health check's wait
    (a drill reaches its services from inside their network). ``identities``
    read an encrypted backup: without them, or when none fits, IntegrityError
    before anything is touched (``keys.check_can_open``). ``verified``: what ``check``
    found, when the caller (a drill) checked the backup already.
    """
    repo = Repository.of(repo)
    with project_lock(project, f"restore {backup_id}"):
        # The manifest before the lease: a lease on an id that holds no backup
        # would make a missing backup look like an incomplete one.
        if manifest is None:  # a drill has read it already
            manifest = repo.manifest(backup_id)
        with repo.lease(backup_id, "restore", required=False):
            return _restore(
                project,
                runtime,
                repo,
                manifest,
                names,
                confirm,
                progress,
                ready_timeout,
                allow_downgrade,
                wait_ready,
                identities,
                verified,
            )


def _restore(
    project: Project,
    runtime: Runtime,
    repo: Repository,
    manifest: Manifest,
    names: tuple[str, ...],
    confirm: Callable[[str], bool],
    progress: Progress,
    ready_timeout: float,
    allow_downgrade: bool,
    wait_ready: Callable[[Service], str] | None,
    identities: Identities | None,
    verified: verify.VerifyReport | None,
) -> RestoreReport:
    backup_id = manifest.backup_id
    services = _selected(manifest, names)
    report = RestoreReport(backup_id, repo.location)
    if verified is None:
        # Straight into the volumes' directories when they are on this host (one read,
        # one write, the service down for a swap only): ``restore_direct``.
        from monctl.backup import restore_direct

        where = restore_direct.prepared(runtime, repo, manifest, services, identities)
        if where is not None:
            return restore_direct.run(
                runtime, repo, manifest, services, where, report, confirm=confirm,
                progress=progress, allow_downgrade=allow_downgrade, identities=identities,
                ready=lambda s: _ready(project, runtime, s, ready_timeout, wait_ready, 0.2),
            )  # fmt: skip
        verified = check(repo, manifest, names, progress=progress, identities=identities)
    report.verified = verified
    # Docker only now: a bad backup is told as such (exit 10), also with the engine down.
    for note in versions.check(manifest, services, runtime.states(), allow_downgrade):
        progress.note(note)
    targets = [(s, runtime.data_volume(s)) for s in services]
    if not confirm(describe(targets, backup_id)):
        raise Interrupted("restore declined; nothing was changed")
    for service, volume in targets:
        report.services.append(
            _restore_one(
                project,
                runtime,
                repo,
                manifest,
                service,
                volume,
                ready_timeout,
                wait_ready,
                identities,
            )
        )
    return report


def _restore_one(
    project: Project,
    runtime: Runtime,
    repo: Repository,
    manifest: Manifest,
    service: Service,
    volume: str,
    ready_timeout: float,
    wait_ready: Callable[[Service], str] | None = None,
    identities: Identities | None = None,
) -> ServiceRestore:
    assert service.data is not None
    data = manifest.services[service.name]
    started = time.monotonic()
    name = service.name
    try:
        if isinstance(data, ServiceFiles):
            volume_data = service.data
            with runtime.stage(service) as stage:
                stage.write(assembled(repo, data, volume_data, identities))
                # The staged copy is complete and checked; the live volume is filled
                # from the repository once more (checked again), the stage kept as
                # the fallback until it is.
                state = runtime.swap_in(
                    service,
                    stage,
                    refill=lambda: assembled(repo, data, volume_data, identities),
                )
        else:
            state = _restore_archive(runtime, repo, manifest, service)
    except MonctlError as exc:
        return ServiceRestore(
            name,
            volume,
            "failed",
            state_now(runtime, service),
            time.monotonic() - started,
            exc.message,
            exc.exit_code,
            exc.hint,
        )
    if state == "running":
        state = _ready(project, runtime, service, ready_timeout, wait_ready)
    return ServiceRestore(name, volume, "restored", state, time.monotonic() - started)


def _ready(
    project: Project,
    runtime: Runtime,
    service: Service,
    timeout: float,
    wait_ready: Callable[[Service], str] | None,
    interval: float = 2.0,  # the direct restore asks often: its downtime is this wait
) -> str:
    if wait_ready is not None:
        return wait_ready(service)
    return _wait_ready(project, runtime, service, timeout, interval)


def _restore_archive(
    runtime: Runtime, repo: Repository, manifest: Manifest, service: Service
) -> str:
    """Format 1: the archive streamed into the stage, checked and hashed on the way."""
    with runtime.stage(service) as stage:
        stage.write(archive_stream(repo, manifest, service))
        return runtime.swap_in(
            service, stage, refill=lambda: archive_stream(repo, manifest, service)
        )


def state_now(runtime: Runtime, service: Service) -> str:
    try:
        state = runtime.states().get(service.name)
    except MonctlError:
        return "unknown"
    return state.state if state else "missing"


def _wait_ready(
    project: Project, runtime: Runtime, service: Service, timeout: float, interval: float = 2.0
) -> str:
    from monctl.health.check import ready_or_why

    why_not = ready_or_why(project, runtime, service, timeout, interval)
    if why_not is None:
        return READY
    return f"running, not ready after {timeout:.0f} s ({why_not})"
