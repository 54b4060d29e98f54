"""monctl restore refuses bad backups before touching anything (real engine, real volumes).

Each case damages a copy of a real backup in its own way — an incremental (format 2)
one, and a flat one as earlier versions wrote — and restore must exit 10 (or 130 when
not confirmed) and leave the live Grafana volume byte-for-byte as it was, with the
container never restarted.
"""

from __future__ import annotations

import hashlib
import io
import json
import shutil
import tarfile
from collections.abc import Callable
from pathlib import Path

import pytest
import zstandard
from support.data import explain, fingerprint, inspect
from support.engine import Stack
from support.flat import flat_backup

from monctl.adapters.storage.local import LocalStorage
from monctl.repository.manifest import read_manifest
from monctl.repository.objects import object_key

pytestmark = pytest.mark.docker


# Each damage gets the repository (a copy) and the backup's id. A flat (format-1) backup
# is one archive per service; a format-2 backup, its manifest and objects.


def _archive(repo: Path, backup_id: str) -> Path:
    return repo / backup_id / "grafana.tar.zst"


def _object(repo: Path, backup_id: str) -> Path:
    """The largest object Grafana's backup needs (its database, or the pack)."""
    files = read_manifest(LocalStorage(repo), backup_id).files("grafana")
    blob = max(files.blobs(), key=lambda b: b.ref.stored)
    return repo / object_key(blob.ref.id)


def _target(repo: Path, backup_id: str) -> Path:
    flat = _archive(repo, backup_id)
    return flat if flat.exists() else _object(repo, backup_id)


def _flip_byte(repo: Path, backup_id: str) -> None:
    path = _target(repo, backup_id)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    path.write_bytes(bytes(data))


def _truncate(repo: Path, backup_id: str) -> None:
    path = _target(repo, backup_id)
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _missing(repo: Path, backup_id: str) -> None:
    _target(repo, backup_id).unlink()


def _drop_manifest(repo: Path, backup_id: str) -> None:
    (repo / backup_id / "manifest.json").unlink()


def _traversal(repo: Path, backup_id: str) -> None:
    """A backup whose manifest agrees with its data, but whose data would land outside
    the data directory: hashes alone must not make it restorable."""
    manifest = json.loads((repo / backup_id / "manifest.json").read_text())
    if manifest["format_version"] == 1:
        # An archive matching its manifest exactly: only the tar check can catch it.
        raw = io.BytesIO()
        with tarfile.open(fileobj=raw, mode="w") as tar:
            for name in ("grafana/", "grafana/../../../etc/cron.d/evil"):
                info = tarfile.TarInfo(name.rstrip("/"))
                body = b"* * * * * root touch /pwned\n"
                if name.endswith("/"):
                    info.type = tarfile.DIRTYPE
                    tar.addfile(info)
                else:
                    info.size = len(body)
                    tar.addfile(info, io.BytesIO(body))
        stored = zstandard.ZstdCompressor().compress(raw.getvalue())
        _archive(repo, backup_id).write_bytes(stored)
        entry = manifest["services"]["grafana"]
        entry.update(size=len(stored), raw_size=len(raw.getvalue()),
                     sha256=hashlib.sha256(stored).hexdigest())  # fmt: skip
    else:
        # A file list naming a path that climbs out: its objects are all intact.
        entry = manifest["services"]["grafana"]["files"][-1]
        entry["path"] = "../../../etc/cron.d/evil"
    (repo / backup_id / "manifest.json").write_text(json.dumps(manifest))


DAMAGE: dict[str, Callable[[Path, str], None]] = {
    "corrupt": _flip_byte,
    "truncated": _truncate,
    "missing-data": _missing,
    "missing-manifest": _drop_manifest,
    "path-traversal": _traversal,
}


@pytest.fixture(scope="module")
def good_backups(data_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    """A repository holding a format-2 backup of Grafana (``monctl backup``) and a flat
    format-1 one (as earlier versions wrote): {"flat" | "incremental": the backup's dir}."""
    dest = tmp_path_factory.mktemp("restore-dest")
    result = data_stack.monctl("backup", "--json", "--to", str(dest), "--service", "grafana")
    assert result.code == 0, explain(result)
    flat_backup(data_stack, LocalStorage(dest), "20260101T020000Z", ("grafana",))
    return {"incremental": dest / json.loads(result.out)["id"], "flat": dest / "20260101T020000Z"}


@pytest.fixture(scope="module")
def good_backup(good_backups: dict[str, Path]) -> Path:
    return good_backups["incremental"]


@pytest.mark.parametrize("layout", ["incremental", "flat"])
@pytest.mark.parametrize("case", list(DAMAGE))
def test_restore_refuses_a_damaged_backup_and_touches_nothing(
    data_stack: Stack,
    good_backups: dict[str, Path],
    tmp_path: Path,
    case: str,
    layout: str,
) -> None:
    good = good_backups[layout]
    dest = tmp_path / "dest"
    shutil.copytree(good.parent, dest)
    DAMAGE[case](dest, good.name)
    before = fingerprint(data_stack, "grafana")
    started = inspect(data_stack, "grafana", "{{.State.StartedAt}}")

    result = data_stack.monctl("restore", good.name, "--from", str(dest), "--yes")

    if (layout, case) == ("incremental", "missing-manifest"):
        # A format-2 backup keeps nothing but its manifest under its id: without it,
        # there is no such backup (its objects are in objects/, shared).
        assert result.code == 8 and "no backup" in result.err, explain(result)
    else:
        assert result.code == 10, explain(result)
    assert "Traceback" not in result.err, result.err
    assert fingerprint(data_stack, "grafana") == before, "the live volume changed"
    assert inspect(data_stack, "grafana", "{{.State.StartedAt}}") == started, "grafana restarted"
    assert inspect(data_stack, "grafana", "{{.State.Status}}") == "running"


def test_restore_without_confirmation_changes_nothing(
    data_stack: Stack,
    good_backup: Path,
) -> None:
    dest = str(good_backup.parent)
    before = fingerprint(data_stack, "grafana")
    declined = data_stack.monctl("restore", good_backup.name, "--from", dest, input="n\n")
    no_stdin = data_stack.monctl("restore", good_backup.name, "--from", dest)  # stdin closed
    for result in (declined, no_stdin):
        assert result.code == 130, explain(result)
        assert "grafana_data" in result.err, "the question must name the volume"
    assert fingerprint(data_stack, "grafana") == before


def test_restore_of_a_missing_backup_is_a_storage_error(
    data_stack: Stack,
    good_backup: Path,
) -> None:
    result = data_stack.monctl("restore", "20000101T000000Z", "--from", str(good_backup.parent))
    assert result.code == 8, explain(result)
