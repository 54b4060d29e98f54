"""monctl restore refuses bad backups before touching anything (real engine, real volumes).

Each case damages a copy of a real backup in its own way; restore must exit 10 (or 130
when not confirmed) and leave the live Grafana volume byte-for-byte as it was, with
the container never restarted.
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

pytestmark = pytest.mark.docker


def _flip_byte(d: Path) -> None:
    archive = d / "grafana.tar.zst"
    data = bytearray(archive.read_bytes())
    data[len(data) // 2] ^= 0xFF
    archive.write_bytes(bytes(data))


def _truncate(d: Path) -> None:
    archive = d / "grafana.tar.zst"
    archive.write_bytes(archive.read_bytes()[: archive.stat().st_size // 2])


def _drop_manifest(d: Path) -> None:
    (d / "manifest.json").unlink()


def _traversal(d: Path) -> None:
    """A well-formed archive whose manifest entry matches it exactly: only the tar
    check can catch the member that climbs out of the data directory."""
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
    (d / "grafana.tar.zst").write_bytes(stored)
    manifest = json.loads((d / "manifest.json").read_text())
    entry = manifest["services"]["grafana"]
    entry.update(size=len(stored), raw_size=len(raw.getvalue()),
                 sha256=hashlib.sha256(stored).hexdigest())  # fmt: skip
    (d / "manifest.json").write_text(json.dumps(manifest))


DAMAGE: dict[str, Callable[[Path], None]] = {
    "corrupt": _flip_byte,
    "truncated": _truncate,
    "missing-manifest": _drop_manifest,
    "path-traversal": _traversal,
}


@pytest.fixture(scope="module")
def good_backup(data_stack: Stack, tmp_path_factory: pytest.TempPathFactory) -> Path:
    dest = tmp_path_factory.mktemp("restore-dest")
    result = data_stack.monctl("backup", "--json", "--to", str(dest), "--service", "grafana")
    assert result.code == 0, explain(result)
    return dest / json.loads(result.out)["id"]


@pytest.mark.parametrize("case", list(DAMAGE))
def test_restore_refuses_a_damaged_backup_and_touches_nothing(
    data_stack: Stack,
    good_backup: Path,
    tmp_path: Path,
    case: str,
) -> None:
    dest = tmp_path / "dest"
    shutil.copytree(good_backup, dest / good_backup.name)
    DAMAGE[case](dest / good_backup.name)
    before = fingerprint(data_stack, "grafana")
    started = inspect(data_stack, "grafana", "{{.State.StartedAt}}")

    result = data_stack.monctl("restore", good_backup.name, "--from", str(dest), "--yes")

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
