"""Format-2 manifests are parsed as strictly as format 1: a manifest from outside that
passes cannot make a restore write outside the data directory, nor claim what it lacks."""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from monctl.errors import IntegrityError
from monctl.repository.filelist import ServiceFiles
from monctl.repository.manifest import Manifest

SHA = "ab" * 32
OBJ = "cd" * 32
PACK = "ef" * 32


def _file(path: str, size: int = 10, **extra: Any) -> dict[str, Any]:
    return {
        "path": path,
        "type": "file",
        "mode": 0o644,
        "uid": 1,
        "gid": 1,
        "mtime": 5,
        "size": size,
        "sha256": SHA,
        **extra,
    }


def _valid() -> dict[str, Any]:
    return {
        "format_version": 2,
        "backup_id": "20261126T020000Z",
        "monctl_version": "0.2.0",
        "started_at": "2026-11-26T02:00:00+00:00",
        "finished_at": "2026-11-26T02:01:00+00:00",
        "compression": "auto",
        "services": {
            "prometheus": {
                "image": "prom/prometheus:v3",
                "version": "3.15.0",
                "strategy": "snapshot",
                "pack": {"object": PACK, "stored": 8, "codec": "zstd", "size": 10, "sha256": SHA},
                "stats": {
                    "read_bytes": 1,
                    "written_bytes": 1,
                    "new_objects": 1,
                    "reused_objects": 0,
                    "reused_bytes": 0,
                },
                "files": [
                    {"path": "B1", "type": "dir", "mode": 0o755, "uid": 1, "gid": 1, "mtime": 5},
                    _file("B1/index", 100, object=OBJ, stored=50, codec="zstd"),
                    _file("B1/meta.json"),  # packed
                    {
                        "path": "B1/link",
                        "type": "symlink",
                        "mode": 0o777,
                        "uid": 1,
                        "gid": 1,
                        "mtime": 5,
                        "link": "meta.json",
                    },
                    {
                        "path": "B1/hard",
                        "type": "hardlink",
                        "mode": 0o644,
                        "uid": 1,
                        "gid": 1,
                        "mtime": 5,
                        "link": "B1/index",
                    },
                    _file("top/level/deep.txt", 0),  # parents made on the way, as tar does
                ],
            }
        },
    }


def _files(m: dict[str, Any]) -> list[dict[str, Any]]:
    return m["services"]["prometheus"]["files"]  # type: ignore[no-any-return]


def test_a_valid_manifest_round_trips() -> None:
    m = Manifest.from_json(json.dumps(_valid()))
    files = m.files("prometheus")
    assert isinstance(files, ServiceFiles) and len(files.files) == 6
    assert files.raw_size == 110 and files.stored_size == 8 + 50
    assert Manifest.from_json(m.dumps()) == m
    assert m.total_size == 58


DAMAGE = {
    "dot-dot": lambda m: _files(m).append(_file("B1/../../etc/cron.d/x")),
    "absolute": lambda m: _files(m).append(_file("/etc/passwd")),
    "empty path": lambda m: _files(m).append(_file("")),
    "dot component": lambda m: _files(m).append(_file("B1/./x")),
    "double slash": lambda m: _files(m).append(_file("B1//x")),
    "NUL": lambda m: _files(m).append(_file("B1/x\0y")),
    "too long": lambda m: _files(m).append(_file("a" * 5000)),
    "twice": lambda m: _files(m).append(_file("B1/meta.json")),
    "below a file": lambda m: _files(m).append(_file("B1/meta.json/x", 0)),
    "below a symlink": lambda m: _files(m).append(_file("B1/link/x", 0)),
    "symlink up": lambda m: _files(m)[3].update(link="../../etc"),
    "symlink absolute": lambda m: _files(m)[3].update(link="/etc"),
    "hard link to nothing": lambda m: _files(m)[4].update(link="B1/nothing"),
    "hard link forward": lambda m: _files(m).insert(1, _files(m).pop(4)),
    "unknown type": lambda m: _files(m)[0].update(type="fifo"),
    "bad sha": lambda m: _files(m)[2].update(sha256="xyz"),
    "bad object id": lambda m: _files(m)[1].update(object="../../etc"),
    "unknown codec": lambda m: _files(m)[1].update(codec="lzma"),
    "negative size": lambda m: _files(m)[1].update(size=-1),
    "bool size": lambda m: _files(m)[1].update(size=True),
    "mode too big": lambda m: _files(m)[0].update(mode=0o77777),
    "uid too big": lambda m: _files(m)[0].update(uid=2**40),
    "pack size wrong": lambda m: m["services"]["prometheus"]["pack"].update(size=11),
    "pack missing for packed files": lambda m: m["services"]["prometheus"].update(pack=None),
    "files not a list": lambda m: m["services"]["prometheus"].update(files={}),
    "no stats": lambda m: m["services"]["prometheus"].pop("stats"),
    "compression of format 1 only": lambda m: m.update(compression="lzma"),
}


@pytest.mark.parametrize("case", list(DAMAGE))
def test_malformed_format_2_manifests_are_integrity_errors(case: str) -> None:
    m = copy.deepcopy(_valid())
    DAMAGE[case](m)
    with pytest.raises(IntegrityError, match="manifest"):
        Manifest.from_json(json.dumps(m))


def test_a_newer_format_asks_for_an_upgrade() -> None:
    with pytest.raises(IntegrityError, match="newer") as err:
        Manifest.from_json(json.dumps({**_valid(), "format_version": 4}))
    assert "upgrade" in (err.value.hint or "")
