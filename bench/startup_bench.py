#!/usr/bin/env python3
"""monctl's own start-up: `monctl --version` next to a bare `python -c pass`.

Both run as fresh processes on the same interpreter, alternately, RUNS times;
the medians and their difference are printed. Goal (issue 4): the difference
stays within 150 ms (commands and heavy libraries are imported only when used).

    python bench/startup_bench.py [--runs N]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
GOAL_MS = 150.0


def once(argv: list[str], env: dict[str, str]) -> float:
    started = time.perf_counter()
    subprocess.run(argv, env=env, check=True, stdout=subprocess.DEVNULL)
    return (time.perf_counter() - started) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    env = dict(os.environ)
    # Bytecode is written by the warm-up run, as on a used machine (an installed wheel has
    # its .pyc): PYTHONDONTWRITEBYTECODE, set in some shells, would have every run compile
    # monctl's sources again, a cost that grows with them (bench/README.md).
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        print("note: PYTHONDONTWRITEBYTECODE is set here: not for these runs")
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))
    bare_argv = [sys.executable, "-c", "pass"]
    # `python -m monctl` is what the console script does, minus its tiny wrapper.
    monctl_argv = [sys.executable, "-m", "monctl", "--version"]
    once(monctl_argv, env)  # warm the file cache and bytecode, as on a used machine
    bare: list[float] = []
    monctl: list[float] = []
    for _ in range(args.runs):  # alternate, so drift on the machine hits both alike
        bare.append(once(bare_argv, env))
        monctl.append(once(monctl_argv, env))
    bare_ms, monctl_ms = statistics.median(bare), statistics.median(monctl)
    diff = monctl_ms - bare_ms
    print(f"runs: {args.runs} each, medians")
    print(f"python -c pass          {bare_ms:7.1f} ms")
    print(f"monctl --version        {monctl_ms:7.1f} ms")
    print(
        f"difference              {diff:7.1f} ms  (goal: within {GOAL_MS:.0f} ms -> "
        f"{'met' if diff <= GOAL_MS else 'NOT met'})"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
