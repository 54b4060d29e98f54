"""A restore written straight into the volumes' directories: one read, one write, a swap.

Used by ``restore`` for a backup of files (format 2, or 3: encrypted) when
every volume to restore is a directory of this host (``runtime.host_volume.locate``);
else restore writes through the engine as before. Order of events, each step a guarantee:

1. Before the engine: something to restore, the keys fit, and every object the
   services need is present with its recorded size (one listing, no reads);
   otherwise the engine path takes over, whose full verify first refuses the
   backup with exit 10 naming every damaged object, nothing touched.
2. The engine is asked (versions, volumes) and the operator confirms.
3. Every service is staged, while it keeps running, in a new directory beside
   its live data (``HostVolume.new_stage``): each file written as its object
   is read, decrypted and decompressed, each object's hashes (stored bytes,
   plaintext size and sha256) checked at its end, each name judged by
   ``tar_safety`` and created only inside directories this restore made
   (no path through a link, no file opened through one: O_NOFOLLOW, O_EXCL);
   owners are the image's user, modes and times the backup's, as the engine
   path extracts them. Any failure removes every stage: nothing live is
   touched until every object of every service checked out.
4. Per service: stop, two renames, start (``HostVolume.swap``: signals wait),
   wait until ready, then the previous data removed — or kept beside the new and
   reported when the service is not ready on the restored data (the next restore of
   that volume removes it).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from monctl.backup.reports import READY, ServiceCheck, VerifyReport
from monctl.backup.restore import RestoreReport, ServiceRestore, state_now
from monctl.backup.restore_files import tar_check, write
from monctl.errors import ExitCode, IntegrityError, Interrupted, MonctlError
from monctl.repository import Repository, versions
from monctl.repository.manifest import Manifest
from monctl.runtime import host_volume
from monctl.runtime.host_volume import HostVolume

log = logging.getLogger(__name__)

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.age import Identities
    from monctl.repository import RepositoryLike
    from monctl.result import Progress
    from monctl.runtime import Runtime
    from monctl.services.model import Service


def plan(
    runtime: Runtime, manifest: Manifest, services: tuple[Service, ...]
) -> dict[str, HostVolume] | None:
    """Every service's volume as a host directory, or None (restore goes through the
    engine): a format-1 backup, any volume not reachable so, or the engine down —
    then the engine path verifies everything first and tells a bad backup as such."""
    if manifest.format_version < 2:  # format 1: one archive per service, not files
        return None
    found: dict[str, HostVolume] = {}
    for service in services:
        try:
            where = host_volume.locate(runtime, service)
        except MonctlError:
            return None
        if where is None:
            return None
        found[service.name] = where
    return found


def all_present(repo: Repository, manifest: Manifest, services: tuple[Service, ...]) -> bool:
    """Step 1, cheap: every object of ``services`` is there with its stored size. A backup
    that fails it is refused either way, by the engine path's full verify first
    (``restore.check``), which names every damaged object, not only these."""
    present = repo.objects()
    for service in services:
        files = manifest.files(service.name)
        blobs = [files.pack] if files.pack is not None else []
        blobs += [entry.blob for entry in files.files if entry.blob is not None]
        if any(present.get(blob.ref.id) != blob.ref.stored for blob in blobs):
            return False
    return True


def stage_all(
    repo: RepositoryLike,
    manifest: Manifest,
    services: tuple[Service, ...],
    where: dict[str, HostVolume],
    identities: Identities | None,
    on_bytes: Callable[[int], None],
) -> tuple[dict[str, Path], list[ServiceCheck]]:
    """Step 3: every service staged ({name: stage}) and what was checked; on any
    failure every stage made is removed and the failure raised, with ``checks`` of
    the services (the failing one not ok) on the exception as ``checks``."""
    repo = Repository.of(repo)  # given a Repository, or a bare Storage (tests, benches)
    stages: dict[str, Path] = {}
    checks: list[ServiceCheck] = []
    try:
        for service in services:
            assert service.data is not None
            files = manifest.files(service.name)
            stages[service.name] = stage = where[service.name].new_stage()
            read = 0

            def counted(n: int) -> None:
                nonlocal read
                read += n
                on_bytes(n)

            sha = files.pack.ref.id if files.pack else ""
            try:
                write(repo, files, service.data, stage, identities, counted)
            except IntegrityError as exc:
                checks.append(ServiceCheck(service.name, False, read, sha, None, exc.message))
                raise StagingFailed(service.name, exc, checks) from exc
            except OSError as exc:
                error = _disk_error(exc, where[service.name])
                raise StagingFailed(service.name, error, checks) from exc
            checks.append(ServiceCheck(service.name, True, read, sha, tar_check(files)))
        host_volume.flush(list(stages.values()))
    except BaseException:
        for stage in stages.values():
            host_volume.remove(stage)
        raise
    return stages, checks


class StagingFailed(Exception):
    """A service could not be staged (``error``); every stage is removed."""

    def __init__(self, service: str, error: MonctlError, checks: list[ServiceCheck]) -> None:
        super().__init__(error.message)
        self.service = service
        self.error = error
        self.checks = checks


def _disk_error(exc: OSError, where: HostVolume) -> MonctlError:
    from monctl.errors import StorageError

    return StorageError(
        f"cannot write the restored data beside volume {where.volume} "
        f"({where.data.parent}): {exc.strerror or exc}",
        hint="free space there (`df`, `docker system df`) and run the restore again",
    )


def swap(where: HostVolume, stage: Path, ready: Callable[[], str]) -> tuple[str, Path | None]:
    """Step 4 for one service: swap, wait until ready, then remove the previous data.
    (The service's state, the previous data when it is kept: the service is not ready on
    the restored data, so the operator may want it back.) When the swap fails the stage
    is removed instead: the service runs on its previous data then."""
    started = time.monotonic()
    previous = where.previous()
    try:
        where.swap(stage, previous)
    except BaseException:
        host_volume.remove(stage)  # still there when nothing was swapped
        if where.data.is_dir():  # swapped (a signal held until the end), or rolled back
            host_volume.remove(previous)
        raise
    log.debug(
        "%s swapped in %.2f s (stop, renames, start)", where.volume, time.monotonic() - started
    )
    waited = time.monotonic()
    try:
        state = ready()
    except BaseException:  # interrupted while waiting: the restore is done, nothing kept
        host_volume.remove(previous)
        raise
    removed = time.monotonic()
    log.debug("%s %s after %.2f s", where.volume, state, removed - waited)
    if state != READY:
        return state, previous
    host_volume.remove(previous)
    log.debug("%s: previous data removed in %.2f s", where.volume, time.monotonic() - removed)
    return state, None


def prepared(
    runtime: Runtime,
    repo: RepositoryLike,
    manifest: Manifest,
    services: tuple[Service, ...],
    identities: Identities | None,
) -> dict[str, HostVolume] | None:
    """Steps 1 and the engine's part of 2 when this restore can go direct, else None."""
    repo = Repository.of(repo)  # given a Repository, or a bare Storage (tests, benches)
    if manifest.format_version < 2 or not host_volume.possible(runtime):
        return None
    try:  # before the engine is asked
        repo.check_can_open(manifest, [s.name for s in services], identities)
    except IntegrityError:
        return None  # refused by the engine path's checks, worded as they always were
    if not all_present(repo, manifest, services):
        return None
    return plan(runtime, manifest, services)


def run(
    runtime: Runtime,
    repo: RepositoryLike,
    manifest: Manifest,
    services: tuple[Service, ...],
    where: dict[str, HostVolume],
    report: RestoreReport,
    *,
    confirm: Callable[[str], bool],
    progress: Progress,
    allow_downgrade: bool,
    identities: Identities | None,
    ready: Callable[[Service], str],
) -> RestoreReport:
    """Steps 2 to 4 (see the module's docstring) into ``report``."""
    repo = Repository.of(repo)  # given a Repository, or a bare Storage (tests, benches)
    from monctl.backup.restore import describe

    backup_id = manifest.backup_id
    for note in versions.check(manifest, services, runtime.states(), allow_downgrade):
        progress.note(note)
    if not confirm(describe([(s, where[s.name].volume) for s in services], backup_id)):
        raise Interrupted("restore declined; nothing was changed")
    started = time.monotonic()
    moved = lambda n: progress.moved(backup_id, n)  # noqa: E731
    try:
        stages, checks = stage_all(repo, manifest, services, where, identities, moved)
        log.debug("staged %d service(s) in %.2f s", len(stages), time.monotonic() - started)
    except StagingFailed as failed:
        report.verified = VerifyReport(repo.location, backup_id, failed.checks)
        for s in services:
            why = failed.error if s.name == failed.service else None
            error = why.message if why else f"not restored: {failed.service} could not be"
            code = why.exit_code if why else ExitCode.FAILED
            hint = why.hint if why else None
            state = state_now(runtime, s)
            seconds = time.monotonic() - started
            volume = where[s.name].volume
            report.services.append(
                ServiceRestore(s.name, volume, "failed", state, seconds, error, code, hint)
            )
        return report
    report.verified = VerifyReport(repo.location, backup_id, checks)
    for s in services:
        begun = time.monotonic()
        volume = where[s.name].volume
        try:
            state, kept = swap(where[s.name], stages[s.name], lambda s=s: ready(s))  # type: ignore[misc]
        except MonctlError as exc:
            seconds = time.monotonic() - begun
            report.services.append(
                ServiceRestore(s.name, volume, "failed", state_now(runtime, s), seconds,
                               exc.message, exc.exit_code, exc.hint)
            )  # fmt: skip
            continue
        seconds = time.monotonic() - begun
        previous = str(kept) if kept else None
        report.services.append(
            ServiceRestore(s.name, volume, "restored", state, seconds, previous=previous)
        )
    return report
