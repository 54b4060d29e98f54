"""Where backups go: ``--to``/``--from``, else ``MONCTL_BACKUP_DEST``, else ``<project>/backups``.

A relative directory is relative to the project root, not the working
directory. The S3 settings (server-side encryption, KMS key, storage class)
come from the command line or ``.env``. Opening a destination touches
nothing; the storage adapters (``monctl.adapters.storage``) do the talking.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage import Storage
    from monctl.project import Project

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
