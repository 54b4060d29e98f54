"""``monctl restore``: put a verified backup back into the stack's volumes.

Order of events, each step a guarantee:

1. Every selected archive is verified against the manifest (size, sha256,
   every tar member safe) BEFORE anything is touched; a bad backup is refused
   and the live volumes stay as they were.
2. The operator confirms, told which volumes will be overwritten.
3. Per service: the archive is streamed into a staging directory inside the
   service's volume (``.monctl-restore``) by a one-off helper container
   (the service's own image, as root); the service keeps running meanwhile,
   and a failure here only removes the staging directory. Then the service is
   stopped, the helper swaps the staged data in for the old contents and gives
   it to the image's user (catalogue uid:gid), and the service is started
   again and waited for. A stopped service is ALWAYS started again, also when
   the swap fails or on Ctrl-C; the report says what state it ended in.

A Prometheus backup is a TSDB snapshot: its blocks become the data directory
(no WAL from before the restore survives). The helper image can be overridden
with ``MONCTL_RESTORE_HELPER_IMAGE`` for service images without a shell.
"""

from __future__ import annotations

import contextlib
import io
import tarfile
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from monctl import catalogue
from monctl.adapters.docker import Docker
from monctl.adapters.storage import Storage
from monctl.catalogue import Service
from monctl.errors import IntegrityError, Interrupted, MonctlError, OperationFailed, StorageError
from monctl.ops import backups, lock
from monctl.ops.archive import READ_SIZE, decompress_stream
from monctl.ops.manifest import Manifest, read_manifest
from monctl.output import Output, styled
from monctl.project import Project

TARGET = "/target"
STAGE = ".monctl-restore"
READY_TIMEOUT = 180.0

# Runs as root in the helper: $1 = the archive's top directory, $2:$3 = owner.
# Replaces everything in the volume (dotfiles too) with the staged data, then
# hands it to the image's user. POSIX sh only: it must run on busybox too.
SWAP_SCRIPT = f"""set -eu
cd {TARGET}
src="{STAGE}/$1"
[ -d "$src" ] || {{ echo "monctl: $1 is missing from the archive" >&2; exit 3; }}
for f in * .[!.]* ..?*; do
  [ "$f" = "{STAGE}" ] && continue
  if [ -e "$f" ] || [ -L "$f" ]; then rm -rf -- "$f"; fi
done
for f in "$src"/* "$src"/.[!.]* "$src"/..?*; do
  if [ -e "$f" ] || [ -L "$f" ]; then mv -- "$f" .; fi
done
rm -rf -- "{STAGE}"
chown -R "$2:$3" {TARGET}
"""


@dataclass(frozen=True)
class Target:
    """One service to restore and where its data goes."""

    service: Service
    volume: str
    image: str  # image (id) the helper runs: the service's own unless overridden

    @property
    def data_path(self) -> str:
        assert self.service.data is not None
        return self.service.data.path


@dataclass(frozen=True)
class ServiceRestore:
    service: str
    volume: str
    status: str  # restored, failed
    state: str  # the service afterwards: "running, ready", "running, not ready: …", "stopped"
    seconds: float
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "volume": self.volume,
            "status": self.status,
            "state": self.state,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }


@dataclass
class RestoreReport:
    backup_id: str
    location: str
    verified: backups.VerifyReport | None = None
    services: list[ServiceRestore] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(s.status == "restored" and s.state == "running, ready" for s in self.services)

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.backup_id,
            "location": self.location,
            "ok": self.ok,
            "verified": self.verified.to_json() if self.verified else None,
            "services": [s.to_json() for s in self.services],
        }

    def render(self, out: Output) -> None:
        table = out.table("SERVICE", "VOLUME", "RESULT", "STATE NOW", "TIME", "ERROR")
        for s in self.services:
            table.add_row(
                s.service,
                s.volume,
                styled(s.status),
                s.state,
                f"{s.seconds:.1f} s",
                s.error or "",
            )
        out.print(table)
        verdict = "restored" if self.ok else "restore FAILED or incomplete"
        out.print(f"backup {self.backup_id} from {self.location}: {verdict}")


def _selected(manifest: Manifest, names: tuple[str, ...]) -> tuple[Service, ...]:
    """The services to restore: those named, else every one in the backup, in catalogue order."""
    chosen = catalogue.select(names) if names else catalogue.SERVICES
    if names:
        missing = [s.name for s in chosen if s.name not in manifest.services]
        if missing:
            raise StorageError(
                f"backup {manifest.backup_id} holds no archive for {', '.join(missing)}",
                hint=f"it holds: {', '.join(sorted(manifest.services)) or 'nothing'}",
            )
    result = tuple(s for s in chosen if s.name in manifest.services and s.data is not None)
    if not result:
        raise IntegrityError(f"backup {manifest.backup_id} holds nothing to restore")
    return result


def describe(targets: list[Target], backup_id: str) -> str:
    """The confirmation question: exactly what will be overwritten."""
    lines = [f"Restoring backup {backup_id} REPLACES the whole contents of:"]
    for t in targets:
        lines.append(f"  - volume {t.volume} ({t.service.name}: {t.data_path})")
    lines.append("Each service is stopped while its volume is replaced, then started again.")
    lines.append("Continue?")
    return "\n".join(lines)


def run(
    project: Project,
    storage: Storage,
    backup_id: str,
    names: tuple[str, ...],
    *,
    confirm: Callable[[str], bool],
    on_bytes: Callable[[int], None] | None = None,
    ready_timeout: float = READY_TIMEOUT,
) -> RestoreReport:
    """Verify, confirm, then restore ``names`` (default: all in the backup) from ``backup_id``.

    Raise IntegrityError (bad or incomplete backup) or StorageError (no such
    backup, destination failing) before any volume is touched; Interrupted when
    ``confirm`` declines; LockHeld when a backup or restore runs. Failures of
    single services are in the report (the others are still restored).
    """
    with lock.hold(lock.lock_path(project), f"restore {backup_id}"):
        manifest = read_manifest(storage, backup_id)
        services = _selected(manifest, names)
        report = RestoreReport(backup_id, storage.location)
        report.verified = backups.verify(
            storage, backup_id, [s.name for s in services], check=True, on_bytes=on_bytes
        )
        docker = Docker(project.name)
        override = project.setting("MONCTL_RESTORE_HELPER_IMAGE", "")
        targets = [
            Target(
                s,
                docker.volume_at(s.name, s.data.path),  # type: ignore[union-attr]
                override or docker.image_id_of(s.name),
            )
            for s in services
        ]
        if not confirm(describe(targets, backup_id)):
            raise Interrupted("restore declined; nothing was changed")
        for target in targets:
            report.services.append(
                _restore_one(project, docker, storage, manifest, target, ready_timeout)
            )
        return report


def _stage_dir_tar() -> bytes:
    """A tar holding only the empty staging directory (mode 0700: not for the service)."""
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo(STAGE)
        info.type = tarfile.DIRTYPE
        info.mode = 0o700
        tar.addfile(info)
    return buf.getvalue()


def _read_chunks(stream: BinaryIO) -> Iterator[bytes]:
    while True:
        chunk = stream.read(READ_SIZE)
        if not chunk:
            return
        yield chunk


def _run_checked(docker: Docker, helper_id: str, what: str) -> None:
    code, output = docker.run_created(helper_id)
    if code != 0:
        raise OperationFailed(f"{what} failed (exit {code}): {output.strip()[-300:]}")


def _remove_stage(docker: Docker, target: Target) -> None:
    with contextlib.suppress(MonctlError):
        docker.run_helper(target.image, ["rm", "-rf", f"{TARGET}/{STAGE}"], {target.volume: TARGET})


def _restore_one(
    project: Project,
    docker: Docker,
    storage: Storage,
    manifest: Manifest,
    target: Target,
    ready_timeout: float,
) -> ServiceRestore:
    assert target.service.data is not None
    data = target.service.data
    entry = manifest.services[target.service.name]
    started = time.monotonic()
    name = target.service.name
    argv = [
        "sh",
        "-c",
        SWAP_SCRIPT,
        "monctl-restore",
        entry.data_root,
        str(data.uid),
        str(data.gid),
    ]
    state = "unknown"
    try:
        if not entry.data_root or "/" in entry.data_root or entry.data_root in (".", ".."):
            raise IntegrityError(f"the manifest gives {name} no usable data_root")
        _remove_stage(docker, target)  # leftovers of an interrupted earlier restore
        helper = docker.create_helper(target.image, argv, {target.volume: TARGET})
        try:
            try:
                docker.put_archive(helper, TARGET, iter([_stage_dir_tar()]))
                with storage.open(manifest.key_of(name)) as stored:
                    tar = decompress_stream(stored, manifest.compression)
                    docker.put_archive(helper, f"{TARGET}/{STAGE}", _read_chunks(tar))
            except BaseException:
                _remove_stage(docker, target)  # the live data was not touched
                raise
            with _stopped(docker, name) as outcome:
                _run_checked(docker, helper, f"replacing the contents of {target.volume}")
            state = outcome.state
        finally:
            docker.remove_container(helper)
    except MonctlError as exc:
        return ServiceRestore(
            name,
            target.volume,
            "failed",
            _state_now(docker, name),
            time.monotonic() - started,
            exc.message,
        )
    if state == "running":
        state = _wait_ready(project, target.service, ready_timeout)
    return ServiceRestore(name, target.volume, "restored", state, time.monotonic() - started)


@dataclass
class _Outcome:
    state: str = "stopped"


@contextlib.contextmanager
def _stopped(docker: Docker, service: str) -> Iterator[_Outcome]:
    """Stop ``service`` for the block, and ALWAYS start it again (also on error or Ctrl-C)."""
    outcome = _Outcome()
    docker.stop(service)
    try:
        yield outcome
    finally:
        try:
            docker.start(service)
            outcome.state = "running"
        except MonctlError as exc:
            outcome.state = f"stopped (could not start it: {exc.message})"


def _state_now(docker: Docker, service: str) -> str:
    try:
        info = docker.inspect_all().get(service)
    except MonctlError:
        return "unknown"
    return info.state if info else "missing"


def _wait_ready(project: Project, service: Service, timeout: float) -> str:
    from monctl.ops import health

    report = health.wait(project, (service,), timeout=timeout, deep=False)
    if report.stack_ok:
        return "running, ready"
    row = report.services[0] if report.services else None
    detail = f"{row.status}: {row.detail}" if row else "no answer"
    return f"running, not ready after {timeout:.0f} s ({detail})"
