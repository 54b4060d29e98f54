"""The repository format engine: how backups are laid out and kept at a destination
(docs/repository-format.md), apart from the verbs that use it (``monctl/backup/``).

- ``manifest.py``: backup ids, the layout of a backup and its manifest; ``parsing.py``:
  JSON read strictly, and a manifest's fields checked;
- ``filelist.py``: a service's file list (which files, which objects hold them);
- ``objects.py``: the one place stored bytes are made (compressed, encrypted, hashed to
  their id), ``object_reader.py`` where they are read and checked; ``archive.py``: codecs
  and hashing;
- ``index.py``: what the repository holds, and writing objects once (``ObjectStore``);
- ``tar_stream.py`` and ``tar_safety.py``: reading untrusted tars, and what may be extracted;
- ``gc.py``: garbage collection; ``retention.py``: which backups retention keeps;
  ``catalog.py``: every backup at a destination, complete or not;
- ``locking.py``: the host's lock (one run at a time) and leases (a backup in use);
- ``versions.py``: the downgrade check; ``keys.py``: which keys, and whether they open a
  backup.

``Repository`` is the one door the verbs talk to (restic's ``repository.Repository``);
it reaches storage through ``monctl.adapters.storage.Storage`` and chooses the destination
(``destination``, ``open_destination``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from contextlib import AbstractContextManager
from pathlib import Path
from typing import TYPE_CHECKING, BinaryIO

if TYPE_CHECKING:  # pragma: no cover
    from datetime import timedelta

    from monctl.adapters.age import Identities
    from monctl.adapters.storage import Staging, Storage
    from monctl.project import Project
    from monctl.repository.catalog import BackupEntry
    from monctl.repository.gc import GcReport
    from monctl.repository.index import Index
    from monctl.repository.locking import Lease
    from monctl.repository.manifest import Manifest, ServiceData
    from monctl.repository.objects import Blob, ObjectRef


# Where backups go: ``--repo``, else MONCTL_BACKUP_DEST, else <project>/backups; the S3
# settings from the command line or ``.env``. Opening one touches nothing.
DEFAULT_DEST = "backups"  # relative to the project root
LATEST = "latest"  # as a backup id: the newest complete backup


def destination(project: Project, given: str | None) -> str:
    """The destination string: the option, else MONCTL_BACKUP_DEST, else <root>/backups."""
    dest = given or project.setting("MONCTL_BACKUP_DEST", "") or DEFAULT_DEST
    if "://" in dest:
        return dest
    path = Path(dest).expanduser()
    return str(path if path.is_absolute() else project.root / path)


def open_destination(
    project: Project,
    given: str | None,
    *,
    sse: str | None = None,
    kms_key_id: str | None = None,
    storage_class: str | None = None,
) -> Storage:
    """The storage for the destination (StorageError for a malformed one)."""
    from monctl.adapters.storage import S3Options, open_storage

    options = S3Options.from_settings(
        project.setting,
        sse=sse or project.setting("MONCTL_BACKUP_SSE", "") or None,
        kms_key_id=kms_key_id or project.setting("MONCTL_BACKUP_SSE_KMS_KEY_ID", "") or None,
        storage_class=storage_class or project.setting("MONCTL_BACKUP_STORAGE_CLASS", "") or None,
    )
    return open_storage(destination(project, given), s3_options=options)


class Repository:
    """The one door the verbs talk to (restic's ``repository.Repository``): a destination's
    backups, opened. List them, read a manifest, open and check an object, write a
    backup's objects and its manifest, hold a lease, prune. No verb reaches a storage
    key: the keys are this package's business (docs/repository-format.md).

    Nothing is read when it is made; each method reads what it names (the modules
    are imported on use: this package is imported by every backup command)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @classmethod
    def of(cls, where: Repository | Storage) -> Repository:
        """``where`` as a repository: the verbs are also called with a bare ``Storage``
        (tests, benches, other callers of the library), which is opened here."""
        return where if isinstance(where, Repository) else cls(where)

    @classmethod
    def open(
        cls,
        project: Project,
        given: str | None,
        *,
        sse: str | None = None,
        kms_key_id: str | None = None,
        storage_class: str | None = None,
    ) -> Repository:
        """The destination ``given`` (``--repo``), else the project's
        (MONCTL_BACKUP_DEST, else <project>/backups); opening S3 checks its settings."""
        return cls(
            open_destination(
                project, given, sse=sse, kms_key_id=kms_key_id, storage_class=storage_class
            )
        )

    @classmethod
    def open_keyed(
        cls, project: Project, given: str | None, identity: tuple[str, ...]
    ) -> tuple[Repository, Identities | None]:
        """The destination to read and the identities that open it (``--identity``, else
        MONCTL_BACKUP_IDENTITY): the keys are read FIRST, so a bad one stops the command
        before the destination (S3) is opened. The one place a reading verb does both."""
        from monctl.repository import keys

        identities = keys.identities_for(project, identity)
        return cls.open(project, given), identities

    @property
    def location(self) -> str:
        return self.storage.location

    def resolve(self, backup_id: str) -> str:
        """``backup_id``, with ``latest`` made the newest complete backup."""
        return self.newest_complete() if backup_id == LATEST else backup_id

    # Reading: backups and manifests

    def backups(self) -> list[BackupEntry]:
        """Every backup, newest first (``monctl/repository/catalog.py``)."""
        from monctl.repository.catalog import list_backups

        return list_backups(self.storage)

    def backup_ids(self) -> list[str]:
        """The ids of every backup folder, complete or not, oldest first."""
        from monctl.repository.manifest import is_backup_id

        return sorted(n for n in self.storage.children("") if is_backup_id(n))

    def manifest(self, backup_id: str) -> Manifest:
        """The checked manifest of ``backup_id`` (StorageError when there is no such
        backup, IntegrityError when it is incomplete or its manifest is not one)."""
        from monctl.repository.manifest import read_manifest

        return read_manifest(self.storage, backup_id)

    def has_manifest(self, backup_id: str) -> bool:
        """Whether ``backup_id`` is (still) complete: its manifest is there."""
        from monctl.repository.manifest import manifest_key

        return self.storage.exists(manifest_key(backup_id))

    def gone(self, backup_id: str) -> bool:
        """Whether the backup's manifest went away (a prune), not the destination failing."""
        from monctl.errors import StorageError

        try:
            return not self.has_manifest(backup_id)
        except StorageError:
            return False  # the destination is failing: its first error says so

    def newest_complete(self) -> str:
        """The id of the newest complete backup (what ``latest`` names): StorageError
        when there is none."""
        from monctl.errors import IntegrityError, StorageError

        for backup_id in reversed(self.backup_ids()):
            try:
                self.manifest(backup_id)
            except (IntegrityError, StorageError):
                continue
            return backup_id
        raise StorageError(
            f"no complete backup in {self.location}",
            hint="`monctl backup list` shows what is there",
        )

    # Reading: objects and archives

    def objects(self) -> dict[str, int]:
        """The shared objects the repository holds: id -> stored bytes."""
        from monctl.repository import index

        return index.list_objects(self.storage)

    def open_object(
        self,
        blob: Blob,
        what: str = "",
        on_bytes: Callable[[int], None] | None = None,
        identities: Identities | None = None,
    ) -> AbstractContextManager[BinaryIO]:
        """The checked plaintext of ``blob`` (``object_reader.open_object``)."""
        from monctl.repository.object_reader import open_object

        return open_object(self.storage, blob, what, on_bytes, identities)

    def check_object(
        self,
        blob: Blob,
        what: str = "",
        on_bytes: Callable[[int], None] | None = None,
        identities: Identities | None = None,
    ) -> None:
        """Read ``blob`` whole and check it (IntegrityError, StorageError)."""
        from monctl.repository.object_reader import check_object

        check_object(self.storage, blob, what, on_bytes, identities)

    def hash_stored(
        self, ref: ObjectRef, on_bytes: Callable[[int], None] | None = None
    ) -> tuple[str, int]:
        """(hash, size) of an object's stored bytes: its integrity without a key."""
        from monctl.repository.object_reader import hash_stored

        return hash_stored(self.storage, ref, on_bytes)

    def open_stored(self, ref: ObjectRef) -> AbstractContextManager[BinaryIO]:
        """An object's stored bytes as they are (the direct restore copies a plain one)."""
        return self.storage.open(ref.key)

    def has_object(self, ref: ObjectRef) -> bool:
        return self.storage.exists(ref.key)

    def archive_size(self, manifest: Manifest, service: str) -> int | None:
        """The stored size of a format-1 backup's archive of ``service`` (None: absent)."""
        key = manifest.key_of(service)
        return self.storage.size(key) if self.storage.exists(key) else None

    def open_archive(self, manifest: Manifest, service: str) -> AbstractContextManager[BinaryIO]:
        """The stored bytes of a format-1 backup's archive of ``service``."""
        return self.storage.open(manifest.key_of(service))

    def absent(self, manifest: Manifest, services: Iterable[str]) -> list[str]:
        """What of ``services`` of ``manifest`` is not stored with its recorded size (one
        listing; nothing read): "archive X is missing", "object Y (svc) is N bytes, not M"."""
        problems: list[str] = []
        if manifest.format_version == 1:
            for name in services:
                entry = manifest.archive(name)
                stored = self.archive_size(manifest, name)
                if stored != entry.size:
                    how = "missing" if stored is None else f"{stored} bytes, not {entry.size}"
                    problems.append(f"archive {entry.archive} is {how}")
            return list(dict.fromkeys(problems))
        present = self.objects()
        for name in services:
            for blob in manifest.files(name).blobs():
                stored = present.get(blob.ref.id)
                if stored != blob.ref.stored:
                    how = "missing" if stored is None else f"{stored} bytes, not {blob.ref.stored}"
                    problems.append(f"object {blob.ref.id[:16]}… ({name}) is {how}")
        return list(dict.fromkeys(problems))

    def check_can_open(
        self, manifest: Manifest, services: Iterable[str], identities: Identities | None
    ) -> None:
        """IntegrityError before anything is touched when ``identities`` open none of
        ``services`` of an encrypted backup (``keys.check_can_open``)."""
        from monctl.repository import keys

        keys.check_can_open(self.storage, manifest, list(services), identities)

    # Writing a backup

    def check_writable(self) -> None:
        self.storage.check_writable()

    def new_backup_id(self) -> str:
        """A fresh backup id; two runs within the same second must not share one."""
        import time

        from monctl.errors import OperationFailed
        from monctl.repository.manifest import new_backup_id

        for _ in range(3):
            backup_id = new_backup_id()
            if not self.storage.list(f"{backup_id}/"):
                return backup_id
            time.sleep(1.0)
        raise OperationFailed("could not choose a backup id that is not in use")

    def index(self, services: Iterable[str], recipients: tuple[str, ...] = ()) -> Index:
        """What the repository holds, as a backup of ``services`` starting now sees it."""
        from monctl.repository import index

        return index.load(self.storage, services, recipients)

    def staging(self) -> AbstractContextManager[Staging]:
        """One batch of new objects, committed together (``Storage.staging``)."""
        from monctl.repository.objects import PREFIX

        return self.storage.staging(PREFIX)

    def confirm_present(self, entries: Mapping[str, ServiceData]) -> None:
        """Every object a new manifest of ``entries`` will reference is here (one listing):
        a prune on another host cannot have swept one meanwhile unnoticed."""
        from monctl.errors import StorageError
        from monctl.repository.filelist import ServiceFiles

        present = self.objects()
        for name, data in entries.items():
            assert isinstance(data, ServiceFiles)
            for blob in data.blobs():
                if present.get(blob.ref.id) != blob.ref.stored:
                    raise StorageError(
                        f"object {blob.ref.id[:16]}… that {name} needs disappeared from "
                        f"{self.location} during the backup (a prune on another host?)",
                        hint="run the backup again",
                    )

    def write_manifest(self, manifest: Manifest) -> None:
        """Write the manifest: LAST, after every object it names is confirmed present."""
        from monctl.repository.manifest import write_manifest

        write_manifest(self.storage, manifest)

    def free_bytes(self) -> int | None:
        """Free bytes at a local destination; None for S3 (no free space to ask about)."""
        from monctl.adapters.storage.local import LocalStorage
        from monctl.adapters.storage.os_errors import free_bytes

        if not isinstance(self.storage, LocalStorage):
            return None
        return free_bytes(self.storage.root)

    @property
    def is_local(self) -> bool:
        from monctl.adapters.storage.local import LocalStorage

        return isinstance(self.storage, LocalStorage)

    # In use, and pruning

    def lease(
        self, backup_id: str, operation: str, *, required: bool = True
    ) -> AbstractContextManager[str | None]:
        """Hold a lease on ``backup_id`` for the block (``locking.holding``)."""
        from monctl.repository import locking

        return locking.holding(self.storage, backup_id, operation, required=required)

    def leases_held(
        self, backup_id: str, keys: Sequence[str] | None = None, now: float | None = None
    ) -> list[Lease]:
        """The unexpired leases on ``backup_id``: those of ``keys`` (a listing's), else
        listed afresh."""
        from monctl.repository import locking

        if keys is None:
            keys = [k for k in self.storage.list(f"{backup_id}/") if locking.is_lease(k)]
        return locking.active(self.storage, list(keys), now)

    def delete_backup(self, backup_id: str, retire: bool) -> None:
        """Delete a backup's whole folder, the manifest first; with ``retire``, first
        record the objects it referenced (``gc.retire``) for a backup that may still
        have read its manifest."""
        import time

        from monctl.repository import gc

        if retire:
            gc.retire(self.storage, self.manifest(backup_id), time.time())
        self.storage.delete_prefix(f"{backup_id}/")

    def clean_partials(self, backup_id: str, grace: timedelta) -> list[str]:
        """Remove uploads into ``backup_id`` that died unfinished ``grace`` ago."""
        return self.storage.clean_partials(f"{backup_id}/", grace)

    def collect(self, dry_run: bool = False, ignore: frozenset[str] = frozenset()) -> GcReport:
        """Garbage collection: the objects no kept backup needs (``gc.collect``)."""
        from monctl.repository import gc

        return gc.collect(self.storage, dry_run=dry_run, ignore=ignore)


@contextlib.contextmanager
def project_lock(project: Project, operation: str, path: Path | None = None) -> Iterator[None]:
    """The one place a verb takes the host's lock (``locking.hold``): backup, restore and
    prune take the project's, the drill its own (``path``)."""
    from monctl.repository import locking

    with locking.hold(path or locking.lock_path(project), operation):
        yield


if TYPE_CHECKING:  # pragma: no cover
    # What a verb is given: a repository, or a bare storage it opens as one
    # (``Repository.of``): the verbs never name ``Storage`` themselves.
    RepositoryLike = Repository | Storage
