"""Which keys a command uses, and whether they can open a backup — asked before anything.

- ``backup`` encrypts to ``--encrypt-to`` (repeatable), else to
  ``MONCTL_BACKUP_ENCRYPT_TO`` (environment, then ``.env``; comma-separated
  ``age1…`` or SSH public keys). The manifest records them (public keys only).
- ``restore``, ``verify --deep`` and the drill read with ``--identity FILE``
  (repeatable), else ``MONCTL_BACKUP_IDENTITY`` (comma-separated files; relative
  to the project directory).

``check_can_open`` runs before a restore touches anything and before a deep
verify reads everything: an encrypted backup with no identity, or with one that
answers none of its recipients, is refused at once (exit 10) — not found out
object by object, nor after a service was stopped.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from monctl.errors import IntegrityError, StorageError

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.age import Identities
    from monctl.adapters.storage import Storage
    from monctl.project import Project
    from monctl.repository.manifest import Manifest

RECIPIENTS_VAR = "MONCTL_BACKUP_ENCRYPT_TO"
IDENTITY_VAR = "MONCTL_BACKUP_IDENTITY"


def recipients_for(project: Project, given: tuple[str, ...]) -> tuple[str, ...]:
    """The recipients a backup encrypts to: ``given`` (the command line), else the setting."""
    setting = project.setting(RECIPIENTS_VAR).strip()
    values = given or ((setting,) if setting else ())
    if not values:
        return ()
    from monctl.adapters import age

    return age.parse_recipients(values, "--encrypt-to" if given else RECIPIENTS_VAR)


def identities_for(project: Project, given: tuple[str, ...]) -> Identities | None:
    """The identities to read with: ``given`` files, else the setting's; None when neither."""
    if given:
        paths = [Path(p).expanduser() for p in given]
    else:
        raw = [p.strip() for p in project.setting(IDENTITY_VAR).split(",") if p.strip()]
        paths = [project.root / Path(p).expanduser() for p in raw]
    if not paths:
        return None
    from monctl.adapters import age

    return age.load_identities(paths)


def short(recipient: str) -> str:
    """A public key as a person compares it: its type and first characters."""
    kind, _, key = recipient.partition(" ")
    return f"{recipient[:12]}…{recipient[-6:]}" if not key else f"{kind} {key[:12]}…"


def check_can_open(
    storage: Storage,
    manifest: Manifest,
    services: Iterable[str],
    identities: Identities | None,
) -> None:
    """Raise (exit 10) unless ``identities`` can open ``manifest``'s backup.

    age1 identities are compared with the recipients directly; an SSH identity's
    public key is not derived here, so one small object is opened to find out.
    Nothing is read for a backup that is not encrypted.
    """
    if not manifest.recipients:
        return
    from monctl.adapters import age
    from monctl.repository.filelist import ServiceFiles
    from monctl.repository.object_reader import check_object

    keys = ", ".join(short(r) for r in manifest.recipients)
    what = f"backup {manifest.backup_id} is encrypted (age, to {keys})"
    if identities is None:
        raise age.MissingIdentity(f"{what}, and no identity was given")
    if not identities.may_open(manifest.recipients):
        raise age.NoMatchingIdentity(
            f"{what}; the identity in {', '.join(identities.sources)} matches none of them",
            hint=age.IDENTITY_HINT,
        )
    if identities.publics & set(manifest.recipients):
        return
    wanted = set(services)
    blobs = [
        blob
        for name, data in manifest.services.items()
        if name in wanted and isinstance(data, ServiceFiles)
        for blob in data.blobs()
    ]
    if not blobs:
        return
    smallest = min(blobs, key=lambda b: b.ref.stored)
    try:
        check_object(storage, smallest, f"{what}: object {smallest.ref.id[:16]}…", None, identities)
    except age.NoMatchingIdentity:
        raise
    except (IntegrityError, StorageError):
        return  # not about the key: verify names what is wrong with it
