"""``monctl backup test``: a restore drill. Does the backup restore into a working stack?

A re-hash (``backup verify``) proves an archive intact, not that it restores into
something that works. The drill restores the backup into a throwaway copy of the
stack (``monctl.runtime.throwaway``: its own project name, volumes and networks,
no port published, no way out of the host) beside the production stack, which it
never touches, then asks each restored service whether its data is usable, as the
service's declaration says (``Service.drill``), against what the backup recorded
(``consistency.record``): Prometheus holds the samples of the series it recorded over the
hour before, Grafana's database opens and lists the dashboards it recorded, Loki
holds the lines of the streams it recorded over the hour before, Alertmanager
loads the silences it recorded; nothing recorded is "nothing to compare".

The backup is verified (``restore.check``) before Docker is contacted at all. The
restore itself is ``restore.run`` into the copy: staged, swapped in, waited for
(from inside the copy's network), with the same version check
(``--allow-downgrade``). The copy is ALWAYS removed afterwards, also when the drill fails or is
interrupted: SIGTERM and SIGHUP raise like Ctrl-C (``monctl.signals``), and signals
wait while the copy is being removed. A copy left by a drill killed outright
(SIGKILL, a power cut) is removed by the next drill, which holds the drill lock
while it looks.

Every service passes or fails on its own; the exit code is 0 only when every
check of every service passed and the copy is gone. Each service whose drill
passed gets ``monctl_backup_last_drill_success_timestamp_seconds`` in the
textfile metrics.
"""

from __future__ import annotations

import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monctl import services as declared
from monctl import signals
from monctl.backup import restore
from monctl.backup.reports import READY, DrillReport, DrillService
from monctl.errors import OperationFailed, StorageError
from monctl.monitoring import textfile
from monctl.repository import Repository, locking, project_lock
from monctl.repository.manifest import Manifest
from monctl.result import SILENT, Progress
from monctl.services.answers import Check, Fetched

if TYPE_CHECKING:  # pragma: no cover
    from pathlib import Path

    from monctl.adapters.age import Identities
    from monctl.backup.verify import VerifyReport
    from monctl.project import Project
    from monctl.repository import RepositoryLike
    from monctl.runtime.throwaway import Throwaway
    from monctl.services.model import Service

READY_TIMEOUT = 180.0
DRILL_LOCK = "drill.lock"


def drill_lock_path(project: Project) -> Path:
    """One drill at a time per project (restores inside it also take the backup lock)."""
    return locking.lock_path(project).with_name(DRILL_LOCK)


class InsideAsk:
    """``DrillAsk`` for a service of the throwaway stack, asked from inside its network."""

    def __init__(
        self,
        stack: Throwaway,
        project: Project,
        service: Service,
        facts: Mapping[str, Any],
        window: tuple[float, float],
    ) -> None:
        self.stack = stack
        self.project = project
        self._service = service
        self.service = service.name
        self.facts = facts
        self.window = window

    def get(
        self,
        path: str,
        params: Mapping[str, str] | None = None,
        auth: tuple[str, str] | None = None,
    ) -> Fetched:
        return self.stack.fetch(self._service, path, params, auth, timeout=30.0)

    def setting(self, name: str, default: str = "") -> str:
        return self.project.setting(name, default)


def newest_complete(repo: RepositoryLike) -> str:
    """The id of the newest complete backup in ``repo`` (what ``latest`` names):
    manifests are read newest first, only until one reads (complete, as ``list`` says)."""
    return Repository.of(repo).newest_complete()


def _prober_service(services: tuple[Service, ...]) -> Service:
    """The service whose image lends its HTTP client: one being drilled if it can."""
    candidates = [s for s in services if s.http_client] or [
        s for s in declared.SERVICES if s.http_client
    ]
    if not candidates:
        raise OperationFailed(
            "no service of the stack declares an HTTP client (http_client) for the drill"
        )
    return candidates[0]


@dataclass(frozen=True)
class DrillRequest:
    """What ``monctl backup test`` is asked, built by the command from its options and
    ``.env``: the backup (or ``latest``), where it is, which services, keys, how long."""

    project: Project
    destination: str | None
    backup_id: str
    services: tuple[str, ...] = ()
    identity: tuple[str, ...] = ()  # key files as given; read by Repository.open_keyed
    allow_downgrade: bool = False
    ready_timeout: float = READY_TIMEOUT


def perform(request: DrillRequest, progress: Progress = SILENT) -> DrillReport:
    """``monctl backup test``: keys, destination, then ``run`` (which takes the drill's
    lock once ``latest`` is resolved)."""
    repo, identities = Repository.open_keyed(request.project, request.destination, request.identity)
    return run(
        request.project,
        repo,
        request.backup_id,
        request.services,
        allow_downgrade=request.allow_downgrade,
        ready_timeout=request.ready_timeout,
        progress=progress,
        identities=identities,
    )


def run(
    project: Project,
    repo: RepositoryLike,
    backup_id: str,
    names: tuple[str, ...] = (),
    *,
    allow_downgrade: bool = False,
    ready_timeout: float = READY_TIMEOUT,
    progress: Progress = SILENT,
    identities: Identities | None = None,
) -> DrillReport:
    """Drill backup ``backup_id`` (or "latest"): restore it into a throwaway stack,
    check it, remove it.

    Raise what ``restore.run`` raises before it touches anything (StorageError,
    IntegrityError, ConfigError for a downgrade, LockHeld), StartFailed when the
    throwaway stack cannot start, LockHeld when another drill runs; the stack is
    removed first in every case. Checks that fail are in the report. An encrypted
    backup needs ``identities``: without them, or when none fits, IntegrityError
    before the throwaway stack is made.
    """
    from monctl.runtime.throwaway import Throwaway, remove_stale

    repo = Repository.of(repo)
    backup_id = repo.resolve(backup_id)  # `latest`: the newest complete backup
    with project_lock(project, f"drill {backup_id}", drill_lock_path(project)):
        manifest = repo.manifest(backup_id)
        drilled = restore.selected(manifest, names)
        if not drilled:
            raise StorageError(f"backup {backup_id} holds nothing this monctl can drill")
        # The whole check of the backup before Docker is contacted (as a restore's).
        verified = restore.check(
            repo,
            manifest,
            tuple(s.name for s in drilled),
            progress=progress,
            identities=identities,
            hold_lease=True,
        )
        stale = remove_stale(project)
        stack = Throwaway(project)
        window = (manifest.started_at.timestamp(), manifest.finished_at.timestamp())
        report = DrillReport(backup_id, repo.location, stack.name, window, stale=stale)
        for name in stale:
            report.notes.append(f"removed {name}, left behind by an earlier drill")
        # SIGTERM and SIGHUP raise like Ctrl-C (monctl.signals): the removal below
        # always runs, and is not cut short by a signal (deferred to its end).
        try:
            _drill(project, stack, repo, manifest, drilled, report, allow_downgrade,
                   ready_timeout, progress, identities, verified)  # fmt: skip
        finally:
            progress.note(f"removing the throwaway stack {stack.name}")
            with signals.deferred():
                report.leftovers = stack.remove()
        _publish(project, report)
        return report


def _drill(
    project: Project,
    stack: Throwaway,
    repo: Repository,
    manifest: Manifest,
    drilled: tuple[Service, ...],
    report: DrillReport,
    allow_downgrade: bool,
    ready_timeout: float,
    progress: Progress,
    identities: Identities | None,
    verified: VerifyReport,
) -> None:
    prober = _prober_service(drilled)
    started = drilled if prober in drilled else (*drilled, prober)
    progress.note(f"starting the throwaway stack {stack.name} (no ports published)")
    stack.up(started, progress)
    stack.start_prober(prober)

    def wait_ready(service: Service) -> str:
        return _wait_ready(stack, service, ready_timeout, progress)

    restored = restore.run(
        stack.project,
        stack.runtime,
        repo,
        manifest.backup_id,
        tuple(s.name for s in drilled),
        confirm=lambda question: True,  # the throwaway stack's own volumes
        progress=progress,
        allow_downgrade=allow_downgrade,
        wait_ready=wait_ready,
        identities=identities,
        manifest=manifest,
        verified=verified,
    )
    by_name = {r.service: r for r in restored.services}
    for service in drilled:
        outcome = by_name.get(service.name)
        if outcome is None:
            report.services.append(DrillService(service.name, "failed", "not restored"))
            continue
        checks: tuple[Check, ...] = ()
        if outcome.status == "restored" and outcome.state == READY and service.drill:
            progress.status(f"checking {service.name}")
            facts = manifest.services[service.name].facts
            ask = InsideAsk(stack, project, service, facts, report.window)
            checks = service.drill.check(ask)
        report.services.append(
            DrillService(
                service.name, outcome.status, outcome.state, checks, outcome.error, outcome.code
            )
        )


def _wait_ready(stack: Throwaway, service: Service, timeout: float, progress: Progress) -> str:
    """Ask the service's readiness endpoint from inside until it is ready, its
    container stops, or ``timeout`` passes; the state for the report."""
    from monctl.health.probes import interpret

    probe = service.readiness or service.liveness
    deadline = time.monotonic() + timeout
    while True:
        state = stack.runtime.states().get(service.name)
        if state is None or state.state != "running":
            return state.state if state else "missing"
        fetched = stack.fetch(service, probe.path, timeout=min(10.0, timeout))
        verdict = interpret(fetched, probe, "readiness")
        if verdict.ok:
            return READY
        progress.status(f"waiting for {service.name}: {verdict.detail}")
        if time.monotonic() >= deadline:
            return f"running, not ready after {timeout:.0f} s ({verdict.detail})"
        time.sleep(min(2.0, max(0.0, deadline - time.monotonic())))


def _publish(project: Project, report: DrillReport) -> None:
    passed = [s.service for s in report.services if s.ok]
    if not passed:
        return
    try:
        textfile.publish(textfile.textfile_dir(project), (), drilled=passed, at=time.time())
    except OSError as exc:
        report.notes.append(f"could not write the drill metrics: {exc}")
