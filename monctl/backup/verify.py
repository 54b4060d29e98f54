"""``monctl backup verify``: is a backup intact and safe to restore?

Format 1: each archive is read once from the destination: its size and
sha256 are compared with the manifest while it is decompressed and every tar
member is checked (``tar_safety``), so verify judges exactly what restore
will extract. Format 2: every object the backup references is present,
its stored bytes hash to its name, and it decodes to the plaintext the
manifest records (size and sha256) — the pack file by file; the file list's
names and links were checked when the manifest was parsed (``filelist``).
A missing or damaged object is named, with every backup that needs it.
Everything restore relies on is checked here before Docker is ever contacted.

A verify holds a lease on the backup (``monctl/repository/locking.py``) so no prune deletes it
meanwhile; when it cannot write one (read-only credentials), it still notices
a backup that disappears under it and says so instead of calling it corrupt.
"""

from __future__ import annotations

import contextlib
import io
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monctl.adapters.age import NoMatchingIdentity
from monctl.backup.reports import ServiceCheck, VerifyReport
from monctl.errors import IntegrityError, StorageError
from monctl.repository import Repository
from monctl.repository.archive import HashingReader, decompress_stream
from monctl.repository.filelist import ServiceFiles
from monctl.repository.manifest import Manifest
from monctl.repository.object_reader import read_packed
from monctl.repository.objects import Blob
from monctl.repository.tar_safety import TarCheck, check_tar

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.age import Identities
    from monctl.backup.verify_all import RepositoryCheck
    from monctl.project import Project
    from monctl.repository import RepositoryLike

__all__ = ["ServiceCheck", "VerifyReport", "verify", "verify_archive", "verify_files"]

# Results of objects already checked in this run (keyed by all check_blob looks at).
Checked = dict[tuple[str, str, str, bool, str, int], str | None]  # check_blob: key -> problem


def verify_archive(
    repo: RepositoryLike,
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
    repo = Repository.of(repo)
    entry = manifest.archive(service)

    def failed(error: str, size: int = 0, sha: str = "") -> ServiceCheck:
        return ServiceCheck(service, False, size, sha, None, error)

    stored = repo.archive_size(manifest, service)
    if stored is None:
        return failed(f"archive {entry.archive} is missing")
    if stored != entry.size:
        # No need to read it: the manifest recorded what was written.
        how = "truncated" if stored < entry.size else "longer than recorded"
        return failed(f"{entry.archive} is {how}: {stored} bytes, manifest says {entry.size}")
    tar: TarCheck | None = None
    tar_error: str | None = None
    with repo.open_archive(manifest, service) as f:
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


def check_blob(
    repo: RepositoryLike,
    blob: Blob,
    present: dict[str, int],
    what: str,
    checked: Checked,
    on_bytes: Callable[[int], None] | None = None,
    identities: Identities | None = None,
) -> str | None:
    """What is wrong with ``blob`` (None: nothing), each object read once per run.
    Encrypted and no ``identities``: its stored bytes only (size, hash = its name)."""
    repo = Repository.of(repo)
    # Everything that decides how the object is checked: a manifest naming the same object
    # with another hash, codec or encryption gets its own check, not the first one's.
    key = (blob.ref.id, blob.ref.hash, blob.ref.codec, blob.ref.encrypted, blob.sha256, blob.size)
    if key in checked:
        return checked[key]
    problem: str | None = None
    stored = present.get(blob.ref.id)
    if stored is None:
        problem = f"{what} is missing"
    elif stored != blob.ref.stored:
        how = "truncated" if stored < blob.ref.stored else "longer than recorded"
        problem = f"{what} is {how}: {stored} bytes, the manifest says {blob.ref.stored}"
    else:
        try:
            if blob.ref.encrypted and identities is None:
                problem = _stored_problem(repo, blob, what, on_bytes)
            else:
                repo.check_object(blob, what, on_bytes, identities)
        except NoMatchingIdentity as e:
            # keys.check_can_open found the key fits this backup before any object was
            # read, so an object it cannot open was replaced: damage, named with the rest.
            problem = f"{e.message} (unlike the backup's other objects)"
        except IntegrityError as e:
            problem = e.message
        except StorageError:
            if repo.has_object(blob.ref):
                raise  # the destination failing, not the object
            problem = f"{what} is missing"
    checked[key] = problem
    return problem


def _stored_problem(
    repo: Repository, blob: Blob, what: str, on_bytes: Callable[[int], None] | None
) -> str | None:
    sha, size = repo.hash_stored(blob.ref, on_bytes)
    if sha != blob.ref.id or size != blob.ref.stored:
        return f"{what} is corrupt: its stored bytes hash to {sha[:16]}… ({size} bytes)"
    return None


def _check_pack(
    repo: Repository,
    service: str,
    files: ServiceFiles,
    present: dict[str, int],
    on_bytes: Callable[[int], None] | None,
    identities: Identities | None = None,
) -> str | None:
    """The pack, file by file: each packed file's bytes hash as recorded."""
    assert files.pack is not None
    what = f"the pack of {service} (object {files.pack.ref.id[:16]}…)"
    stored = present.get(files.pack.ref.id)
    if stored != files.pack.ref.stored:
        return f"{what} is missing" if stored is None else f"{what} has the wrong size"
    if files.pack.ref.encrypted and identities is None:
        return _stored_problem(repo, files.pack, what, on_bytes)
    try:
        with repo.open_object(files.pack, what, on_bytes, identities) as plain:
            for entry in files.files:
                if entry.kind == "file" and entry.blob is None:
                    for _ in read_packed(plain, entry, what):
                        pass
            plain.read(1)  # the end: the object's own hashes are compared here
    except NoMatchingIdentity as e:  # replaced: see check_blob
        return f"{e.message} (unlike the backup's other objects)"
    except IntegrityError as e:
        return e.message
    return None


def verify_files(
    repo: RepositoryLike,
    manifest: Manifest,
    service: str,
    present: dict[str, int],
    checked: Checked,
    on_bytes: Callable[[int], None] | None = None,
    identities: Identities | None = None,
) -> ServiceCheck:
    """Check one format-2 service: every object it references, the pack file by file
    (encrypted and no ``identities``: the stored bytes of each)."""
    repo = Repository.of(repo)
    files = manifest.files(service)
    problems: list[str] = []
    bad: list[str] = []
    read = 0

    def counted(n: int) -> None:
        nonlocal read
        read += n
        if on_bytes is not None:
            on_bytes(n)

    if files.pack is not None:
        problem = _check_pack(repo, service, files, present, counted, identities)
        if problem:
            problems.append(problem)
            bad.append(files.pack.ref.id)
    seen: set[tuple[str, str, int]] = set()
    for entry in files.files:
        blob = entry.blob
        if blob is None or (blob.ref.id, blob.sha256, blob.size) in seen:
            continue
        seen.add((blob.ref.id, blob.sha256, blob.size))
        what = f"object {blob.ref.id[:16]}… ({entry.path})"
        problem = check_blob(repo, blob, present, what, checked, counted, identities)
        if problem:
            problems.append(problem)
            bad.append(blob.ref.id)
    tar = TarCheck(
        members=len(files.files),
        files=sum(e.kind == "file" for e in files.files),
        dirs=sum(e.kind == "dir" for e in files.files),
        links=sum(e.kind in ("symlink", "hardlink") for e in files.files),
        bytes=files.raw_size,
    )
    sha = files.pack.ref.id if files.pack else ""
    if problems:
        more = f" (and {len(problems) - 3} more)" if len(problems) > 3 else ""
        error = "; ".join(problems[:3]) + more
        return ServiceCheck(service, False, read, sha, tar, error, tuple(dict.fromkeys(bad)))
    return ServiceCheck(service, True, read, sha, tar)


def needed_by(repo: RepositoryLike, object_ids: Sequence[str]) -> dict[str, list[str]]:
    """For each object id, the complete backups whose manifest references it."""
    repo = Repository.of(repo)
    wanted = set(object_ids)
    found: dict[str, list[str]] = {i: [] for i in object_ids}
    for backup_id in repo.backup_ids():
        try:
            manifest = repo.manifest(backup_id)
        except (IntegrityError, StorageError):
            continue
        for object_id in manifest.object_ids() & wanted:
            found[object_id].append(backup_id)
    return found


@dataclass(frozen=True)
class VerifyRequest:
    """What ``monctl backup verify`` is asked (built by the command from its options and
    ``.env``): one backup (or ``latest``), or every one (``backup_id`` None: ``--all``)."""

    project: Project
    destination: str | None
    backup_id: str | None
    services: tuple[str, ...] = ()
    identity: tuple[str, ...] = ()  # key files as given; read by Repository.open_keyed
    deep: bool = False


def perform(
    request: VerifyRequest, on_bytes: Callable[[str, int], None] | None = None
) -> VerifyReport | RepositoryCheck:
    """Keys, destination, then ``verify`` (``latest`` resolved) or ``verify_all``, the
    report returned whatever it found; ``on_bytes(backup id or "repository", n)``."""
    repo, identities = Repository.open_keyed(request.project, request.destination, request.identity)
    if request.backup_id is None:
        from monctl.backup.verify_all import verify_all

        counted = (lambda n: on_bytes("repository", n)) if on_bytes is not None else None
        return verify_all(repo, on_bytes=counted, identities=identities, deep=request.deep)
    backup_id = repo.resolve(request.backup_id)
    return verify(
        repo,
        backup_id,
        list(request.services) or None,
        check=False,
        on_bytes=(lambda n: on_bytes(backup_id, n)) if on_bytes is not None else None,
        identities=identities,
        deep=request.deep,
    )


def verify(
    repo: RepositoryLike,
    backup_id: str,
    services: Sequence[str] | None = None,
    *,
    check: bool = True,
    on_bytes: Callable[[int], None] | None = None,
    hold_lease: bool = True,
    identities: Identities | None = None,
    deep: bool = False,
    manifest: Manifest | None = None,
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
    An encrypted backup: with ``identities``, or ``deep`` (then they are required),
    what every object decrypts to is checked too — after ``keys.check_can_open``
    (a missing or wrong identity: IntegrityError at once); else its stored bytes.
    ``manifest``: already read by the caller (a restore), which has checked the keys.
    """
    repo = Repository.of(repo)
    given = manifest is not None
    manifest = manifest if manifest is not None else repo.manifest(backup_id)
    wanted = list(services) if services else list(manifest.services)
    unknown = [n for n in wanted if n not in manifest.services]
    if unknown:
        raise StorageError(
            f"backup {backup_id} holds no archive for {', '.join(unknown)}",
            hint=f"it holds: {', '.join(manifest.services) or 'nothing'}",
        )
    if manifest.recipients and (deep or identities is not None) and not given:
        repo.check_can_open(manifest, wanted, identities)
    holding = repo.lease(backup_id, "verify", required=False)
    with holding if hold_lease else contextlib.nullcontext():
        if manifest.format_version == 1:
            checks = [verify_archive(repo, manifest, name, on_bytes) for name in wanted]
        else:
            present = repo.objects()
            checked: Checked = {}
            checks = [
                verify_files(repo, manifest, name, present, checked, on_bytes, identities)
                for name in wanted
            ]
    if any(not c.ok for c in checks) and not repo.has_manifest(backup_id):
        # Missing archives because the whole backup went away (a prune elsewhere)
        # are not corruption: say what happened.
        raise StorageError(
            f"backup {backup_id} disappeared from {repo.location} while it was verified "
            "(deleted by a prune, on this host or another?)",
            hint="`monctl backup list` shows what is there now",
        )
    bad = [i for c in checks for i in c.bad_objects]
    report = VerifyReport(
        repo.location,
        backup_id,
        checks,
        needed_by(repo, bad) if bad else {},
        contents_checked=not manifest.recipients or identities is not None,
    )
    error = report.error()
    if check and error is not None:
        raise error
    return report
