#!/usr/bin/env python3
"""What encryption costs: the same backup with and without `--encrypt-to` (issue 13).

A Prometheus data volume is filled as backup_bench.py fills it (real promtool blocks,
copies made distinct), Prometheus is started, and then, alternately, --runs times each:

  plain      monctl backup --service prometheus --to FRESH_DIR
  encrypted  monctl backup --service prometheus --to FRESH_DIR --encrypt-to age1…

each into an empty repository (everything read, hashed, compressed where it pays, and
written: the most encryption can cost; an incremental backup encrypts only what it
writes). Alternating pairs share whatever the machine is doing. Then, once each, the
second (incremental) backup of each repository, and `verify` of the encrypted backup
without the key (stored bytes) and with `--identity --deep` (decrypted). Printed:
medians, their ratio (goal: encrypted <= 1.15x plain), peak RSS, and age's own
throughput in process (pyrage, one core) to explain the difference.

    python bench/encryption_bench.py [--size 1] [--runs 3] [--keep]

Needs a Docker engine, the test images (tests/images/build.sh), promtool and pyrage.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
import backup_bench as bb  # its stack, volume filling and timing


def age_throughput(mib: int = 256) -> float:
    """MiB/s of pyrage encrypting incompressible data, in process."""
    import io

    import pyrage

    recipient = pyrage.x25519.Identity.generate().to_public()
    data = io.BytesIO(os.urandom(1 << 20) * mib)
    out = io.BytesIO()
    started = time.perf_counter()
    pyrage.encrypt_io(data, out, [recipient])
    return mib / (time.perf_counter() - started)


def timed_cpu(argv: list[str], stdout: Any, env: dict[str, str]) -> tuple[float, int, float]:
    """(wall seconds, peak RSS bytes, CPU seconds user+system) of monctl, by GNU time."""
    started = time.perf_counter()
    argv = ["/usr/bin/time", "-f", "monctl-bench %M %U %S", *argv]
    proc = subprocess.run(argv, stdout=stdout, stderr=subprocess.PIPE, env=env, check=False)
    wall = time.perf_counter() - started
    err = proc.stderr.decode(errors="replace")
    found = [line.split() for line in err.splitlines() if line.startswith("monctl-bench ")]
    if proc.returncode != 0 or not found:
        raise SystemExit(f"{argv[3:]} exited {proc.returncode}: {err[-3000:]}")
    _, rss, user, system = found[-1]
    return wall, int(rss) * 1024, float(user) + float(system)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--size", type=float, default=1.0, help="volume size in GiB")
    ap.add_argument("--runs", type=int, default=3, help="first backups of each kind")
    ap.add_argument("--keep", action="store_true", help="keep the stack, volume and backups")
    args = ap.parse_args()
    import pyrage

    bb.need_engine("encryption_bench")
    work = Path(tempfile.mkdtemp(prefix="monctl-enc-bench-"))
    ident = pyrage.x25519.Identity.generate()
    key = work / "backup.key"
    key.write_text(f"{ident}\n")
    key.chmod(0o600)
    recipient = str(ident.to_public())
    stack = bb.make_stack(work / "stack")
    bb.quiet_stack(stack)
    volume = f"{stack.project_name}_prometheus_data"
    env = stack.process_env()
    monctl = [sys.executable, "-m", "monctl", "--project-dir", str(stack.root),
              "--project-name", stack.project_name]  # fmt: skip
    times: dict[str, list[float]] = {"plain": [], "encrypted": []}
    rss: dict[str, list[int]] = {"plain": [], "encrypted": []}
    cpu: dict[str, list[float]] = {"plain": [], "encrypted": []}
    extra: dict[str, float] = {}
    try:
        base = bb.base_blocks(work, series=1000)
        bb.sh(["docker", "volume", "create", "--label",
               f"com.docker.compose.project={stack.project_name}", volume])  # fmt: skip
        metas = work / "metas"
        metas.mkdir()
        image = stack.overrides["PROMETHEUS_IMAGE"]
        stored = bb.fill_volume(volume, image, base, int(args.size * bb.GiB), metas)
        bb.timed([*monctl, "up", "prometheus", "--timeout", "300"], env=env)

        def backup(kind: str, dest: Path, record: bool = True) -> float:
            argv = [*monctl, "backup", "--json", "-q", "--service", "prometheus",
                    "--to", str(dest)]  # fmt: skip
            if kind == "encrypted":
                argv += ["--encrypt-to", recipient]
            with (work / f"{kind}.json").open("wb") as fh:
                wall, peak, used = timed_cpu(argv, stdout=fh, env=env)
            if record:
                times[kind].append(wall)
                rss[kind].append(peak)
                cpu[kind].append(used)
            return wall

        for run in range(args.runs):
            order = ("plain", "encrypted") if run % 2 == 0 else ("encrypted", "plain")
            for kind in order:
                dest = work / f"dest-{kind}"
                shutil.rmtree(dest, ignore_errors=True)
                print(f"run {run + 1} {kind}: {backup(kind, dest):.2f} s", file=sys.stderr)
        for kind in ("plain", "encrypted"):  # the repositories of the last run hold a backup
            extra[f"second_{kind}"] = backup(kind, work / f"dest-{kind}", record=False)
        dest = work / "dest-encrypted"
        backup_id = json.loads((work / "encrypted.json").read_text())["id"]
        verify = [*monctl, "backup", "verify", backup_id, "--from", str(dest)]
        extra["verify_keyless"], _ = bb.timed(verify, env=env)
        extra["verify_deep"], _ = bb.timed([*verify, "--deep", "--identity", str(key)], env=env)
        extra["age_mib_s"] = age_throughput()
    finally:
        if not args.keep:
            stack.teardown()
            subprocess.run(["docker", "volume", "rm", "-f", volume], capture_output=True,
                           check=False)  # fmt: skip
            shutil.rmtree(work, ignore_errors=True)

    plain, sealed = statistics.median(times["plain"]), statistics.median(times["encrypted"])
    print(f"volume {stored / bb.GiB:.2f} GiB, {args.runs} first backups of each kind "
          f"(alternating), medians:")  # fmt: skip
    print(f"  plain      {plain:7.2f} s   runs {', '.join(f'{t:.2f}' for t in times['plain'])}"
          f"   peak RSS {max(rss['plain']) / 2**20:.0f} MiB"
          f"   monctl CPU {statistics.median(cpu['plain']):.2f} s")  # fmt: skip
    print(f"  encrypted  {sealed:7.2f} s   runs "
          f"{', '.join(f'{t:.2f}' for t in times['encrypted'])}"
          f"   peak RSS {max(rss['encrypted']) / 2**20:.0f} MiB"
          f"   monctl CPU {statistics.median(cpu['encrypted']):.2f} s")  # fmt: skip
    print(f"  ratio encrypted/plain: {sealed / plain:.2f}x (goal <= 1.15x)")
    # Each run's pair ran back to back: their ratios cancel slow drifts of the machine.
    pairs = [e / p for p, e in zip(times["plain"], times["encrypted"], strict=True)]
    print(f"  ratio of each run's pair: {', '.join(f'{r:.2f}' for r in pairs)}; "
          f"median {statistics.median(pairs):.2f}x")  # fmt: skip
    print(f"second backup (incremental): plain {extra['second_plain']:.2f} s, "
          f"encrypted {extra['second_encrypted']:.2f} s")  # fmt: skip
    print(f"verify of the encrypted backup: without the key {extra['verify_keyless']:.2f} s, "
          f"--deep with it {extra['verify_deep']:.2f} s")  # fmt: skip
    print(f"age (pyrage) in process, one core: {extra['age_mib_s']:.0f} MiB/s "
          f"= {1024 / extra['age_mib_s']:.2f} s per GiB")  # fmt: skip


if __name__ == "__main__":
    main()
