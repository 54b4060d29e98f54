"""``monctl backup verify``: is a backup intact and safe to restore?

Each archive is read once from the destination: its size and sha256 are
compared with the manifest while it is decompressed and every tar member is
checked (``tar_safety``), so verify judges exactly what restore will extract.
Everything restore relies on is checked here before Docker is ever contacted
(the manifest's own checks are in ``manifest.py``).

A verify holds a lease on the backup (``lease.py``) so no prune deletes it
meanwhile; when it cannot write one (read-only credentials), it still notices
a backup that disappears under it and says so instead of calling it corrupt.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from monctl.adapters.storage import Storage
from monctl.backup import lease
from monctl.backup.archive import HashingReader, decompress_stream
from monctl.backup.manifest import Manifest, manifest_key, read_manifest
from monctl.backup.tar_safety import TarCheck, check_tar
from monctl.errors import ExitCode, IntegrityError, StorageError
from monctl.output import Output, human_size, styled


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
    hold_lease: bool = True,
) -> VerifyReport:
    """Re-hash each archive of ``backup_id`` against its manifest and check_tar it.

    ``services``: those to verify (default: every service in the manifest).
    Every selected archive is checked even after one fails. With ``check``
    (default) raise IntegrityError when any failed; otherwise the report says.
    Raise StorageError when the destination holds no such backup (or no archive
    for a named service, or the backup disappeared while it was read),
    IntegrityError when the backup has no manifest or a malformed one.
    ``on_bytes(n)`` is called as stored bytes are read (for a progress bar).
    ``hold_lease``: hold a lease while reading (the caller may hold one already).
    """
    manifest = read_manifest(storage, backup_id)
    wanted = list(services) if services else list(manifest.services)
    unknown = [n for n in wanted if n not in manifest.services]
    if unknown:
        raise StorageError(
            f"backup {backup_id} holds no archive for {', '.join(unknown)}",
            hint=f"it holds: {', '.join(manifest.services) or 'nothing'}",
        )
    holding = lease.holding(storage, backup_id, "verify", required=False)
    with holding if hold_lease else _no_lease():
        checks = [verify_archive(storage, manifest, name, on_bytes) for name in wanted]
    if any(not c.ok for c in checks) and not storage.exists(manifest_key(backup_id)):
        # Missing archives because the whole backup went away (a prune elsewhere)
        # are not corruption: say what happened.
        raise StorageError(
            f"backup {backup_id} disappeared from {storage.location} while it was verified "
            "(deleted by a prune, on this host or another?)",
            hint="`monctl backup list` shows what is there now",
        )
    report = VerifyReport(storage.location, backup_id, checks)
    error = report.error()
    if check and error is not None:
        raise error
    return report


@contextlib.contextmanager
def _no_lease() -> Iterator[None]:
    yield
