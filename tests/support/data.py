"""The data inside a running test stack's volumes, for the backup/restore end-to-end tests.

Their stack (``data_stack`` in tests/e2e/conftest.py) runs the four services that
keep data (Prometheus and Alertmanager: Debian's real binaries; Grafana and Loki:
stand-ins). Volumes are read and written through helper containers of the test
base image (it has a shell), never through the services' own images: the Loki
image, like upstream's, has none.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import subprocess
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from support import require
from support.engine import Result, Stack, docker

DATA_SERVICES = ("prometheus", "alertmanager", "grafana", "loki")
PATHS = {
    "prometheus": "/prometheus",
    "alertmanager": "/alertmanager",
    "grafana": "/var/lib/grafana",
    "loki": "/loki",
}
OWNERS = {"prometheus": "65534", "alertmanager": "65534", "grafana": "472", "loki": "10001"}


def explain(result: Result) -> str:
    return f"exit {result.code}\n--- stdout\n{result.out}\n--- stderr\n{result.err}"


def container(stack: Stack, service: str) -> str:
    cid = stack.compose("ps", "-q", "--all", service).out.strip()
    assert cid, f"{service} has no container"
    return cid.splitlines()[0]


def sh(stack: Stack, service: str, script: str) -> str:
    """Run ``script`` inside the service's running container (not Loki's: no shell there)."""
    result = docker("exec", container(stack, service), "sh", "-c", script)
    assert result.code == 0, f"{service}: {script}\n{result.err}"
    return result.out


def inspect(stack: Stack, service: str, fmt: str) -> str:
    return docker("inspect", "-f", fmt, container(stack, service)).out.strip()


def volume(stack: Stack, service: str) -> str:
    return f"{stack.project_name}_{service}_data"


# The test base image (Debian minbase + busybox): it has a shell, whatever the service's has.
HELPER_IMAGE = "monctl-test/base:local"


def in_volume(stack: Stack, service: str, script: str, *extra: str) -> Result:
    """Run ``script`` as root in a helper container with the service's volume at /target."""
    return docker(
        "run", "--rm", "--user", "0", "--entrypoint", "sh", "--network", "none",
        "-v", f"{volume(stack, service)}:/target", *extra, HELPER_IMAGE, "-c", script,
        timeout=120,
    )  # fmt: skip


def volume_file(stack: Stack, service: str, pattern: str) -> str:
    """The contents of the files matching ``pattern`` (a shell glob under /target)."""
    return in_volume(stack, service, f"cat {pattern} 2>/dev/null || true").out


def fingerprint(stack: Stack, service: str) -> str:
    """Names, owners, sizes and sha256 of every file in the service's volume."""
    result = in_volume(
        stack,
        service,
        "cd /target && find . -exec stat -c '%n %u:%g %a %s %Y' {} + | sort"
        " && find . -type f -exec sha256sum {} + | sort",
    )
    assert result.code == 0, result.err
    return result.out


def wipe(stack: Stack, service: str) -> None:
    """Stop the service, empty its volume, start it again and wait until it is ready."""
    assert stack.compose("stop", service).code == 0
    result = in_volume(stack, service, "rm -rf /target/* /target/.[!.]* && ls -A /target")
    assert result.code == 0 and not result.out.strip(), result.err + result.out
    assert stack.compose("start", service).code == 0
    wait_ready(stack, service)


READY = {
    "prometheus": "/-/ready",
    "alertmanager": "/-/ready",
    "grafana": "/api/health",
    "loki": "/ready",
}


def wait_ready(stack: Stack, service: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    last = ""
    while time.monotonic() < deadline:
        request = urllib.request.Request(stack.url(service) + READY[service])
        if service in ("prometheus", "alertmanager"):  # they require the stack's credentials
            user, password = stack.basic_auth()
            token = base64.b64encode(f"{user}:{password}".encode()).decode()
            request.add_header("Authorization", f"Basic {token}")
        try:
            with urllib.request.urlopen(request, timeout=3) as r:
                if r.status == 200:
                    return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(0.5)
    pytest.fail(f"{service} not ready after {timeout}s: {last}", False)


def http_json(
    url: str, method: str = "GET", body: Any = None, auth: tuple[str, str] | None = None
) -> Any:
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method)
    if data is not None:
        req.add_header("Content-Type", "application/json")
    if auth is not None:
        token = base64.b64encode(f"{auth[0]}:{auth[1]}".encode()).decode()
        req.add_header("Authorization", f"Basic {token}")
    with urllib.request.urlopen(req, timeout=10) as r:
        text = r.read()
    return json.loads(text) if text.strip() else None


def prom_query(stack: Stack, expr: str, at: float) -> list[tuple[str, str]]:
    """The instant query's result as sorted (labels, value) pairs."""
    q = urllib.parse.urlencode({"query": expr, "time": f"{at:.3f}"})
    doc = http_json(f"{stack.url('prometheus')}/api/v1/query?{q}", auth=stack.basic_auth())
    assert doc["status"] == "success", doc
    return sorted(
        (json.dumps(r["metric"], sort_keys=True), r["value"][1]) for r in doc["data"]["result"]
    )


def openmetrics(path: Path, start: int, end: int, step: int = 60) -> None:
    """Known series: monctl_test_known{case} = a function of the timestamp (seconds)."""
    lines = ["# HELP monctl_test_known Known values for the backup round trip.",
             "# TYPE monctl_test_known gauge"]  # fmt: skip
    for case in ("a", "b", "c"):
        for t in range(start, end, step):
            value = (t // step) % 977 + ord(case) / 100
            lines.append(f'monctl_test_known{{case="{case}"}} {value} {t}')
    lines.append("# EOF")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")


def load_blocks(stack: Stack, work: Path, start: int, end: int) -> None:
    """Write real TSDB blocks (promtool) of the known series into Prometheus' volume."""
    promtool = shutil.which("promtool")
    require(promtool, "promtool is not installed (Debian package prometheus)")
    assert promtool is not None
    om, blocks = work / "known.om", work / "blocks"
    openmetrics(om, start, end)
    blocks.mkdir()
    done = subprocess.run(
        [promtool, "tsdb", "create-blocks-from", "openmetrics", str(om), str(blocks)],
        capture_output=True, text=True, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert any(blocks.iterdir()), "promtool wrote no blocks"
    os.chmod(blocks, 0o755)
    assert stack.compose("stop", "prometheus").code == 0
    copy = in_volume(
        stack, "prometheus", "cp -a /src/. /target/ && chown -R 65534:65534 /target",
        "-v", f"{blocks}:/src:ro",
    )  # fmt: skip
    assert copy.code == 0, copy.err
    assert stack.compose("start", "prometheus").code == 0
    wait_ready(stack, "prometheus")


def no_paused(stack: Stack) -> list[str]:
    """Services of the stack that are paused (should be none, ever, after a run)."""
    return [s for s in DATA_SERVICES if inspect(stack, s, "{{.State.Status}}") == "paused"]


def snapshots(stack: Stack) -> str:
    return sh(stack, "prometheus", "ls -A /prometheus/snapshots 2>/dev/null || true").strip()
