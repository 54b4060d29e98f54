"""Reading documents from a destination: JSON parsed strictly, and a manifest's fields
checked one by one (``manifest_of``, called by ``Manifest.from_json``).

The one JSON reader for documents read from a destination (manifests, leases, retired
records): strict where Python's ``json`` is lenient.

A destination is written by whoever has write access to it, so its JSON is hostile until
checked. Python keeps the LAST of two equal keys (``{"path": "../x", "path": "a"}``) where
another reader may keep the first, and it accepts ``NaN``, ``Infinity`` and ``-Infinity``,
which are not JSON at all and break every bound a number is checked against. Both are
refused here, with a ValueError like any other malformed document.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from monctl.adapters.age_keys import MAX_RECIPIENTS  # pyrage-free: the bound, not age
from monctl.repository.archive import COMPRESSIONS
from monctl.repository.filelist import ServiceFiles, parse_service
from monctl.repository.manifest import (
    FORMAT_VERSION,
    Manifest,
    NewerFormat,
    ServiceData,
    ServiceEntry,
    archive_name,
    parse_backup_id,
    written_version,
)
from monctl.repository.objects import MODES

_SERVICE_RE = re.compile(r"^[a-z0-9][a-z0-9-]{0,62}$")
_DATA_ROOT_RE = re.compile(r"^[A-Za-z0-9_.][A-Za-z0-9_.-]{0,254}$")
MAX_FIELD = 1024  # no string of a manifest (an image reference, a version) is longer
_SHA256_RE = re.compile(r"^[0-9a-f]{64}$")
# Public keys a backup is encrypted to, as adapters.age records them (checked here
# without pyrage: list and prune need no extra).
_RECIPIENT_RE = re.compile(
    r"^(age1[qpzry9x8gf2tvdw0s3jn54khce6mua7l]{58}"
    r"|(ssh-ed25519|ssh-rsa) [A-Za-z0-9+/]{1,1000}={0,2})$"
)


class DuplicateKey(ValueError):
    """An object of the document names the same key twice."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(f"the key {key[:60]!r} appears twice in one object")
            seen.add(key)
    return doc


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(data: str | bytes | bytearray) -> Any:
    """``json.loads``, refusing duplicate keys and NaN/Infinity (ValueError; RecursionError
    for absurd nesting, UnicodeDecodeError (a ValueError) for bytes that are not UTF-8)."""
    import json

    return json.loads(data, object_pairs_hook=_pairs, parse_constant=_constant)


def manifest_of(obj: Any) -> Manifest:
    """The manifest ``obj`` (parsed JSON) describes, every field checked (TypeError,
    ValueError or NewerFormat saying what is wrong)."""
    if not isinstance(obj, Mapping):
        raise TypeError("not a JSON object")
    version = obj["format_version"]
    if not isinstance(version, int) or isinstance(version, bool) or version < 1:
        raise ValueError(f"bad format_version {str(version)[:20]!r}")
    if version > FORMAT_VERSION:
        raise NewerFormat(
            f"the manifest has format version {version}, newer than this monctl reads",
            hint="upgrade monctl to restore this backup",
        )
    backup_id = _str(obj, "backup_id")
    parse_backup_id(backup_id)
    compression = _str(obj, "compression")
    if compression not in (COMPRESSIONS if version == 1 else MODES):
        raise ValueError(f"unknown compression {compression!r}")
    services_obj = obj["services"]
    if not isinstance(services_obj, Mapping):
        raise TypeError("services is not an object")
    if not services_obj:
        raise ValueError("it holds no service")
    services: dict[str, ServiceData] = {}
    for name, e in services_obj.items():
        if not isinstance(name, str) or not _SERVICE_RE.match(name):
            raise ValueError(f"bad service name {str(name)[:40]!r}")
        if version >= 2:
            services[name] = parse_service(e, name, _str, _facts)
            continue
        if not isinstance(e, Mapping):
            raise TypeError(f"service {name}: not an object")
        entry = ServiceEntry(
            archive=_str(e, "archive"),
            image=_str(e, "image"),
            version=_opt_str(e, "version"),
            size=_count(e, "size"),
            raw_size=_count(e, "raw_size"),
            sha256=_str(e, "sha256"),
            strategy=_str(e, "strategy"),
            data_root=_str(e, "data_root"),
            facts=_facts(e, name),
        )
        if not _DATA_ROOT_RE.match(entry.data_root) or entry.data_root in (".", ".."):
            # restore puts the archive's top directory in place of the data path:
            # it must be one plain name, never "", "/", "." or a path.
            raise ValueError(f"service {name}: unusable data_root {entry.data_root[:40]!r}")
        if entry.archive != archive_name(name, compression):
            raise ValueError(f"service {name}: unexpected archive name {entry.archive!r}")
        if not _SHA256_RE.match(entry.sha256):
            raise ValueError(f"service {name}: bad sha256 {entry.sha256!r}")
        services[name] = entry
    recipients = _recipients(obj.get("encryption"), version)
    for name, data in services.items():
        if isinstance(data, ServiceFiles) and any(
            b.ref.encrypted != bool(recipients) for b in data.blobs()
        ):
            how = "unencrypted" if recipients else "encrypted"
            raise ValueError(f"service {name}: an {how} object in a backup that says otherwise")
    if version < 3 and written_version(services) == 3:
        raise ValueError(f"format {version} names every object by sha256, and an id_hash says not")
    return Manifest(
        recipients=recipients,
        format_version=version,
        backup_id=backup_id,
        monctl_version=_str(obj, "monctl_version"),
        started_at=_time(obj, "started_at"),
        finished_at=_time(obj, "finished_at"),
        compression=compression,
        services=services,
    )


def _recipients(encryption: Any, version: int) -> tuple[str, ...]:
    """The recipients of an ``encryption`` section (absent: not encrypted)."""
    if encryption is None:
        return ()
    if version < 2 or not isinstance(encryption, Mapping):
        raise ValueError("encryption is not an object of a format-2 manifest")
    if encryption.get("scheme") != "age":
        raise ValueError(f"unknown encryption {str(encryption.get('scheme'))[:20]!r}")
    found = encryption["recipients"]
    if not isinstance(found, list) or not 0 < len(found) <= MAX_RECIPIENTS:
        raise ValueError(f"encryption recipients is not a list of 1-{MAX_RECIPIENTS} keys")
    for item in found:
        if not isinstance(item, str) or not _RECIPIENT_RE.match(item):
            raise ValueError(f"encryption recipient {str(item)[:40]!r} is not a public key")
    return tuple(found)


def _facts(entry: Mapping[str, Any], service: str) -> dict[str, Any]:
    facts = entry.get("facts", {})
    if not isinstance(facts, Mapping):
        raise TypeError(f"service {service}: facts is not an object")
    return dict(facts)


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise TypeError(f"{key} is not a string")
    if len(value) > MAX_FIELD:
        raise ValueError(f"{key} is longer than {MAX_FIELD} characters")
    return value


def _opt_str(obj: Mapping[str, Any], key: str) -> str | None:
    return _str(obj, key) if obj.get(key) is not None else None


def _count(obj: Mapping[str, Any], key: str) -> int:
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
        raise ValueError(f"{key} is not an integer from 0 to 2^63")
    return value


def _time(obj: Mapping[str, Any], key: str) -> datetime:
    value = datetime.fromisoformat(_str(obj, key))
    if value.tzinfo is None:
        raise ValueError(f"{key} has no time zone")
    return value
