#!/usr/bin/env python3
"""Backup speed and memory: monctl backup vs the replaced script's `tar czf` vs a plain tar read.

For each size (GiB) a Prometheus data volume is filled with real TSDB blocks: promtool
(`tsdb create-blocks-from openmetrics`) writes a base set of 2-hour blocks from a
generated OpenMetrics file (random gauge values: close to the worst case for the
TSDB's own compression), and the base set is copied under fresh block ids until the
volume holds the size. Then, on the same volume:

  floor     docker run --rm -v VOL:/data IMAGE tar cf - -C /data .   > /dev/null
  tar czf   docker run --rm -v VOL:/data IMAGE tar czf - -C /data .  > file (the old script)
  monctl    monctl backup --service prometheus --to DIR              (snapshot, zstd, sha256)

with wall time and monctl's peak RSS (wait4's ru_maxrss). Baselines run while
Prometheus is stopped; monctl runs right after Prometheus starts (before its first
compaction, which would rewrite the overlapping copies).

    python bench/backup_bench.py [--sizes 1,4] [--quick] [--keep]

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
    sh(["docker", "run", "--rm", "--user", "0", "--entrypoint", "sh", "-v", f"{volume}:/data",
        "-v", f"{base}:/src:ro", image, "-c", "\n".join(script)], timeout=3600)  # fmt: skip
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


def bench_size(size_gib: float, work: Path, base: Path, keep: bool) -> dict[str, float]:
    stack = make_stack(work / f"stack-{size_gib:g}")
    image = stack.overrides["PROMETHEUS_IMAGE"]
    volume = f"{stack.project_name}_prometheus_data"
    env = stack.process_env()
    try:
        sh(["docker", "volume", "create", "--label",
            f"com.docker.compose.project={stack.project_name}", volume])  # fmt: skip
        stored = fill_volume(volume, image, base, int(size_gib * GiB))
        reader = ["docker", "run", "--rm", "--entrypoint", "tar", "-v", f"{volume}:/data:ro", image]
        floor, _ = timed([*reader, "cf", "-", "-C", "/data", "."])
        with (work / "old.tar.gz").open("wb") as fh:
            gz, _ = timed([*reader, "czf", "-", "-C", "/data", "."], stdout=fh)
        gz_size = (work / "old.tar.gz").stat().st_size
        (work / "old.tar.gz").unlink()
        monctl = [sys.executable, "-m", "monctl", "--project-dir", str(stack.root),
                  "--project-name", stack.project_name]  # fmt: skip
        timed([*monctl, "up", "prometheus", "--timeout", "300"], env=env)
        dest = work / f"dest-{size_gib:g}"
        ours, rss = timed(
            [*monctl, "backup", "-q", "--service", "prometheus", "--to", str(dest)], env=env
        )
        ours_size = sum(f.stat().st_size for f in dest.rglob("*.tar.zst"))
        if not keep:
            shutil.rmtree(dest)
        return {"gib": stored / GiB, "floor": floor, "gz": gz, "ours": ours, "rss": rss,
                "gz_size": gz_size, "ours_size": ours_size}  # fmt: skip
    finally:
        if not keep:
            stack.teardown()
            subprocess.run(
                ["docker", "volume", "rm", "-f", volume], capture_output=True, check=False
            )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,4", help="volume sizes in GiB, comma-separated")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 0.05 GiB, small base set")
    ap.add_argument("--keep", action="store_true", help="keep stacks, volumes and backups")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    args = ap.parse_args()
    sizes = [0.05] if args.quick else [float(s) for s in args.sizes.split(",")]
    for tool in ("docker", "promtool"):
        if not shutil.which(tool):
            raise SystemExit(f"{tool} is not installed")
    work = Path(tempfile.mkdtemp(prefix="monctl-bench-"))
    try:
        started = time.perf_counter()
        base = base_blocks(work, series=100 if args.quick else 1000)
        print(f"base set: {dir_size(base) / 2**20:.1f} MiB of promtool blocks "
              f"({time.perf_counter() - started:.0f} s to generate)", file=sys.stderr)  # fmt: skip
        rows = [bench_size(size, work, base, args.keep) for size in sizes]
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    print(f"{'volume':>9} {'floor tar':>10} {'tar czf':>9} {'monctl':>9} {'vs czf':>7} "
          f"{'vs floor':>9} {'peak RSS':>9} {'czf size':>9} {'zstd size':>9}")  # fmt: skip
    for r in rows:
        print(f"{r['gib']:>7.2f}Gi {r['floor']:>9.1f}s {r['gz']:>8.1f}s {r['ours']:>8.1f}s "
              f"{r['gz'] / r['ours']:>6.1f}x {r['ours'] / r['floor']:>8.2f}x "
              f"{r['rss'] / 2**20:>6.0f}MiB {r['gz_size'] / 2**20:>6.0f}MiB "
              f"{r['ours_size'] / 2**20:>6.0f}MiB")  # fmt: skip
    if len(rows) > 1:
        spread = max(r["rss"] for r in rows) / min(r["rss"] for r in rows) - 1
        print(f"peak RSS spread across sizes: {spread * 100:.1f}% (goal: within 10%)")
    print("goals: >= 3x faster than tar czf, <= 1.5x the floor, peak RSS < 150 MiB")
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
