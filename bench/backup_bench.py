#!/usr/bin/env python3
"""Backup speed and memory: monctl backup vs the replaced script's `tar czf` vs uncompressed reads.

For each size (GiB) a Prometheus data volume is filled with real TSDB blocks: promtool
(`tsdb create-blocks-from openmetrics`) writes a base set of 2-hour blocks from a
generated OpenMetrics file (random gauge values: close to the worst case for the
TSDB's own compression), and the base set is copied under fresh block ids until the
volume holds the size. Then, on the same volume (all reads are warm page-cache reads):

  api read   docker cp READER:/prometheus - > /dev/null       THE floor the goal is judged on
  host tar   tar cf - -C <volume mountpoint> . | cat > /dev/null
  run tar    docker run --rm -v VOL:/data IMAGE tar cf - -C /data .  > /dev/null
  tar czf    docker run --rm -v VOL:/data IMAGE tar czf - -C /data . > file (the old script)
  monctl     monctl backup --service prometheus --to DIR      (snapshot, zstd, sha256)

with wall time and monctl's peak RSS (wait4's ru_maxrss). READER is a created, never
started container of the Prometheus image mounting the volume: `docker cp` reads it
through Docker's archive API, the path monctl's bytes take, so monctl / api read is
monctl's own cost (compression, hashing, writing, Python). "run tar" is the issue's
literal floor; its bytes go through the container's attached stdout stream, which is
slower than monctl itself, so it is printed but judges nothing. Host tar pipes through
cat because GNU tar skips reading file data when its archive is /dev/null.

Baselines run while Prometheus is stopped; monctl runs right after Prometheus starts
(before its first compaction, which would rewrite the overlapping copies). Bounded run:
from the first size's figures the time of each larger size is estimated; over
--budget minutes, that size measures only monctl and the api read (the rest print "-").

    python bench/backup_bench.py [--sizes 1,4] [--budget 25] [--quick] [--keep] [--json]

Needs a Docker engine, the test images (tests/images/build.sh) and promtool.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import secrets
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO / "tests"))

from docker_support import make_stack  # noqa: E402

GiB = 1024**3
STEP = 15  # seconds between samples, like a scrape interval
WINDOWS = 8  # 2-hour blocks in the base set
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Through cat: GNU tar does not read file data at all when its archive is /dev/null.
HOST_TAR = 'set -o pipefail; tar cf - -C "$1" . | cat > /dev/null'
PHASES = ("fill", "api", "host", "run", "gz", "up", "ours")  # timed steps of one size
Row = dict[str, float]  # one size's figures ("full" is 1.0 / 0.0: every column or not)


def sh(argv: list[str], **kw: object) -> subprocess.CompletedProcess[str]:
    return subprocess.run(argv, check=True, text=True, capture_output=True, **kw)  # type: ignore[call-overload,no-any-return]


def ulid() -> str:
    ms = int(time.time() * 1000)
    head = "".join(CROCKFORD[(ms >> (5 * i)) & 31] for i in reversed(range(10)))
    return head + "".join(secrets.choice(CROCKFORD) for _ in range(16))


def base_blocks(work: Path, series: int) -> Path:
    """Real TSDB blocks from promtool: ``series`` series over WINDOWS 2-hour windows."""
    om = work / "bench.om"
    end = (int(time.time()) // 7200 - 2) * 7200
    start = end - WINDOWS * 7200
    rnd = random.Random(42)
    with om.open("w", encoding="utf-8") as fh:
        fh.write("# TYPE bench_value gauge\n")
        for t in range(start, end, STEP):
            fh.writelines(
                f'bench_value{{series="{i}",job="bench"}} {rnd.random() * 1e6:.6f} {t}\n'
                for i in range(series)
            )
        fh.write("# EOF\n")
    out = work / "blocks"
    out.mkdir()
    sh(["promtool", "tsdb", "create-blocks-from", "openmetrics", str(om), str(out)])
    om.unlink()
    return out


def dir_size(path: Path) -> int:
    return sum(f.stat().st_size for f in path.rglob("*") if f.is_file())


def fill_volume(volume: str, image: str, base: Path, target: int) -> int:
    """Copy the base blocks under new ids into ``volume`` until it holds ``target`` bytes."""
    per_copy = dir_size(base)
    copies = max(1, -(-target // per_copy))
    script = ["set -e"]
    for _ in range(copies):
        for block in sorted(p.name for p in base.iterdir() if p.is_dir()):
            new = ulid()
            script.append(f"cp -a /src/{block} /data/{new}")
            script.append(
                f'sed -i \'s/"ulid": *"[0-9A-Z]*"/"ulid": "{new}"/\' /data/{new}/meta.json'
            )
    script.append("chown -R 65534:65534 /data")
    # On stdin: at 4 GiB the script outgrows the kernel's limit for one argument (128 KiB).
    sh(["docker", "run", "--rm", "-i", "--user", "0", "--entrypoint", "sh", "-v", f"{volume}:/data",
        "-v", f"{base}:/src:ro", image, "-s"], input="\n".join(script) + "\n",
       timeout=3600)  # fmt: skip
    return copies * per_copy


def timed(
    argv: list[str], stdout: int | object = subprocess.DEVNULL, env: dict[str, str] | None = None
) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of one process run to completion."""
    started = time.perf_counter()
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=env)  # type: ignore[arg-type]
    _, status, usage = os.wait4(proc.pid, 0)
    wall = time.perf_counter() - started
    proc.returncode = os.waitstatus_to_exitcode(status)
    if proc.returncode != 0:
        err = proc.stderr.read().decode() if proc.stderr else ""
        raise SystemExit(f"{argv[:4]}… exited {proc.returncode}: {err[-2000:]}")
    return wall, usage.ru_maxrss * 1024


def host_path(volume: str) -> Path | None:
    """The volume's directory on this host, or None when it is not readable here."""
    mount = sh(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", volume]).stdout.strip()
    path = Path(mount)
    return path if mount and os.access(path, os.R_OK | os.X_OK) else None


def bench_size(size_gib: float, work: Path, base: Path, keep: bool, full: bool) -> Row:
    """One volume of ``size_gib``: every column when ``full``, else monctl and the api read."""
    stack = make_stack(work / f"stack-{size_gib:g}")
    image = stack.overrides["PROMETHEUS_IMAGE"]
    volume = f"{stack.project_name}_prometheus_data"
    reader_name = f"{stack.project_name}-bench-reader"
    env = stack.process_env()
    row: Row = {"full": float(full)}
    try:
        sh(["docker", "volume", "create", "--label",
            f"com.docker.compose.project={stack.project_name}", volume])  # fmt: skip
        started = time.perf_counter()
        stored = fill_volume(volume, image, base, int(size_gib * GiB))
        row |= {"gib": stored / GiB, "fill": time.perf_counter() - started}
        # Never started: the archive API mounts the volume for the copy.
        sh(["docker", "create", "--name", reader_name, "-v", f"{volume}:/prometheus:ro", image])
        row["api"], _ = timed(["docker", "cp", f"{reader_name}:/prometheus", "-"])
        if full:
            mount = host_path(volume)
            if mount is not None:
                row["host"], _ = timed(["bash", "-c", HOST_TAR, "host-tar", str(mount)])
            reader = ["docker", "run", "--rm", "--entrypoint", "tar",
                      "-v", f"{volume}:/data:ro", image]  # fmt: skip
            row["run"], _ = timed([*reader, "cf", "-", "-C", "/data", "."])
            with (work / "old.tar.gz").open("wb") as fh:
                row["gz"], _ = timed([*reader, "czf", "-", "-C", "/data", "."], stdout=fh)
            row["gz_size"] = (work / "old.tar.gz").stat().st_size
            (work / "old.tar.gz").unlink()
        monctl = [sys.executable, "-m", "monctl", "--project-dir", str(stack.root),
                  "--project-name", stack.project_name]  # fmt: skip
        row["up"], _ = timed([*monctl, "up", "prometheus", "--timeout", "300"], env=env)
        dest = work / f"dest-{size_gib:g}"
        row["ours"], row["rss"] = timed(
            [*monctl, "backup", "-q", "--service", "prometheus", "--to", str(dest)], env=env
        )
        row["ours_size"] = sum(f.stat().st_size for f in dest.rglob("*.tar.zst"))
        if not keep:
            shutil.rmtree(dest)
        return row
    finally:
        subprocess.run(["docker", "rm", "-f", "-v", reader_name], capture_output=True, check=False)
        if not keep:
            stack.teardown()
            subprocess.run(
                ["docker", "volume", "rm", "-f", volume], capture_output=True, check=False
            )


def estimate(done: Row, size_gib: float) -> float:
    """Seconds a full run of ``size_gib`` would take, scaled linearly from ``done``."""
    return sum(done.get(k, 0.0) for k in PHASES) * size_gib / done["gib"]


def cell(row: Row, key: str, fmt: str, width: int, scale: float = 1.0) -> str:
    return f"{format(row[key] / scale, fmt):>{width}}" if key in row else f"{'-':>{width}}"


def ratio(row: Row, num: str, den: str, width: int) -> str:
    if num in row and den in row:
        return f"{row[num] / row[den]:>{width - 1}.2f}x"
    return f"{'-':>{width}}"


def report(rows: list[Row], budget: float) -> None:
    print("wall time (s):")
    print(f"{'volume':>9} {'api read':>9} {'host tar':>9} {'run tar':>9} {'tar czf':>9} "
          f"{'monctl':>9}")  # fmt: skip
    for r in rows:
        print(f"{r['gib']:>7.2f}Gi {cell(r, 'api', '.1f', 9)} {cell(r, 'host', '.1f', 9)} "
              f"{cell(r, 'run', '.1f', 9)} {cell(r, 'gz', '.1f', 9)} "
              f"{cell(r, 'ours', '.1f', 9)}")  # fmt: skip
    print("ratios, peak RSS, archive sizes:")
    print(f"{'volume':>9} {'czf/monctl':>11} {'monctl/api':>11} {'monctl/host':>12} "
          f"{'monctl/run':>11} {'peak RSS':>9} {'czf size':>9} {'zstd size':>10}")  # fmt: skip
    for r in rows:
        print(f"{r['gib']:>7.2f}Gi {ratio(r, 'gz', 'ours', 11)} {ratio(r, 'ours', 'api', 11)} "
              f"{ratio(r, 'ours', 'host', 12)} {ratio(r, 'ours', 'run', 11)} "
              f"{cell(r, 'rss', '.0f', 6, 2**20)}MiB {cell(r, 'gz_size', '.0f', 6, 2**20)}MiB "
              f"{cell(r, 'ours_size', '.0f', 7, 2**20)}MiB")  # fmt: skip
    for r in rows:
        if not r["full"]:
            print(f"{r['gib']:.2f} GiB: only monctl and the api read measured (a full run was "
                  f"estimated above the --budget of {budget:g} min)")  # fmt: skip
    if len(rows) > 1:
        spread = max(r["rss"] for r in rows) / min(r["rss"] for r in rows) - 1
        print(f"peak RSS spread across sizes: {spread * 100:.1f}% (goal: within 10%)")
    print("goals: czf/monctl >= 3x, monctl/api <= 1.5x (the archive-API read is the floor:")
    print("       monctl's own path without compression or hashing), peak RSS < 150 MiB")
    print("       (host tar: no Docker at all; run tar: the issue's literal floor, through a")
    print("       container's stdout stream, slower than monctl: informative only)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,4", help="volume sizes in GiB, comma-separated")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 0.05 GiB, small base set")
    ap.add_argument("--keep", action="store_true", help="keep stacks, volumes and backups")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    ap.add_argument(
        "--budget", type=float, default=25.0, help="minutes a larger size may take in full"
    )
    args = ap.parse_args()
    sizes = [0.05] if args.quick else sorted(float(s) for s in args.sizes.split(","))
    for tool in ("docker", "promtool"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    work = Path(tempfile.mkdtemp(prefix="monctl-bench-"))
    rows: list[Row] = []
    try:
        started = time.perf_counter()
        base = base_blocks(work, series=100 if args.quick else 1000)
        print(f"base set: {dir_size(base) / 2**20:.1f} MiB of promtool blocks "
              f"({time.perf_counter() - started:.0f} s to generate)", file=sys.stderr)  # fmt: skip
        for size in sizes:
            full = not rows or estimate(rows[0], size) <= args.budget * 60
            if rows:
                print(f"{size:g} GiB: a full run estimated at {estimate(rows[0], size) / 60:.0f} "
                      f"min -> {'full' if full else 'monctl + api read only'}",
                      file=sys.stderr)  # fmt: skip
            rows.append(bench_size(size, work, base, args.keep, full))
            print(json.dumps(rows[-1]), file=sys.stderr)  # kept should a later size fail
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(rows, args.budget)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
