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
- ``locking.py``: one run at a time on a host (the lock) and a backup in use on any host
  (leases);
- ``versions.py``: the downgrade check; ``keys.py``: which keys, and whether they open a
  backup.

Everything here reaches storage only through ``monctl.adapters.storage.Storage``, and
the destination is chosen and opened here (``destination``, ``open_destination``).
``Repository`` is the one door the verbs are to talk to (restic's
``repository.Repository``); ``backup list`` goes only through it so far.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage import Storage
    from monctl.project import Project
    from monctl.repository.catalog import BackupEntry
    from monctl.repository.manifest import Manifest


# Where backups go: ``--to``/``--from``, else ``MONCTL_BACKUP_DEST``, else ``<project>/backups``.
#
# A relative directory is relative to the project root, not the working
# directory. The S3 settings (server-side encryption, KMS key, storage class)
# come from the command line or ``.env``. Opening a destination touches
# nothing; the storage adapters (``monctl.adapters.storage``) do the talking.
DEFAULT_DEST = "backups"  # relative to the project root


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
    """A destination's backups, opened: list them, read a manifest, see the objects.

    Nothing is read when it is made; each method reads what it names (the modules
    are imported on use: this package is imported by every backup command)."""

    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    @classmethod
    def open(cls, project: Project, given: str | None) -> Repository:
        """The destination ``given`` (``--repo``), else the project's
        (MONCTL_BACKUP_DEST, else <project>/backups); opening S3 checks its settings."""
        return cls(open_destination(project, given))

    @property
    def location(self) -> str:
        return self.storage.location

    def backups(self) -> list[BackupEntry]:
        """Every backup, newest first (``monctl/repository/catalog.py``)."""
        from monctl.repository.catalog import list_backups

        return list_backups(self.storage)

    def manifest(self, backup_id: str) -> Manifest:
        """The checked manifest of ``backup_id`` (IntegrityError when it is not one)."""
        from monctl.repository.manifest import read_manifest

        return read_manifest(self.storage, backup_id)

    def objects(self) -> dict[str, int]:
        """The shared objects the repository holds: id -> stored bytes."""
        from monctl.repository import index

        return index.list_objects(self.storage)
