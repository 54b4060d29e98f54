#!/usr/bin/env python3
"""How long `monctl health` takes when every endpoint is slow, next to the replaced script.

Eight local HTTP servers (one per stack service) answer every request after
DELAY seconds (default 1). `monctl health --no-deep` is pointed at them with
MONCTL_<SERVICE>_URL and timed as a whole process (start-up, Docker lookup
and every probe). The replaced shell script's method — one `curl` per
endpoint, one after the other — is timed against the same servers.

Goal (issue 4): monctl under 1.3 s wall time with DELAY=1 (its probes run
concurrently, so it costs about the slowest probe, not the sum).

    python bench/health_bench.py [--runs N] [--delay SECONDS]
"""

from __future__ import annotations

import argparse
import importlib.util
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from monctl import services  # noqa: E402

GOAL_SECONDS = 1.3


def slow_server(delay: float) -> ThreadingHTTPServer:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            time.sleep(delay)
            # Healthy answers for every probe kind: JSON for Grafana, pg_up for the exporter.
            body = b'{"database": "ok"}' if self.path == "/api/health" else b"pg_up 1\n"
            self.send_response(200)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def check_in_process(project: Path, urls: dict[str, str]) -> float:
    """Seconds one `health.check` takes in this process (no interpreter start-up)."""
    from monctl.health import check
    from monctl.project import Project
    from monctl.runtime.compose import ComposeRuntime

    saved = dict(os.environ)
    os.environ.update({services.get(name).url_var: url for name, url in urls.items()})
    try:
        started = time.perf_counter()
        bench_project = Project(project, "monctlbench")
        report = check.check(
            bench_project, ComposeRuntime(bench_project), tuple(services.SERVICES), deep=False
        )
        elapsed = time.perf_counter() - started
    finally:
        os.environ.clear()
        os.environ.update(saved)
    if not report.ok:
        raise SystemExit(f"in-process check not healthy: {report.summary()}")
    return elapsed


def timed(argv: list[str], env: dict[str, str]) -> tuple[float, int]:
    started = time.perf_counter()
    proc = subprocess.run(argv, env=env, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if proc.returncode != 0:
        sys.stderr.write(f"{argv[0]} exited {proc.returncode}:\n{proc.stdout}{proc.stderr}\n")
    return elapsed, proc.returncode


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=5, help="runs of monctl health (median)")
    parser.add_argument("--curl-runs", type=int, default=1, help="runs of the curl loop")
    parser.add_argument("--delay", type=float, default=1.0, help="seconds each answer takes")
    args = parser.parse_args()

    servers = {s.name: slow_server(args.delay) for s in services.SERVICES}
    urls = {name: f"http://127.0.0.1:{srv.server_address[1]}" for name, srv in servers.items()}
    project = Path(tempfile.mkdtemp(prefix="monctl-bench-"))
    (project / "compose").mkdir()
    (project / "compose" / "docker-compose.monitoring.yml").write_text("services: {}\n")
    env = dict(os.environ, NO_COLOR="1")
    # As startup_bench.py: monctl's bytecode written once and reused, as on a used machine.
    if env.pop("PYTHONDONTWRITEBYTECODE", None):
        print("note: PYTHONDONTWRITEBYTECODE is set here: not for the monctl runs")
    env.update({services.get(name).url_var: url for name, url in urls.items()})
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO), env.get("PYTHONPATH")]))

    probes = sum(
        1 + (s.readiness is not None and s.readiness.path != s.liveness.path)
        for s in services.SERVICES
    )
    monctl = [sys.executable, "-m", "monctl", "--project-dir", str(project)]
    monctl += ["--project-name", "monctlbench", "health", "--no-deep"]
    timed(monctl, env)  # warm the file cache and bytecode
    runs = [timed(monctl, env) for _ in range(args.runs)]
    if any(code != 0 for _, code in runs):
        print("monctl health did not report the slow stack healthy: figures are void")
        return 1
    monctl_s = statistics.median(t for t, _ in runs)

    bare_s = statistics.median(timed([sys.executable, "-c", "pass"], env)[0] for _ in range(5))
    in_process_s = statistics.median(check_in_process(project, urls) for _ in range(args.runs))

    curl = shutil.which("curl")
    curl_s = None
    if curl:
        # The replaced script: one curl per endpoint, sequentially (liveness only).
        loop = "; ".join(
            f"{curl} -s -o /dev/null -m 10 {urls[s.name]}{s.liveness.path}"
            for s in services.SERVICES
        )
        curl_s = statistics.median(timed(["sh", "-c", loop], env)[0] for _ in range(args.curl_runs))
    shutil.rmtree(project, ignore_errors=True)
    for server in servers.values():
        server.shutdown()

    n = len(services.SERVICES)
    print(f"{n} endpoints, each answering after {args.delay:g} s")
    print(f"{'method':<44} {'requests':>8} {'wall time':>10}")
    print(
        f"{'monctl health --no-deep (median of ' + str(args.runs) + ')':<44} "
        f"{probes:>8} {monctl_s:>9.2f}s"
    )
    if curl_s is not None:
        print(f"{'sequential curl loop (replaced script)':<44} {n:>8} {curl_s:>9.2f}s")
        print(
            f"ratio curl loop / monctl: {curl_s / monctl_s:.1f}x "
            f"(monctl also asks {probes - n} readiness endpoints the loop never did)"
        )
    else:
        print("curl not installed: no side-by-side figure")
    verdict = "met" if monctl_s < GOAL_SECONDS * args.delay else "NOT met"
    print(f"goal: under {GOAL_SECONDS * args.delay:.2f}s wall time -> {verdict}")
    print(f"  of which a bare `python -c pass` takes            {bare_s:>9.2f}s")
    print(f"  monctl's check() alone, in process (median)        {in_process_s:>9.2f}s")
    if importlib.util.find_spec("trio") is not None:
        print("  note: trio is installed here; httpcore imports it when present (~0.25 s),")
        print("        though monctl never uses it (a clean install does not have it)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
