#!/usr/bin/env python3
"""Restore speed against the tools an operator would use instead (issue 21), side by side.

For each size (GiB) a Prometheus data volume is filled with real TSDB blocks (as
backup_bench.py fills it: promtool's blocks copied under fresh ULIDs), Prometheus is
started, and each tool makes its first backup of it: monctl (`monctl backup --service
prometheus`: as root here, it reads the snapshot from the volume's directory), restic
(`restic backup <volume's directory>`) and borg (`borg create` in it, unencrypted: borg's
fastest). Then each restores it, as an operator does with
that tool, timed from the command to Prometheus answering /-/ready again:

  restic   docker stop; empty the volume's directory; restic restore latest --target /;
           chown -R 65534:65534; docker start; wait until ready
  borg     the same with `borg extract` inside the volume's directory
  monctl   monctl restore ID --service prometheus --yes  (checked while written, one
           write beside the live data, flushed to disk, stop, swap by renames, start,
           wait until ready)
  today    the same with MONCTL_RESTORE_VIA=engine: the engine path, as restore was
           before (verify everything, stage through the archive API, refill the live
           volume through it while the service is stopped)

Each tool's repository is read once right before its restore, and the volume once
right before each backup (a warm page cache for all: at 4 GiB five copies of the data do
not all stay cached, and borg drops what it reads from the cache), and the page cache is
written back (`sync`, untimed) before every timed backup and restore: no tool pays for
the writeback of what the one before it wrote (at 4 GiB, gigabytes of dirty pages a few
seconds old, which the kernel's dirty limits would make the next writer wait for; a
peer that empties the volume first even cancels its own share). No repository is removed
between timed backups (see DELETED_WINDOW). A thread polls /-/ready
every 50 ms during each restore: "down" is the longest time
Prometheus did not answer ready (the downtime an operator sees).

    python bench/restore_bench.py [--sizes 1,4] [--runs 3] [--no-today] [--quick] [--keep] [--json]

With --runs N every first backup (monctl, restic, borg, then again, each into a new
repository) and every restore (restic, borg, monctl, today, then again) is timed N
times in turn, and the medians are printed (each run's figures are in --json).

Needs root, a local Docker engine, the test images (tests/images/build.sh), promtool,
restic and borg (Debian: apt-get install restic borgbackup).
"""

from __future__ import annotations

import argparse
import base64
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
import urllib.request
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from backup_bench import (
    GiB,
    base_blocks,
    dir_size,
    fill_volume,
    host_path,
    need_engine,
    quiet_stack,
    sh,
    timed,
)
from support.engine import Stack, make_stack

Row = dict[str, float]
PEER_ENV = {"RESTIC_PASSWORD": "bench", "BORG_UNKNOWN_UNENCRYPTED_REPO_ACCESS_IS_OK": "yes"}


class Readiness:
    """Polls Prometheus's /-/ready while a restore runs: the longest time it was not ready."""

    def __init__(self, stack: Stack) -> None:
        user, password = stack.basic_auth()
        token = base64.b64encode(f"{user}:{password}".encode()).decode()
        self.request = urllib.request.Request(
            f"{stack.url('prometheus')}/-/ready", headers={"Authorization": f"Basic {token}"}
        )
        self.longest = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def ready(self) -> bool:
        try:
            with urllib.request.urlopen(self.request, timeout=1) as answer:
                return bool(answer.status == 200)
        except OSError:
            return False

    def _run(self) -> None:
        down_since: float | None = None
        while not self._stop.is_set():
            now = time.perf_counter()
            if self.ready():
                if down_since is not None:
                    self.longest = max(self.longest, now - down_since)
                down_since = None
            elif down_since is None:
                down_since = now
            time.sleep(0.05)
        if down_since is not None:
            self.longest = max(self.longest, time.perf_counter() - down_since)

    def __enter__(self) -> Readiness:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()

    def wait(self, timeout: float = 300) -> None:
        deadline = time.monotonic() + timeout
        while not self.ready():
            if time.monotonic() > deadline:
                raise SystemExit("Prometheus did not become ready")
            time.sleep(0.02)


# After a file system without a journal (ext4 made so, as on the reference VM: nothing in
# /proc/fs/jbd2) deletes files, it skips their inodes one by one when it makes new files
# (ext4's recently_deleted): for 60 s, and for 360 s once a file made beside them has
# dirtied their inode table block again. A tool that makes a thousand files then pays
# ~0.5 s of system CPU more: monctl (one file per object) did in the runs after a
# repository was removed, the peers (a few large files) did not, and an operator's nightly
# backup follows no such deletion. So no repository is removed between timed backups, and
# the first starts this long after the bench last removed anything.
DELETED_WINDOW = 370.0
_last_deletion = [0.0]  # time.monotonic() of the bench's last removal of many files


def deleted() -> None:
    _last_deletion[0] = time.monotonic()


def settled() -> None:
    """Wait until the bench's last removal is DELETED_WINDOW old."""
    wait = _last_deletion[0] + DELETED_WINDOW - time.monotonic()
    if _last_deletion[0] and wait > 0:
        print(f"waiting {wait:.0f} s for the file system to settle (DELETED_WINDOW)",
              file=sys.stderr, flush=True)  # fmt: skip
        time.sleep(wait)


def as_operated(stack: Stack, data: Path, extract: list[str], cwd: Path | None) -> float:
    """Wall seconds of an operator's restore with a peer tool (see the docstring)."""
    labels = [f"label=com.docker.compose.project={stack.project_name}",
              "label=com.docker.compose.service=prometheus"]  # fmt: skip
    container = sh(["docker", "ps", "-aq", "--filter", labels[0], "--filter", labels[1]])
    container_ids = container.stdout.split()
    probe = Readiness(stack)
    started = time.perf_counter()
    sh(["docker", "stop", *container_ids])
    sh(["find", str(data), "-mindepth", "1", "-delete"])
    subprocess.run(extract, check=True, cwd=cwd, env={**os.environ, **PEER_ENV},
                   stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)  # fmt: skip
    sh(["chown", "-R", "65534:65534", str(data)])
    sh(["docker", "start", *container_ids])
    probe.wait()
    return time.perf_counter() - started


def warm(repository: Path) -> None:
    """Read a repository (or the volume) once: every tool restores (backs up) from a warm
    page cache. At 4 GiB five copies of the data do not all stay cached, and the oldest
    would be cold; and borg drops the files it reads from the cache as it goes
    (posix_fadvise DONTNEED): monctl, which came next, read the volume from disk in every
    run but the first (1.99-2.02 s against 1.34 s; the peers never did)."""
    sh(["bash", "-c", 'find "$1" -type f -exec cat {} + > /dev/null', "warm", str(repository)])


def measured(
    stack: Stack, key: str, row: Row, run: Callable[[], float], repository: Path, i: int
) -> None:
    warm(repository)
    os.sync()
    with Readiness(stack) as probe:
        row[f"{key}#{i}"] = run()
    row[f"{key}_down#{i}"] = probe.longest


def medians(row: Row) -> None:
    """``key`` = the median of every ``key#i``."""
    runs: dict[str, list[float]] = {}
    for name, value in row.items():
        if "#" in name:
            runs.setdefault(name.split("#")[0], []).append(value)
    for name, values in runs.items():
        row[name] = statistics.median(values)


def bench_size(size_gib: float, work: Path, base: Path, keep: bool, runs: int, today: bool) -> Row:
    stack = make_stack(work / f"stack-{size_gib:g}")
    quiet_stack(stack)
    metas = work / f"metas-{size_gib:g}"
    metas.mkdir()
    image = stack.overrides["PROMETHEUS_IMAGE"]
    volume = f"{stack.project_name}_prometheus_data"
    env = stack.process_env()
    monctl = [sys.executable, "-m", "monctl", "--project-dir", str(stack.root),
              "--project-name", stack.project_name]  # fmt: skip
    dest, restic_repo, borg_repo = (work / f"{n}-{size_gib:g}" for n in ("dest", "restic", "borg"))
    peer_env = {**os.environ, **PEER_ENV}
    row: Row = {}
    try:
        sh(["docker", "volume", "create", "--label",
            f"com.docker.compose.project={stack.project_name}", volume])  # fmt: skip
        row["gib"] = fill_volume(volume, image, base, int(size_gib * GiB), metas) / GiB
        data = host_path(volume)
        if data is None:
            raise SystemExit("the volume's directory is not readable here: run as root")
        sh([*monctl, "up", "prometheus", "--timeout", "300"], env=env, timeout=600)
        out = work / "backup.json"
        settled()
        for i in range(runs):  # each tool's first backup, in turn; the first run's are restored
            again = tuple(work / f"again-{n}-{i}" for n in ("monctl", "restic", "borg"))
            repos = (dest, restic_repo, borg_repo) if i == 0 else again
            warm(data)  # borg drops what it read from the cache: the next tool would read disk
            os.sync()
            with out.open("wb") as fh:
                argv = [*monctl, "backup", "--json", "--service", "prometheus",
                        "--to", str(repos[0])]  # fmt: skip
                row[f"backup_monctl#{i}"], _ = timed(argv, stdout=fh, env=env)
            if i == 0:
                backup_id = json.loads(out.read_text())["id"]
            sh(["restic", "-r", str(repos[1]), "init"], env=peer_env)
            warm(data)
            os.sync()
            row[f"backup_restic#{i}"], _ = timed(["restic", "-r", str(repos[1]), "backup", "-q",
                                                  str(data)], env=peer_env)  # fmt: skip
            sh(["borg", "init", "-e", "none", str(repos[2])], env=peer_env)
            warm(data)
            os.sync()
            started = time.perf_counter()
            subprocess.run(["borg", "create", f"{repos[2]}::a", "."], cwd=data, env=peer_env,
                           check=True)  # fmt: skip
            row[f"backup_borg#{i}"] = time.perf_counter() - started
            print(f"{row['gib']:.2f} GiB first backup {i + 1}: " + ", ".join(
                f"{k} {row[f'backup_{k}#{i}']:.2f} s" for k in ("monctl", "restic", "borg")),
                  f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)  # fmt: skip
        for n in range(1, runs):  # kept until every backup was timed (DELETED_WINDOW)
            for path in work.glob(f"again-*-{n}"):
                shutil.rmtree(path)
            deleted()
        restic = ["restic", "-r", str(restic_repo), "restore", "latest", "--target", "/"]
        borg = ["borg", "extract", f"{borg_repo}::a"]
        argv = [*monctl, "restore", backup_id, "--service", "prometheus", "--yes",
                "--from", str(dest)]  # fmt: skip
        ours = [("monctl", {})] + ([("today", {"MONCTL_RESTORE_VIA": "engine"})] if today else [])
        for i in range(runs):
            measured(stack, "restic", row, lambda: as_operated(stack, data, restic, None),
                     restic_repo, i)  # fmt: skip
            measured(stack, "borg", row, lambda: as_operated(stack, data, borg, data), borg_repo, i)
            for key, extra in ours:
                with (work / f"{key}.out").open("wb") as fh:
                    measured(stack, key, row,
                             lambda fh=fh, e=extra: timed(argv, stdout=fh, env={**env, **e})[0],  # type: ignore[misc]
                             dest, i)  # fmt: skip
                doc = (work / f"{key}.out").read_text()
                assert "restored" in doc, doc
            print(f"{row['gib']:.2f} GiB run {i + 1}: " + ", ".join(
                f"{k} {row[f'{k}#{i}']:.2f} s" for k in ("restic", "borg", *dict(ours))),
                  f"(load {os.getloadavg()[0]:.1f})", file=sys.stderr, flush=True)  # fmt: skip
        medians(row)
        row["restored_gib"] = dir_size(data) / GiB
        return row
    finally:
        if not keep:
            stack.teardown()
            subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True,
                           check=False)  # fmt: skip
            for path in (dest, restic_repo, borg_repo, *work.glob("again-*")):
                shutil.rmtree(path, ignore_errors=True)
            deleted()


def report(rows: list[Row]) -> None:
    nan = float("nan")
    print("wall time (s), and the longest time Prometheus was not ready during each restore:")
    print(f"{'volume':>8} | {'backup: monctl':>14} {'restic':>7} {'borg':>7} | "
          f"{'restore: monctl':>15} {'restic':>7} {'borg':>7} {'today':>7} | "
          f"{'down: monctl':>12} {'restic':>7} {'borg':>7} {'today':>7}")  # fmt: skip
    for r in rows:
        print(f"{r['gib']:>6.2f}Gi | {r['backup_monctl']:>14.2f} {r['backup_restic']:>7.2f} "
              f"{r['backup_borg']:>7.2f} | {r['monctl']:>15.2f} {r['restic']:>7.2f} "
              f"{r['borg']:>7.2f} {r.get('today', nan):>7.2f} | {r['monctl_down']:>12.2f} "
              f"{r['restic_down']:>7.2f} {r['borg_down']:>7.2f} "
              f"{r.get('today_down', nan):>7.2f}")  # fmt: skip
    print("ratios (goal):")
    print(f"{'volume':>8} {'restore/faster peer':>20} {'restore/today':>14} "
          f"{'1st backup/faster peer':>23}")  # fmt: skip
    print(f"{'':>8} {'<=1.0x':>20} {'':>14} {'<=0.5x':>23}")
    for r in rows:
        peer = min(r["restic"], r["borg"])
        peer_backup = min(r["backup_restic"], r["backup_borg"])
        print(f"{r['gib']:>6.2f}Gi {r['monctl'] / peer:>19.2f}x "
              f"{r['monctl'] / r.get('today', nan):>13.2f}x "
              f"{r['backup_monctl'] / peer_backup:>22.2f}x")  # fmt: skip


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,4", help="volume sizes in GiB, comma-separated")
    ap.add_argument(
        "--runs", type=int, default=1, help="time every first backup and restore this many times"
    )
    ap.add_argument("--no-today", action="store_true", help="skip the engine path (slow)")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 0.05 GiB")
    ap.add_argument("--keep", action="store_true", help="keep stacks, volumes and repositories")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args()
    need_engine("restore_bench")
    for tool in ("restic", "borg"):
        if not shutil.which(tool):
            raise SystemExit(f"restore_bench: {tool} is not installed (apt-get install "
                             "restic borgbackup)")  # fmt: skip
    sizes = [0.05] if args.quick else sorted(float(s) for s in args.sizes.split(","))
    work = Path(tempfile.mkdtemp(prefix="monctl-restore-bench-"))
    rows: list[Row] = []
    deleted()  # whatever was removed just before the bench (the teardown of another run)
    try:
        base = base_blocks(work, series=100 if args.quick else 1000)
        for size in sizes:
            rows.append(bench_size(size, work, base, args.keep, args.runs, not args.no_today))
            print(json.dumps(rows[-1]), file=sys.stderr)  # kept should a later size fail
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(rows)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
