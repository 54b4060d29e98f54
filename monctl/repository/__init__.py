"""The repository format engine: how backups are laid out and kept at a destination
(docs/repository-format.md), apart from the verbs that use it (``monctl/backup/``).

- ``manifest.py``: backup ids, the layout of a backup and its manifest;
- ``filelist.py``: a service's file list (which files, which objects hold them);
- ``objects.py``: the one place stored bytes are made and read (compressed, encrypted,
  hashed to their id); ``archive.py``: codecs and hashing;
- ``store.py`` and ``index.py``: writing objects once, and what the repository holds;
- ``tar_stream.py`` and ``tar_safety.py``: reading untrusted tars, and what may be extracted;
- ``gc.py``: garbage collection; ``retention.py``: which backups retention keeps;
- ``lease.py`` (a backup in use on any host) and ``lock.py`` (one run at a time on a host);
- ``versions.py``: the downgrade check; ``keys.py``: which keys, and whether they open a
  backup; ``strict_json.py``: JSON parsed strictly.

Everything here reaches storage only through ``monctl.adapters.storage.Storage``.
``Repository`` is the one door the verbs are to talk to (restic's
``repository.Repository``); ``backup list`` goes only through it so far.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage import Storage
    from monctl.project import Project
    from monctl.repository.catalog import BackupEntry
    from monctl.repository.manifest import Manifest


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
        from monctl.repository.destination import open_destination

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
