"""`monctl backup export` of real backups of the running stack (the CLI as operators run it):
the system's tar, as root, gives back exactly the data that was in the volumes.

Grafana's volume gets what a volume may hold beside its database (a file of another
owner and mode, a symlink, a hard link, an empty directory of mode 0700); the volumes
are listed by a helper container (``support.data.in_volume``) before the backup, and
the extracted export is listed the same way on the host.
"""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
from support.age_keys import write_identity
from support.data import explain, in_volume
from support.engine import Stack

pytestmark = pytest.mark.docker

SERVICES = ("grafana", "alertmanager")
# Names, type, mode, owner, link count, size, mtime; link targets; contents.
LISTING = (
    "find . -mindepth 1 -exec stat -c '%n|%F|%a|%u:%g|%h|%s|%Y' {} + | sort"
    " && echo --- && find . -type l -printf '%p -> %l\\n' | sort"
    " && echo --- && find . -type f -exec sha256sum {} + | sort"
)
EXTRAS = (
    "cd /target && mkdir -p export-test/empty && chmod 700 export-test/empty"
    " && printf 'another owner' > export-test/owned && chown 1234:5678 export-test/owned"
    " && chmod 640 export-test/owned && ln export-test/owned export-test/hard"
    " && ln -s owned export-test/link && ln -s no/such/file export-test/dangling"
    " && touch -d @1600000000 export-test/empty"
)


def live(stack: Stack, service: str) -> str:
    result = in_volume(stack, service, f"cd /target && {LISTING}")
    assert result.code == 0, result.err
    return result.out


def extracted(root: Path) -> str:
    done = subprocess.run(["sh", "-c", LISTING], cwd=root, capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    return done.stdout


def test_an_export_extracted_by_tar_is_the_data_that_was_backed_up(
    data_stack: Stack, tmp_path: Path
) -> None:
    stack = data_stack
    assert in_volume(stack, "grafana", EXTRAS).code == 0
    try:
        recipient = write_identity(tmp_path / "backup.key")
        per_service = [a for s in SERVICES for a in ("--service", s)]
        dest = str(tmp_path / "repo")
        before = {s: live(stack, s) for s in SERVICES}
        assert "./export-test/link -> owned" in before["grafana"]
        ids = {}
        for label, extra in (("plain", ()), ("encrypted", ("--encrypt-to", recipient))):
            made = stack.monctl("backup", "--to", dest, *per_service, *extra, "--json",
                                timeout=600)  # fmt: skip
            assert made.code == 0, explain(made)
            ids[label] = json.loads(made.out)["id"]
        if {s: live(stack, s) for s in SERVICES} != before:
            pytest.skip("a service changed its data during the backups: nothing to compare")

        key = ("--identity", str(tmp_path / "backup.key"))
        for label, backup_id in ids.items():
            out = tmp_path / f"{label}.tar.zst"
            done = stack.monctl("backup", "export", backup_id, "--from", dest, "-o", str(out),
                                "--json", *(key if label == "encrypted" else ()))  # fmt: skip
            assert done.code == 0, explain(done)
            doc = json.loads(done.out)
            assert doc["output"] == str(out) and doc["bytes"] == out.stat().st_size
            assert sorted(s["service"] for s in doc["services"]) == sorted(SERVICES)
            into = tmp_path / label
            into.mkdir()
            untar = subprocess.run(
                ["tar", "--zstd", "-x", "--numeric-owner", "--same-owner", "-p",
                 "-f", str(out), "-C", str(into)],
                capture_output=True, text=True,
            )  # fmt: skip
            assert untar.returncode == 0, untar.stderr
            for service in SERVICES:
                assert extracted(into / service) == before[service], (label, service)

        # Without the key, the encrypted one is refused and nothing is written.
        refused = stack.monctl("backup", "export", ids["encrypted"], "--from", dest,
                               "-o", str(tmp_path / "no.tar"))  # fmt: skip
        assert refused.code == 10 and not (tmp_path / "no.tar").exists(), explain(refused)
    finally:
        in_volume(stack, "grafana", "rm -rf /target/export-test")
