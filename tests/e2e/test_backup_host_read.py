"""A backup reads the held data from the volume's directory on this host (``host_read``:
monctl root, the engine local) and records exactly what the engine's archive would have
given: the same file list (names, kinds, modes, owners, times, links, sizes, hashes) and
the same objects, for a snapshot (Prometheus: hard links into the live blocks) and for a
paused service (Grafana, with a file of another owner and mode, symlinks, a hard link,
an empty directory of mode 0700).
"""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Any

import pytest
from support.data import explain, in_volume, load_blocks
from support.engine import Stack

from monctl.adapters.storage.local import LocalStorage
from monctl.repository.manifest import read_manifest

pytestmark = pytest.mark.docker

EXTRAS = (
    "cd /target && mkdir -p host-read/empty && chmod 700 host-read/empty"
    " && printf 'another owner' > host-read/owned && chown 1234:5678 host-read/owned"
    " && chmod 4640 host-read/owned && ln host-read/owned host-read/hard"
    " && ln -s owned host-read/link && ln -s no/such/file host-read/dangling"
    " && head -c 3000000 /dev/urandom > host-read/large && touch -d @1600000000 host-read/empty"
)


def backed_up(stack: Stack, dest: Path, **env: str) -> tuple[dict[str, Any], list[str]]:
    done = stack.monctl("backup", "--json", "--service", "prometheus", "--service", "grafana",
                        "--to", str(dest), env=env, timeout=600)  # fmt: skip
    assert done.code == 0, explain(done)
    doc = json.loads(done.out)
    notes = [n for s in doc["services"] for n in s.get("notes", [])]
    return read_manifest(LocalStorage(dest), doc["id"]).services, notes


def listed(services: dict[str, Any]) -> dict[str, list[tuple[Any, ...]]]:
    return {
        name: sorted(
            (
                *(e.path, e.kind, e.mode, e.uid, e.gid, e.mtime, e.size, e.sha256, e.link),
                e.blob.ref.id if e.blob else None,
            )
            for e in files.files
        )
        for name, files in services.items()
    }


def test_a_backup_read_on_the_host_records_what_the_engines_archive_gives(
    data_stack: Stack, tmp_path: Path
) -> None:
    stack = data_stack
    now = int(time.time())
    load_blocks(stack, tmp_path, now - 30 * 3600, now - 26 * 3600)
    found = in_volume(stack, "prometheus", "ls /target")
    loaded = {name for name in found.out.split() if name[:1] in "01234567" and len(name) == 26}
    assert loaded, found.out
    assert in_volume(stack, "grafana", EXTRAS).code == 0
    try:
        # Grafana is paused for each read and its database does not change meanwhile;
        # Prometheus' snapshots of the same moment hold the same blocks (its head moves:
        # only the persisted blocks are compared).
        direct, notes = backed_up(stack, tmp_path / "direct")
        engine, engine_notes = backed_up(stack, tmp_path / "engine", MONCTL_BACKUP_VIA="engine")
    finally:
        in_volume(stack, "grafana", "rm -rf /target/host-read")
    assert notes.count("read from the volume's directory") == 2, notes
    assert "read from the volume's directory" not in engine_notes
    ours, theirs = listed(direct), listed(engine)
    grafana = [row for row in ours["grafana"] if row[0].startswith("host-read")]
    assert grafana == [row for row in theirs["grafana"] if row[0].startswith("host-read")]
    kinds = {row[0]: row[1] for row in grafana}
    # The first name in order is the file, the other its hard link (as the engine writes).
    assert (kinds["host-read/hard"], kinds["host-read/owned"]) == ("file", "hardlink")
    assert kinds["host-read/link"] == "symlink" and kinds["host-read/empty"] == "dir"
    assert ours["grafana"] == theirs["grafana"]
    # The blocks loaded (promtool) are in both snapshots, unless compacted in between.
    tops = {r[0].split("/")[0] for r in ours["prometheus"]}
    both = loaded & tops & {r[0].split("/")[0] for r in theirs["prometheus"]}
    assert both, f"no loaded block in both snapshots: {sorted(tops)}"

    # Each snapshot makes its directories anew (their times differ), its files are links.
    def in_both(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
        return [r[:5] + r[6:] if r[1] == "dir" else r for r in rows if r[0].split("/")[0] in both]

    assert in_both(ours["prometheus"]) == in_both(theirs["prometheus"])
    kinds = {r[1] for r in ours["prometheus"] if r[0].split("/")[0] in both}
    assert kinds == {"dir", "file"}, kinds
