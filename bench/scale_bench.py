"""What 1, 10 and 100 nodes cost Prometheus (README, "Scaling out"): measured, not guessed.

Debian's real node-exporter runs once on 127.0.0.1; Debian's real Prometheus scrapes
it as N distinct targets (one per simulated node: the same address, a different `node`
label, as dockerswarm_sd_configs would give), every 5 s. After a few scrapes the script
prints, per N: the active series in the head block, Prometheus' resident memory and Go
heap in use, the bytes of memory per series, and the samples scraped per second.
cAdvisor is not in Debian (no real numbers here); the README cites its per-container
series instead.

    python bench/scale_bench.py [--nodes 1 10 100] [--settle 25]
"""

from __future__ import annotations

import argparse
import shutil
import socket
import subprocess
import tempfile
import time
import urllib.request
from pathlib import Path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def metric(url: str, name: str) -> float:
    text = urllib.request.urlopen(f"{url}/metrics", timeout=5).read().decode()
    for line in text.splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    raise LookupError(name)


def wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            urllib.request.urlopen(f"{url}/-/ready", timeout=1)
            return
        except OSError:
            time.sleep(0.2)
    raise TimeoutError(url)


def measure(nodes: int, exporter: str, settle: float, tmp: Path) -> dict[str, float]:
    port = free_port()
    targets = "\n".join(
        f"      - targets: ['{exporter}']\n        labels: {{node: node-{i:03d}}}"
        for i in range(nodes)
    )
    config = tmp / f"prometheus-{nodes}.yml"
    config.write_text(
        "global: {scrape_interval: 5s, scrape_timeout: 4s}\n"
        "scrape_configs:\n  - job_name: node-exporter\n    static_configs:\n" + targets + "\n"
    )
    proc = subprocess.Popen(
        [
            "prometheus",
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp / f'data-{nodes}'}",
            f"--web.listen-address=127.0.0.1:{port}",
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_ready(url)
        time.sleep(settle)
        series = metric(url, "prometheus_tsdb_head_series")
        rss = metric(url, "process_resident_memory_bytes")
        heap = metric(url, "go_memstats_heap_inuse_bytes")
        appended = metric(url, "prometheus_tsdb_head_samples_appended_total")
        time.sleep(10)
        rate = (metric(url, "prometheus_tsdb_head_samples_appended_total") - appended) / 10
        return {"series": series, "rss": rss, "heap": heap, "samples_per_s": rate}
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--nodes", type=int, nargs="+", default=[1, 10, 100])
    parser.add_argument("--settle", type=float, default=25.0)
    args = parser.parse_args()
    for binary in ("prometheus", "prometheus-node-exporter"):
        if shutil.which(binary) is None:
            raise SystemExit(f"{binary} is not installed (apt-get install {binary})")
    exporter_port = free_port()
    exporter = subprocess.Popen(
        ["prometheus-node-exporter", f"--web.listen-address=127.0.0.1:{exporter_port}"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        time.sleep(1)
        per_node = sum(
            1
            for line in urllib.request.urlopen(f"http://127.0.0.1:{exporter_port}/metrics")
            .read()
            .decode()
            .splitlines()
            if line and not line.startswith("#")
        )
        print(f"node-exporter: {per_node} series per node (this host)")
        print(f"{'nodes':>6} {'series':>9} {'RSS MiB':>8} {'heap MiB':>9} {'B/series':>9} "
              f"{'samples/s':>10}")  # fmt: skip
        with tempfile.TemporaryDirectory() as tmp:
            for n in args.nodes:
                m = measure(n, f"127.0.0.1:{exporter_port}", args.settle, Path(tmp))
                print(
                    f"{n:>6} {m['series']:>9.0f} {m['rss'] / 2**20:>8.0f} "
                    f"{m['heap'] / 2**20:>9.0f} {m['heap'] / max(m['series'], 1):>9.0f} "
                    f"{m['samples_per_s']:>10.0f}"
                )
    finally:
        exporter.terminate()


if __name__ == "__main__":
    main()
