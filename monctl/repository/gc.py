"""Garbage collection: the objects no backup needs are deleted, never one a running backup may use.

``prune`` decides which backups go (``retention.py``) and deletes them; then
``collect`` sweeps the objects (``objects/``) nothing references any more.
Mark and sweep, under the project lock (one prune per host) and across hosts
through the leases (``locking.py``):

- **mark**: every object referenced by a complete backup, as listed now
  (after the deletions, so a backup that completed meanwhile counts), and by
  the *retired* manifests that a running backup may still rely on;
- **retired**: deleting a format-2 backup first writes
  ``retired/<id>.json`` (the object ids it referenced, and when it was
  deleted). A backup that started before that moment may have read the
  manifest and be about to reference its objects, so they stay marked until
  every backup running started after the deletion (minus a clock-skew
  allowance); then the record goes, and its objects with it;
- **grace**: an object written after the oldest running backup started
  (minus the allowance) is spared even when nothing references it yet: it
  may be that backup's, whose manifest comes last. With no backup running,
  the grace still spares objects younger than the allowance (a backup on
  another host may just have started);
- **only monctl's**: under ``retired/`` only ``retired/<backup id>.json`` is
  read or deleted; any other name there is not monctl's and stays;
- **refusal**: a backup whose manifest cannot be read (not merely missing)
  may reference anything, so nothing is swept while one exists; an unreadable
  lease counts as a backup running since forever (nothing is swept either), and
  so does a retired record that cannot be read while a backup runs. Unreadable
  is a kind of failure (``manifest.Incomplete`` is "no manifest yet"), never
  the words of a message; a number read (a time) is bounded (``locking.number``).

A backup itself lists the repository once more just before its manifest
(``create._confirm_present``) and reuses only objects that complete
manifests reference, so a sweep that races with it anyway is noticed there.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from monctl.errors import IntegrityError, StorageError
from monctl.repository import locking, parsing
from monctl.repository.manifest import Incomplete, Manifest, is_backup_id, read_manifest
from monctl.repository.objects import PREFIX, id_of_key, is_id

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage import Storage

RETIRED = "retired/"
SKEW = 600.0  # seconds of clock difference allowed between hosts (and the store)
MAX_RETIRED_BYTES = 64 * 1024 * 1024
# A spool (local partial object) older than this belongs to no live backup.
STALE_SPOOL = timedelta(seconds=locking.TTL)


@dataclass
class GcReport:
    swept: int = 0  # objects deleted (or that would be, in a dry run)
    freed: int = 0  # their bytes
    kept: int = 0  # objects still referenced
    spared: int = 0  # unreferenced, but young enough that a running backup may own them
    retired_kept: list[str] = field(default_factory=list)  # retired backups still marked
    refused: str | None = None  # why nothing was swept
    errors: list[str] = field(default_factory=list)

    def to_json(self) -> dict[str, Any]:
        return {
            "swept_objects": self.swept,
            "freed_bytes": self.freed,
            "kept_objects": self.kept,
            "spared_objects": self.spared,
            "retired_kept": self.retired_kept,
            "refused": self.refused,
            "errors": self.errors,
        }


def referenced(manifest: Manifest) -> set[str]:
    return manifest.object_ids()


def retire(storage: Storage, manifest: Manifest, now: float) -> None:
    """Record a format-2 backup about to be deleted (call BEFORE deleting it)."""
    objects = sorted(referenced(manifest))
    body = {"backup_id": manifest.backup_id, "deleted_at": now, "objects": objects}
    data = json.dumps(body).encode()
    storage.put(f"{RETIRED}{manifest.backup_id}.json", [data], size_hint=len(data))


def retired_key(key: str) -> str | None:
    """The backup id of a retired record's key, ``retired/<backup id>.json``; None for any
    other key under ``retired/`` (not monctl's: never read, never deleted)."""
    name = key[len(RETIRED) :] if key.startswith(RETIRED) else ""
    backup_id = name[: -len(".json")] if name.endswith(".json") else ""
    return backup_id if is_backup_id(backup_id) else None


def _retired(storage: Storage) -> list[tuple[str, float, set[str] | None]]:
    """(key, deleted_at, object ids) of every retired record; an unreadable one
    counts as deleted just now, its objects unknown (None)."""
    records = []
    for key in storage.list(RETIRED):
        if retired_key(key) is None:
            continue
        deleted, ids = time.time(), None
        try:
            with storage.open(key) as f:
                doc = parsing.loads(f.read(MAX_RETIRED_BYTES))
            deleted = locking.number(doc, "deleted_at", locking.MAX_TIME)
            ids = {i for i in doc["objects"] if isinstance(i, str) and is_id(i)}
        except (StorageError, ValueError, TypeError, KeyError, RecursionError):
            pass
        records.append((key, deleted, ids))
    return records


def _running_since(storage: Storage, now: float) -> float | None:
    """When the oldest backup running anywhere started (None: none runs).
    Leases of restores and verifies write nothing and do not count."""
    oldest: float | None = None
    for name in storage.children(""):
        if not is_backup_id(name):
            continue
        keys = [k for k in storage.list(f"{name}/") if locking.is_lease(k)]
        for held in locking.active(storage, keys, now):
            if held.operation in ("restore", "verify"):
                continue
            oldest = held.started if oldest is None else min(oldest, held.started)
    return oldest


def collect(
    storage: Storage,
    *,
    dry_run: bool = False,
    ignore: frozenset[str] = frozenset(),
    now: float | None = None,
) -> GcReport:
    """Sweep unreferenced objects (see the module doc). With ``dry_run`` only
    count them, as if the backups in ``ignore`` were gone (those a prune would
    delete). Raise StorageError when the destination fails; a failed deletion
    is in the report's ``errors``."""
    now = time.time() if now is None else now
    report = GcReport()
    oldest = _running_since(storage, now)
    horizon = (now if oldest is None else min(now, oldest)) - SKEW
    mark: set[str] = set()
    for name in sorted(n for n in storage.children("") if is_backup_id(n)):
        if name in ignore:
            continue
        try:
            mark |= referenced(read_manifest(storage, name))
        except Incomplete:
            continue  # no manifest (yet): references nothing a restore could need
        except IntegrityError as e:
            report.refused = f"backup {name} has an unreadable manifest ({e.message[:200]})"
        except StorageError:
            continue  # deleted since the listing
    dropped = []
    for key, deleted_at, ids in _retired(storage):
        if oldest is not None and deleted_at >= oldest - SKEW:
            report.retired_kept.append(key[len(RETIRED) : -len(".json")])
            if ids is None and report.refused is None:
                # It may name any object, and a backup running may rely on them.
                report.refused = "a retired record that cannot be read may name objects in use"
            mark |= ids or set()
        else:
            dropped.append(key)
    if report.refused is None and oldest == 0.0:
        report.refused = "a lease that cannot be read may belong to a backup running"
    doomed = []
    for info in storage.list_objects(PREFIX):
        object_id = id_of_key(info.key)
        if object_id is None:
            continue
        if object_id in mark:
            report.kept += 1
        elif info.modified is None or info.modified >= horizon:
            report.spared += 1
        else:
            doomed.append(info.key)
            report.freed += info.size
    if report.refused is not None:
        report.spared += len(doomed)
        report.freed = 0
        return report
    report.swept = len(doomed)
    if dry_run:
        return report
    try:
        storage.delete(doomed)
        storage.delete(dropped)
        if oldest is None:
            storage.clean_partials(PREFIX, STALE_SPOOL)
    except StorageError as e:
        report.errors.append(f"could not delete unreferenced objects: {e.message}")
    return report
