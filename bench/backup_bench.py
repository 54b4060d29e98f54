#!/usr/bin/env python3
"""Backup speed and memory: incremental backups and restore vs the archive-API read, `tar czf`.

For each size (GiB) a Prometheus data volume is filled with real TSDB blocks: promtool
(`tsdb create-blocks-from openmetrics`) writes a base set of 2-hour blocks from a
generated OpenMetrics file (random gauge values: close to the worst case for the
TSDB's own compression), and the base set is copied under fresh block ids until the
volume holds the size. Then, on the same volume (all reads are warm page-cache reads):

  api read   docker cp READER:/prometheus - > /dev/null     THE floor the goals are judged on
  host tar   tar cf - -C <volume mountpoint> . | cat > /dev/null          (informative)
  tar czf    docker run --rm -v VOL:/data IMAGE tar czf - -C /data . > file (the old script)
  first      monctl backup --service prometheus --to DIR    (a fresh repository: everything)
  second     the same, right after                          (nothing new but the head)
  third      after one more block was added (Prometheus stopped, a block copied in under a
             new ULID, started): the next backup should write about that block
  restore    monctl restore SECOND --service prometheus --yes (verify, stage, swap, ready)
  today      the same volume as a flat format-1 archive (the layout of monctl before
             incremental backups, written by the bench with monctl's own codec), restored
             by the monctl of --today-ref (default: where this branch left main): today's
             restore, by today's code

with wall time, monctl's peak RSS (wait4's ru_maxrss) and the bytes each backup wrote
(from its --json report). READER is a created, never started container of the Prometheus
image mounting the volume: `docker cp` reads it through Docker's archive API, the path
monctl's bytes take, so monctl / api read is monctl's own cost. Host tar pipes through cat
because GNU tar skips reading file data when its archive is /dev/null.

Baselines run while Prometheus is stopped; monctl runs right after Prometheus starts
(before its first compaction, which would rewrite the overlapping copies). Bounded run:
from the first size's figures the time of each larger size is estimated; over --budget
minutes, that size skips host tar and tar czf (they print "-").

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
sys.path.insert(0, str(REPO))

from support.engine import Stack, make_stack  # noqa: E402

GiB = 1024**3
STEP = 15  # seconds between samples, like a scrape interval
WINDOWS = 8  # 2-hour blocks in the base set
CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
# Through cat: GNU tar does not read file data at all when its archive is /dev/null.
HOST_TAR = 'set -o pipefail; tar cf - -C "$1" . | cat > /dev/null'
# Copies of one block would be stored once (same content, same objects), and a tool that
# cuts files into content-defined chunks (restic, borg: 512 KiB at least) would store
# most of a copy once even when only its end differs: at 1 GiB, restic stored 212 MB and
# borg 510 MB of 34 copies that each differed by 64 appended bytes — a duplication no
# real TSDB volume has (every block holds other samples). So each copy's chunk segments
# get 16 random bytes every 448 KiB past their 8-byte header, and 64 appended: every
# chunk any of the tools cuts is new. Prometheus never reads them (it reads a chunk
# only for a query, at the offset its index gives), so every copy is new content, like
# a real block. The index files stay identical between copies (changing them would
# break their table of contents): a few percent of the volume is stored once.
UNIQUE = ("for f in {block}/chunks/*; do s=$(wc -c < $f); o=4096; while [ $o -lt $s ]; do "
          "dd if=/dev/urandom of=$f bs=16 count=1 seek=$((o / 16)) conv=notrunc 2>/dev/null; "
          "o=$((o + 458752)); done; head -c 64 /dev/urandom >> $f; done")  # fmt: skip
PHASES = ("fill", "api", "host", "gz", "up", "first", "second", "third", "restore", "v1")
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


def copy_script(base: Path, metas: Path, shift: int, only: str | None = None) -> list[str]:
    """Shell lines copying the base set once, every block under a new ULID and moved
    ``shift`` copies of the base set's span back in time (copies must not overlap: the
    TSDB would merge overlapping blocks into one, under new ULIDs, mid-measurement)."""
    lines = []
    span = WINDOWS * 7200 * 1000
    for block in sorted(p.name for p in base.iterdir() if p.is_dir()):
        if only is not None and block != only:
            continue
        new = ulid()
        meta = json.loads((base / block / "meta.json").read_text())
        meta.update(ulid=new, minTime=meta["minTime"] - shift * span,
                    maxTime=meta["maxTime"] - shift * span)  # fmt: skip
        (metas / f"{new}.json").write_text(json.dumps(meta))
        lines += [f"cp -a /src/{block} /data/{new}", f"cp /metas/{new}.json /data/{new}/meta.json",
                  UNIQUE.format(block=f"/data/{new}")]  # fmt: skip
    return lines


def fill_volume(volume: str, image: str, base: Path, target: int, metas: Path) -> int:
    """Copy the base blocks under new ids into ``volume`` until it holds ``target`` bytes."""
    per_copy = dir_size(base)
    copies = max(1, -(-target // per_copy))
    script = ["set -e"]
    for i in range(copies):
        script += copy_script(base, metas, i)
    script.append("chown -R 65534:65534 /data")
    # On stdin: at 4 GiB the script outgrows the kernel's limit for one argument (128 KiB).
    sh(["docker", "run", "--rm", "-i", "--user", "0", "--entrypoint", "sh", "-v", f"{volume}:/data",
        "-v", f"{base}:/src:ro", "-v", f"{metas}:/metas:ro", image, "-s"],
       input="\n".join(script) + "\n", timeout=3600)  # fmt: skip
    return copies * per_copy


def timed(
    argv: list[str], stdout: int | object = subprocess.DEVNULL, env: dict[str, str] | None = None
) -> tuple[float, int]:
    """(wall seconds, peak RSS in bytes) of one process run to completion.

    The peak RSS comes from GNU time (%M), which forks the process itself: Linux keeps
    ru_maxrss across an exec, so a process spawned straight from this (large) Python
    would report this process's size, not its own."""
    started = time.perf_counter()
    argv = ["/usr/bin/time", "-f", "monctl-bench-rss %M", *argv]
    proc = subprocess.Popen(argv, stdout=stdout, stderr=subprocess.PIPE, env=env)  # type: ignore[arg-type]
    _, err_bytes = proc.communicate()
    wall = time.perf_counter() - started
    err = err_bytes.decode(errors="replace")
    rss = [line for line in err.splitlines() if line.startswith("monctl-bench-rss ")]
    if proc.returncode != 0 or not rss:
        if stdout is not subprocess.DEVNULL and hasattr(stdout, "name"):
            err += Path(stdout.name).read_text(errors="replace")[-3000:]
        raise SystemExit(f"{argv[9:12]}… exited {proc.returncode}: {err[-3000:]}")
    return wall, int(rss[-1].split()[1]) * 1024


def host_path(volume: str) -> Path | None:
    """The volume's directory on this host, or None when it is not readable here."""
    mount = sh(["docker", "volume", "inspect", "-f", "{{.Mountpoint}}", volume]).stdout.strip()
    path = Path(mount)
    return path if mount and os.access(path, os.R_OK | os.X_OK) else None


def add_block(volume: str, image: str, base: Path, metas: Path) -> int:
    """One more block in the volume (a base block under a new ULID, older than all); its bytes."""
    first = sorted(p.name for p in base.iterdir() if p.is_dir())[0]
    lines = copy_script(base, metas, 4_000, only=first)  # ~7 years back: within retention
    lines.append("chown -R 65534:65534 /data")
    sh(["docker", "run", "--rm", "-i", "--user", "0", "--entrypoint", "sh", "-v", f"{volume}:/data",
        "-v", f"{base}:/src:ro", "-v", f"{metas}:/metas:ro", image, "-s"],
       input="\n".join(["set -e", *lines]) + "\n", timeout=600)  # fmt: skip
    return dir_size(base / first)


def quiet_stack(stack: Stack) -> None:
    """No compaction and no retention in this stack's Prometheus: the volume must stay as
    filled while it is measured (min = max block duration turns compaction off)."""
    compose = stack.root / "compose" / "docker-compose.monitoring.yml"
    text = compose.read_text()
    flag = "      - --storage.tsdb.path=/prometheus\n"
    assert flag in text, "the compose file changed: update bench/backup_bench.py"
    text = text.replace(flag, flag + "      - --storage.tsdb.min-block-duration=2h\n"
                        "      - --storage.tsdb.max-block-duration=2h\n", 1)  # fmt: skip
    compose.write_text(text)
    with (stack.root / ".env").open("a") as env:
        env.write("\nPROMETHEUS_RETENTION_TIME=3650d\n")


def v1_backup(volume: str, reader: str, dest: Path) -> str:
    """The volume as a format-1 backup (one zstd tar archive and its manifest), written
    with monctl's own codec from `docker cp`'s stream: today's flat layout."""
    from datetime import UTC, datetime

    from monctl.adapters.storage.local import LocalStorage
    from monctl.repository.archive import Digest, compress_stream
    from monctl.repository.manifest import Manifest, ServiceEntry, archive_key, write_manifest

    storage = LocalStorage(dest)
    backup_id = "20200101T000000Z"
    proc = subprocess.Popen(["docker", "cp", f"{reader}:/prometheus", "-"], stdout=subprocess.PIPE)
    assert proc.stdout is not None
    digest = Digest()
    chunks = iter(lambda: proc.stdout.read(1 << 20), b"")  # type: ignore[union-attr]
    storage.put(
        archive_key(backup_id, "prometheus", "zstd"), compress_stream(chunks, "zstd", digest)
    )
    proc.wait()
    now = datetime.now(UTC)
    entry = ServiceEntry("prometheus.tar.zst", "bench", None, digest.size, digest.raw_size,
                         digest.sha256, "snapshot", "prometheus")  # fmt: skip
    write_manifest(storage, Manifest(backup_id, "bench", now, now, "zstd",
                                     {"prometheus": entry}, format_version=1))  # fmt: skip
    return backup_id


def today_tree(work: Path, ref: str) -> Path | None:
    """A copy of monctl at ``ref`` (git archive), for today's restore; None without git."""
    target = work / "today"
    try:
        rev = sh(["git", "-C", str(REPO), "rev-parse", "--verify", ref]).stdout.strip()
        archive = subprocess.run(["git", "-C", str(REPO), "archive", rev, "monctl"],
                                 capture_output=True, check=True).stdout  # fmt: skip
    except (subprocess.CalledProcessError, FileNotFoundError):
        return None
    target.mkdir()
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    print(f"today's restore: monctl at {ref} ({rev[:10]})", file=sys.stderr)
    return target


def bench_size(
    size_gib: float, work: Path, base: Path, keep: bool, full: bool, today: Path | None
) -> Row:
    """One volume of ``size_gib``: every column when ``full``, else without the baselines."""
    stack = make_stack(work / f"stack-{size_gib:g}")
    quiet_stack(stack)
    metas = work / f"metas-{size_gib:g}"
    metas.mkdir()
    image = stack.overrides["PROMETHEUS_IMAGE"]
    volume = f"{stack.project_name}_prometheus_data"
    reader_name = f"{stack.project_name}-bench-reader"
    env = stack.process_env()
    row: Row = {"full": float(full)}
    monctl = [sys.executable, "-m", "monctl", "--project-dir", str(stack.root),
              "--project-name", stack.project_name]  # fmt: skip
    dest = work / f"dest-{size_gib:g}"

    def backup(name: str) -> str:
        out = work / f"{name}.json"
        with out.open("wb") as fh:
            row[name], row[f"{name}_rss"] = timed(
                [*monctl, "backup", "--json", "--service", "prometheus", "--to", str(dest)],
                stdout=fh, env=env,
            )  # fmt: skip
        doc = json.loads(out.read_text())
        row[f"{name}_written"] = doc["written_bytes"]
        row[f"{name}_read"] = doc["read_bytes"]
        row[f"{name}_reused"] = doc["reused_objects"]
        return str(doc["id"])

    try:
        sh(["docker", "volume", "create", "--label",
            f"com.docker.compose.project={stack.project_name}", volume])  # fmt: skip
        started = time.perf_counter()
        stored = fill_volume(volume, image, base, int(size_gib * GiB), metas)
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
            with (work / "old.tar.gz").open("wb") as fh:
                row["gz"], _ = timed([*reader, "czf", "-", "-C", "/data", "."], stdout=fh)
            row["gz_size"] = (work / "old.tar.gz").stat().st_size
            (work / "old.tar.gz").unlink()
        v1_id = v1_backup(volume, reader_name, dest)
        row["up"], _ = timed([*monctl, "up", "prometheus", "--timeout", "300"], env=env)
        backup("first")
        second = backup("second")
        sh([*monctl, "down"], env=env, timeout=300)  # fmt: skip
        subprocess.run(["docker", "rm", "-f", "-v", reader_name], capture_output=True, check=False)
        row["block"] = add_block(volume, image, base, metas)
        sh(["docker", "create", "--name", reader_name, "-v", f"{volume}:/prometheus:ro", image])
        row["api2"], _ = timed(["docker", "cp", f"{reader_name}:/prometheus", "-"])
        # A restore replaces the volume: nothing else may hold it.
        subprocess.run(["docker", "rm", "-f", "-v", reader_name], capture_output=True, check=False)
        timed([*monctl, "up", "prometheus", "--timeout", "300"], env=env)
        backup("third")
        runs = [("restore", second, env)]
        if today is not None:
            runs.append(("v1", v1_id, {**env, "PYTHONPATH": str(today)}))
        for name, backup_id, run_env in runs:
            argv = [*monctl, "restore", backup_id, "--service", "prometheus", "--yes",
                    "--from", str(dest)]  # fmt: skip
            with (work / f"{name}.out").open("wb") as fh:
                row[name], row[f"{name}_rss"] = timed(argv, stdout=fh, env=run_env)
        row["objects_bytes"] = sum(
            f.stat().st_size for f in (dest / "objects").rglob("*") if f.is_file()
        )
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
    if num in row and den in row and row[den]:
        return f"{row[num] / row[den]:>{width - 1}.2f}x"
    return f"{'-':>{width}}"


def report(rows: list[Row], budget: float) -> None:
    print("wall time (s):")
    print(f"{'volume':>9} {'api read':>9} {'host tar':>9} {'tar czf':>9} {'first':>8} "
          f"{'second':>8} {'+block':>8} {'restore':>8} {'today':>9}")  # fmt: skip
    for r in rows:
        print(f"{r['gib']:>7.2f}Gi {cell(r, 'api', '.1f', 9)} {cell(r, 'host', '.1f', 9)} "
              f"{cell(r, 'gz', '.1f', 9)} {cell(r, 'first', '.2f', 8)} "
              f"{cell(r, 'second', '.2f', 8)} {cell(r, 'third', '.2f', 8)} "
              f"{cell(r, 'restore', '.1f', 8)} {cell(r, 'v1', '.1f', 9)}")  # fmt: skip
    print("bytes written (MiB) and objects reused:")
    print(f"{'volume':>9} {'first':>9} {'second':>9} {'+block':>9} {'block':>9} "
          f"{'reused 2nd':>11} {'read 2nd':>9} {'repo':>9}")  # fmt: skip
    for r in rows:
        print(f"{r['gib']:>7.2f}Gi {cell(r, 'first_written', '.1f', 9, 2**20)} "
              f"{cell(r, 'second_written', '.2f', 9, 2**20)} "
              f"{cell(r, 'third_written', '.1f', 9, 2**20)} {cell(r, 'block', '.1f', 9, 2**20)} "
              f"{cell(r, 'second_reused', '.0f', 11)} {cell(r, 'second_read', '.2f', 9, 2**20)} "
              f"{cell(r, 'objects_bytes', '.0f', 9, 2**20)}")  # fmt: skip
    print("ratios (goal):")
    print(f"{'volume':>9} {'first/api':>10} {'czf/first':>10} {'2nd/1st t':>10} "
          f"{'2nd/1st B':>10} {'+blk/blk B':>11} {'rest/api':>9} {'r/today':>8} "
          f"{'peak RSS':>9}")  # fmt: skip
    print(f"{'':>9} {'<=1.5x':>10} {'>=3x':>10} {'<=0.2x':>10} {'<=0.05x':>10} {'~1x':>11} "
          f"{'<=2x':>9} {'<=1x':>8} {'<150MiB':>9}")  # fmt: skip
    for r in rows:
        rss = max(r.get(k, 0.0) for k in ("first_rss", "second_rss", "third_rss", "restore_rss"))
        print(f"{r['gib']:>7.2f}Gi {ratio(r, 'first', 'api', 10)} {ratio(r, 'gz', 'first', 10)} "
              f"{ratio(r, 'second', 'first', 10)} "
              f"{ratio(r, 'second_written', 'first_written', 10)} "
              f"{ratio(r, 'third_written', 'block', 11)} {ratio(r, 'restore', 'api', 9)} "
              f"{ratio(r, 'restore', 'v1', 8)} {rss / 2**20:>6.0f}MiB")  # fmt: skip
    for r in rows:
        if not r["full"]:
            print(f"{r['gib']:.2f} GiB: no host tar / tar czf (a full run was estimated above the "
                  f"--budget of {budget:g} min)")  # fmt: skip
    if len(rows) > 1:
        peaks = [r["first_rss"] for r in rows]
        print(f"peak RSS of the first backup across sizes: "
              f"{', '.join(f'{p / 2**20:.0f}' for p in peaks)} MiB, spread "
              f"{(max(peaks) / min(peaks) - 1) * 100:.1f}% (goal: within 10%)")  # fmt: skip


def need_engine(script: str) -> None:
    """Stop with one clear line when the tools or a running Docker engine are missing."""
    for tool in ("docker", "promtool", "/usr/bin/time"):
        if not shutil.which(tool):
            raise SystemExit(f"{script}: {tool} is not installed (see .ci/run for the packages)")
    engine = subprocess.run(["docker", "info", "--format", "{{.ServerVersion}}"],
                            capture_output=True, text=True, check=False)  # fmt: skip
    if engine.returncode != 0:
        last = (engine.stderr.strip().splitlines() or ["no answer"])[-1]
        raise SystemExit(
            f"{script}: needs a running Docker engine and the test images "
            f"(bash tests/images/build.sh); docker info says: {last}"
        )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--sizes", default="1,4", help="volume sizes in GiB, comma-separated")
    ap.add_argument("--quick", action="store_true", help="a smoke run: 0.05 GiB, small base set")
    ap.add_argument("--keep", action="store_true", help="keep stacks, volumes and backups")
    ap.add_argument("--json", action="store_true", help="print the figures as JSON too")
    ap.add_argument(
        "--budget", type=float, default=25.0, help="minutes a larger size may take in full"
    )
    ap.add_argument(
        "--today-ref",
        default="",
        help="git ref of today's monctl for the restore baseline [default: merge-base with main]",
    )
    args = ap.parse_args()
    sizes = [0.05] if args.quick else sorted(float(s) for s in args.sizes.split(","))
    need_engine("backup_bench")
    work = Path(tempfile.mkdtemp(prefix="monctl-bench-"))
    rows: list[Row] = []
    try:
        ref = args.today_ref
        if not ref:
            found = subprocess.run(["git", "-C", str(REPO), "merge-base", "HEAD", "main"],
                                   capture_output=True, text=True, check=False)  # fmt: skip
            ref = found.stdout.strip() or "HEAD"
        today = today_tree(work, ref)
        started = time.perf_counter()
        base = base_blocks(work, series=100 if args.quick else 1000)
        print(f"base set: {dir_size(base) / 2**20:.1f} MiB of promtool blocks "
              f"({time.perf_counter() - started:.0f} s to generate)", file=sys.stderr)  # fmt: skip
        for size in sizes:
            full = not rows or estimate(rows[0], size) <= args.budget * 60
            if rows:
                print(f"{size:g} GiB: a full run estimated at {estimate(rows[0], size) / 60:.0f} "
                      f"min -> {'full' if full else 'without the baselines'}",
                      file=sys.stderr)  # fmt: skip
            rows.append(bench_size(size, work, base, args.keep, full, today))
            print(json.dumps(rows[-1]), file=sys.stderr)  # kept should a later size fail
    finally:
        if not args.keep:
            shutil.rmtree(work, ignore_errors=True)
    report(rows, args.budget)
    if args.json:
        print(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
