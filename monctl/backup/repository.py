"""The backups in a destination: list them, verify one, and prune old ones.

Only directories named by a backup id (``manifest.BACKUP_ID_RE``) are monctl's;
anything else under the destination is never read, listed or deleted. A
backup is complete when its manifest exists and parses; incomplete ones are
never offered for restore, and are pruned only once a newer complete backup
exists (before that they may be a backup still running).
"""

from __future__ import annotations

import io
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from monctl.adapters.storage import Storage
from monctl.backup.archive import HashingReader, decompress_stream
from monctl.backup.manifest import Manifest, is_backup_id, parse_backup_id, read_manifest
from monctl.backup.tar_safety import TarCheck, check_tar
from monctl.errors import ExitCode, IntegrityError, StorageError
from monctl.output import Output, human_size, styled


@dataclass(frozen=True)
class BackupEntry:
    backup_id: str
    complete: bool  # has a valid manifest
    manifest: Manifest | None
    created: datetime  # from the id (UTC start time)
    total_size: int  # bytes stored under the id
    problem: str | None = None  # why it is incomplete ("no manifest", a parse error)

    def to_json(self) -> dict[str, Any]:
        m = self.manifest
        return {
            "id": self.backup_id,
            "complete": self.complete,
            "created": self.created.isoformat(),
            "total_size": self.total_size,
            "services": sorted(m.services) if m else [],
            "compression": m.compression if m else None,
            "finished_at": m.finished_at.isoformat() if m else None,
            "problem": self.problem,
        }


@dataclass(frozen=True)
class BackupList:
    """Report of ``monctl backup list``."""

    location: str
    entries: list[BackupEntry]

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {"location": self.location, "backups": [e.to_json() for e in self.entries]}

    def render(self, out: Output) -> None:
        if not self.entries:
            out.info(f"no backups in {self.location}")
            return
        table = out.table("ID", "STATE", "SERVICES", "SIZE", title=out.text(self.location))
        for e in self.entries:
            services = ", ".join(sorted(e.manifest.services)) if e.manifest else ""
            state = "complete" if e.complete else f"incomplete ({e.problem})"
            table.add_row(e.backup_id, out.text(state), services, human_size(e.total_size))
        out.print(table)


def list_backups(storage: Storage) -> list[BackupEntry]:
    """Every monctl backup in ``storage``, newest first.

    Raise StorageError when the destination cannot be read. A manifest that
    cannot be read or parsed makes its backup incomplete (with the reason in
    ``problem``), not the listing fail.
    """
    entries = []
    for name in storage.children(""):
        if not is_backup_id(name):
            continue
        objects = storage.list_objects(f"{name}/")
        total = sum(o.size for o in objects)
        manifest: Manifest | None = None
        problem: str | None = None
        try:
            manifest = read_manifest(storage, name)
        except IntegrityError as e:
            problem = "no manifest" if "no manifest" in e.message else e.message
        except StorageError as e:
            problem = e.message
        entries.append(
            BackupEntry(
                backup_id=name,
                complete=manifest is not None,
                manifest=manifest,
                created=parse_backup_id(name),
                total_size=total,
                problem=problem,
            )
        )
    entries.sort(key=lambda e: e.created, reverse=True)
    return entries


@dataclass(frozen=True)
class ServiceCheck:
    service: str
    ok: bool
    size: int  # bytes read from the destination
    sha256: str  # of the bytes read
    tar: TarCheck | None
    error: str | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "ok": self.ok,
            "size": self.size,
            "sha256": self.sha256,
            "tar": self.tar.to_json() if self.tar else None,
            "error": self.error,
        }


@dataclass(frozen=True)
class VerifyReport:
    """Report of ``monctl backup verify``."""

    location: str
    backup_id: str
    checks: list[ServiceCheck] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK if self.ok else ExitCode.INTEGRITY

    def failures(self) -> list[ServiceCheck]:
        return [c for c in self.checks if not c.ok]

    def error(self) -> IntegrityError | None:
        """An IntegrityError naming every archive that failed, or None."""
        bad = self.failures()
        if not bad:
            return None
        detail = "; ".join(f"{c.service}: {c.error}" for c in bad)
        return IntegrityError(
            f"backup {self.backup_id} failed verification: {detail}",
            hint="restore from another backup (`monctl backup list`)",
        )

    def to_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "id": self.backup_id,
            "services": [c.to_json() for c in self.checks],
        }

    def render(self, out: Output) -> None:
        table = out.table("SERVICE", "RESULT", "SIZE", "FILES", "SHA256 / ERROR")
        for c in self.checks:
            files = str(c.tar.files) if c.tar else ""
            table.add_row(
                c.service,
                styled("ok" if c.ok else "failed"),
                human_size(c.size),
                files,
                c.sha256[:16] if c.ok else out.text(c.error or ""),
            )
        out.print(table)
        error = self.error()
        if error is not None:
            out.error(error.message, error.hint)


def verify_archive(
    storage: Storage,
    manifest: Manifest,
    service: str,
    on_bytes: Callable[[int], None] | None = None,
) -> ServiceCheck:
    """Check one archive of ``manifest``: its size, sha256, and every tar member.

    One pass over the stored bytes: they are hashed while being decompressed
    and checked. A mismatch of size or sha256 is reported first (it explains any
    tar error that follows from it). Never raises for a bad archive: the
    ServiceCheck says what is wrong. StorageError (destination failing) propagates.
    """
    entry = manifest.services[service]
    key = manifest.key_of(service)

    def failed(error: str, size: int = 0, sha: str = "") -> ServiceCheck:
        return ServiceCheck(service, False, size, sha, None, error)

    if not storage.exists(key):
        return failed(f"archive {entry.archive} is missing")
    stored = storage.size(key)
    if stored != entry.size:
        # No need to read it: the manifest recorded what was written.
        how = "truncated" if stored < entry.size else "longer than recorded"
        return failed(f"{entry.archive} is {how}: {stored} bytes, manifest says {entry.size}")
    tar: TarCheck | None = None
    tar_error: str | None = None
    with storage.open(key) as f:
        hashing = HashingReader(f, on_bytes)
        try:
            stream = decompress_stream(io.BufferedReader(hashing), manifest.compression)
            tar = check_tar(stream, entry.data_root)
        except IntegrityError as e:
            tar_error = e.message
        hashing.drain()
    if hashing.size != entry.size or hashing.sha256 != entry.sha256:
        return failed(
            f"{entry.archive} does not match its manifest (sha256 {hashing.sha256[:16]}..., "
            f"expected {entry.sha256[:16]}...): it is corrupt",
            hashing.size,
            hashing.sha256,
        )
    if tar_error is not None:
        return failed(tar_error, hashing.size, hashing.sha256)
    return ServiceCheck(service, True, hashing.size, hashing.sha256, tar)


def verify(
    storage: Storage,
    backup_id: str,
    services: Sequence[str] | None = None,
    *,
    check: bool = True,
    on_bytes: Callable[[int], None] | None = None,
) -> VerifyReport:
    """Re-hash each archive of ``backup_id`` against its manifest and check_tar it.

    ``services``: those to verify (default: every service in the manifest).
    Every selected archive is checked even after one fails. With ``check``
    (default) raise IntegrityError when any failed; otherwise the report says.
    Raise StorageError when the destination holds no such backup (or no archive
    for a named service), IntegrityError when the backup has no manifest.
    ``on_bytes(n)`` is called as stored bytes are read (for a progress bar).
    """
    manifest = read_manifest(storage, backup_id)
    wanted = list(services) if services else list(manifest.services)
    unknown = [n for n in wanted if n not in manifest.services]
    if unknown:
        raise StorageError(
            f"backup {backup_id} holds no archive for {', '.join(unknown)}",
            hint=f"it holds: {', '.join(manifest.services) or 'nothing'}",
        )
    report = VerifyReport(
        storage.location,
        backup_id,
        [verify_archive(storage, manifest, name, on_bytes) for name in wanted],
    )
    error = report.error()
    if check and error is not None:
        raise error
    return report


def select_for_prune(
    entries: Iterable[BackupEntry],
    keep_last: int | None,
    keep_days: int | None,
    now: datetime | None = None,
) -> list[BackupEntry]:
    """The backups prune would delete, newest first.

    A complete backup survives if either rule keeps it: it is among the
    ``keep_last`` newest complete backups, or it was created less than
    ``keep_days`` days before ``now`` (like borg/restic --keep-last/--keep-within).
    The newest complete backup always survives, so prune never deletes all of
    them. Incomplete backups are deleted only when older than the newest
    complete one (leftovers of failed runs; a newer one may still be running).
    Raise ValueError when neither rule is given or one is negative.
    """
    if keep_last is None and keep_days is None:
        raise ValueError("prune needs --keep-last or --keep-days")
    if (keep_last is not None and keep_last < 0) or (keep_days is not None and keep_days < 0):
        raise ValueError("--keep-last and --keep-days cannot be negative")
    now = now or datetime.now(UTC)
    ordered = sorted(entries, key=lambda e: e.created, reverse=True)
    complete = [e for e in ordered if e.complete]
    if not complete:
        return []  # nothing complete to fall back on: keep every leftover for inspection
    newest = complete[0]
    kept: set[str] = {newest.backup_id}
    if keep_last is not None:
        kept.update(e.backup_id for e in complete[:keep_last])
    if keep_days is not None:
        horizon = now - timedelta(days=keep_days)
        kept.update(e.backup_id for e in complete if e.created > horizon)
    return [
        e for e in ordered if e.backup_id not in kept and (e.complete or e.created < newest.created)
    ]


@dataclass(frozen=True)
class PruneReport:
    """Report of ``monctl backup prune`` (and retention after ``monctl backup``)."""

    location: str
    dry_run: bool
    kept: list[BackupEntry]
    deleted: list[BackupEntry]
    errors: list[str] = field(default_factory=list)
    cleaned: list[str] = field(default_factory=list)  # unfinished uploads removed

    @property
    def freed(self) -> int:
        return sum(e.total_size for e in self.deleted)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.STORAGE if self.errors else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "location": self.location,
            "dry_run": self.dry_run,
            "kept": [e.backup_id for e in self.kept],
            "deleted": [e.backup_id for e in self.deleted],
            "freed_bytes": self.freed,
            "cleaned_partials": self.cleaned,
            "errors": self.errors,
        }

    def render(self, out: Output) -> None:
        verb = "would delete" if self.dry_run else "deleted"
        table = out.table("ID", "STATE", "SIZE", "ACTION", title=out.text(self.location))
        for e in sorted([*self.kept, *self.deleted], key=lambda x: x.created, reverse=True):
            action = verb if e in self.deleted else "keep"
            table.add_row(
                e.backup_id,
                "complete" if e.complete else "incomplete",
                human_size(e.total_size),
                styled(action),
            )
        out.print(table)
        out.info(f"{verb} {len(self.deleted)} backup(s), {human_size(self.freed)}")
        for err in self.errors:
            out.warn(err)


def prune(
    storage: Storage,
    keep_last: int | None,
    keep_days: int | None,
    dry_run: bool = False,
    *,
    now: datetime | None = None,
) -> PruneReport:
    """Apply ``select_for_prune`` to the backups in ``storage``.

    Deletes each selected backup's whole directory (archives, manifest, partial
    objects, unfinished uploads), the manifest FIRST so a half-deleted backup
    reads as incomplete, never as complete-but-broken. Keeps going past a
    failed deletion; the report's ``errors`` lists them (the CLI exits non-zero).
    With ``dry_run`` nothing is deleted.
    """
    entries = list_backups(storage)
    doomed = select_for_prune(entries, keep_last, keep_days, now)
    doomed_ids = {e.backup_id for e in doomed}
    kept = [e for e in entries if e.backup_id not in doomed_ids]
    errors: list[str] = []
    deleted: list[BackupEntry] = []
    cleaned: list[str] = []
    if dry_run:
        return PruneReport(storage.location, True, kept, doomed)
    for entry in doomed:
        try:
            storage.delete_prefix(f"{entry.backup_id}/")
            deleted.append(entry)
        except StorageError as e:
            errors.append(f"could not delete backup {entry.backup_id}: {e.message}")
    for entry in kept:
        # Uploads that died without being aborted (a killed run, an endpoint that
        # stayed down) cost storage; an hour's grace spares one still running.
        try:
            cleaned += storage.clean_partials(f"{entry.backup_id}/", timedelta(hours=1))
        except StorageError as e:
            errors.append(f"could not clean unfinished uploads of {entry.backup_id}: {e.message}")
    failed = [e for e in doomed if e not in deleted]
    return PruneReport(storage.location, False, kept + failed, deleted, errors, cleaned)
