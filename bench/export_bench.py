#!/usr/bin/env python3
"""`monctl backup export` speed and memory, against the read a restore makes of the same backup.

A data directory of --size MiB (files of 1-8 MiB of random bytes, the way TSDB chunk
segments are: own objects, stored as they are; and a few hundred small compressible
files: the pack) is backed up by monctl's real pipeline (the engine's archive API
stood in for by a tar of the directory: support.tree_runtime), plain and to an age1 key.
Then, warm page cache, for each backup:

  restore read   restore_stream.assembled() drained in process: every object read,
                 decrypted, hashed and checked, the tar stream a restore extracts made
                 (THE figure export is judged against)
  export -       monctl backup export ID -o - > /dev/null (the CLI, start-up included)
  startup        monctl backup list (the CLI's start-up and a manifest read, for scale)
  export FILE    monctl backup export ID -o FILE.tar (written, fsynced, renamed)
  export .zst    monctl backup export ID -o FILE.tar.zst

with wall time and the CLI's peak RSS (wait4's ru_maxrss). Memory must not grow with
the size: run two sizes to see it (--sizes 64,512).

    python bench/export_bench.py [--sizes 256] [--runs 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))
sys.path.insert(0, str(REPO))

from support import repo  # noqa: E402
from support.age_keys import write_identity  # noqa: E402
from support.tree_runtime import TreeRuntime  # noqa: E402

from monctl.adapters import age  # noqa: E402
from monctl.adapters.storage.local import LocalStorage  # noqa: E402
from monctl.backup import create  # noqa: E402
from monctl.backup.restore_stream import assembled  # noqa: E402
from monctl.repository.manifest import read_manifest  # noqa: E402

MiB = 1024 * 1024
TARGETS = (("export -", "-"), ("export FILE", "x.tar"), ("export .zst", "x.tar.zst"))
LOKI = dataclasses.replace(
    repo.LEDGER,
    name="loki",
    data=dataclasses.replace(repo.LEDGER.data, path="/loki"),  # type: ignore[arg-type]
)


def fill(root: Path, size: int) -> None:
    root.mkdir(parents=True)
    written, n = 0, 0
    while written < size:
        chunk = os.urandom(min(MiB * (1 + n % 8), size - written))
        path = root / f"chunks/{n // 50:03d}/{n:06d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(chunk)
        written, n = written + len(chunk), n + 1
    for i in range(300):
        (root / f"index/{i // 100}").mkdir(parents=True, exist_ok=True)
        (root / f"index/{i // 100}/{i:04d}.json").write_bytes(b'{"series": %d}\n' % i * 200)


def cli(project: Path, work: Path, *args: str, out: int) -> tuple[float, int]:
    """(wall seconds, peak RSS bytes) of one monctl run. The RSS is GNU time's: a child's
    own ru_maxrss counts the pages of this (large) process it was forked from."""
    started = time.perf_counter()
    argv = [sys.executable, "-m", "monctl", "--project-dir", str(project), *args]
    done = subprocess.run(
        ["/usr/bin/time", "-f", "%M", "-o", str(work / "rss"), *argv],
        stdout=out,
        stderr=subprocess.PIPE,
    )
    wall = time.perf_counter() - started
    if done.returncode != 0:
        sys.exit(f"monctl {' '.join(args)} failed: {done.stderr.decode()}")
    return wall, int((work / "rss").read_text().split()[-1]) * 1024


def restore_read(storage: LocalStorage, backup_id: str, identities: age.Identities | None) -> float:
    files = read_manifest(storage, backup_id).files("loki")
    assert LOKI.data is not None
    started = time.perf_counter()
    for _ in assembled(storage, files, LOKI.data, identities):
        pass
    return time.perf_counter() - started


def bench(size_mib: int, runs: int, work: Path) -> None:
    live = work / f"live-{size_mib}"
    fill(live, size_mib * MiB)
    project = repo.project(work / "stack")
    storage = LocalStorage(work / f"repo-{size_mib}")
    key = work / "key.txt"
    recipient = write_identity(key)
    rt = TreeRuntime({"loki": live})
    plain = create.run(project, rt, storage, (LOKI,)).backup_id
    time.sleep(1.1)  # ids are per second
    sealed = create.run(project, rt, storage, (LOKI,), recipients=(recipient,)).backup_id
    identities = age.load_identities([key])
    print(f"\n{size_mib} MiB ({sum(1 for _ in live.rglob('*'))} entries), medians of {runs}:")
    print(f"{'backup':<10} {'what':<14} {'seconds':>8} {'MiB/s':>7} {'vs restore':>10} {'RSS':>8}")
    for label, backup_id, ids in (("plain", plain, None), ("encrypted", sealed, identities)):
        keyed = ("--identity", str(key)) if ids is not None else ()
        base = statistics.median(restore_read(storage, backup_id, ids) for _ in range(runs))
        print(f"{label:<10} {'restore read':<14} {base:>8.2f} {size_mib / base:>7.0f}")
        with open(os.devnull, "wb") as null:
            start, _ = cli(project.root, work, "backup", "list", "--from", str(storage.root),
                           out=null.fileno())  # fmt: skip
        print(f"{label:<10} {'startup':<14} {start:>8.2f}")
        for what, target in TARGETS:
            walls, rss = [], 0
            for _ in range(runs):
                dest = "-" if target == "-" else str(work / target)
                with open(os.devnull, "wb") as null:
                    argv = ("export", backup_id, "--from", str(storage.root), "-o", dest, *keyed)
                    wall, peak = cli(project.root, work, "backup", *argv, out=null.fileno())
                walls.append(wall)
                rss = max(rss, peak)
            wall = statistics.median(walls)
            print(f"{label:<10} {what:<14} {wall:>8.2f} {size_mib / wall:>7.0f} "
                  f"{wall / base:>9.2f}x {rss / MiB:>6.0f}MiB")  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default="256", help="MiB, comma-separated")
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="export-bench-") as tmp:
        for size in (int(s) for s in args.sizes.split(",")):
            bench(size, args.runs, Path(tmp))


if __name__ == "__main__":
    main()
