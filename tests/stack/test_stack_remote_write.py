"""The remote_write switch of config/prometheus/prometheus*.yml (docs/swarm-and-scaling.md,
"Scaling out"): done exactly as the comment says (the "# " removed from its five lines, the url
set), the configuration is valid, and a real Prometheus sends its samples to a real receiver
(a second Debian Prometheus with --web.enable-remote-write-receiver, standing in for
Mimir, Thanos Receive or VictoriaMetrics: the same protocol)."""

from __future__ import annotations

import re
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from support import free_ports, require_binary
from support.reload_servers import Server
from support.stack_files import PROM_DIR, prometheus_config_copy

pytestmark = pytest.mark.binaries

SWITCH = re.compile(r"^# (remote_write:\n(?:# .*\n){4})", re.M)


def switched_on(text: str, url: str) -> str:
    """The configuration with the remote_write block uncommented, as the docs say."""
    match = SWITCH.search(text)
    assert match, "no commented remote_write block of five lines"
    lines = [line[2:] for line in match.group(0).splitlines()]
    block = "\n".join(lines).replace("https://metrics.example.org/api/v1/push", url)
    return text[: match.start()] + block + "\n" + text[match.end() :]


@pytest.mark.parametrize("name", ["prometheus.yml", "prometheus-swarm.yml"])
def test_the_switch_is_valid_in_both_configurations(name: str, tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    config = tmp_path / name
    config.write_text(switched_on((PROM_DIR / name).read_text(), "http://127.0.0.1:1/push"))
    result = subprocess.run(
        [promtool, "check", "config", "--syntax-only", str(config)],
        capture_output=True,
        text=True,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "remote_write:\n  - url: http://127.0.0.1:1/push" in config.read_text()


def test_samples_reach_the_long_term_store(tmp_path: Path) -> None:
    binary = require_binary("prometheus")
    store_port, sender_port = free_ports(2)
    store_dir = tmp_path / "store"
    store_dir.mkdir()
    (store_dir / "empty.yml").write_text("global: {}\n")
    store = Server(
        binary,
        store_dir,
        store_port,
        store_dir / "empty.yml",
        [
            f"--config.file={store_dir / 'empty.yml'}",
            f"--storage.tsdb.path={store_dir / 'data'}",
            f"--web.listen-address=127.0.0.1:{store_port}",
            "--web.enable-remote-write-receiver",
        ],
    )
    config = prometheus_config_copy(tmp_path)
    text = switched_on(config.read_text(), f"http://127.0.0.1:{store_port}/api/v1/write")
    # Scrape this Prometheus itself (the stack's other targets do not exist here).
    text = text.replace("['prometheus:9090']", f"['127.0.0.1:{sender_port}']")
    text = text.replace("scrape_interval: 15s", "scrape_interval: 1s")
    config.write_text(text.replace("scrape_timeout: 10s", "scrape_timeout: 1s"))
    sender = Server(
        binary,
        config.parent,
        sender_port,
        config,
        [
            f"--config.file={config}",
            f"--storage.tsdb.path={tmp_path / 'sender-data'}",
            f"--web.listen-address=127.0.0.1:{sender_port}",
        ],
    )
    store.start()
    try:
        sender.start()
        try:
            query = f"{store.url}/api/v1/query"
            params = {"query": 'up{job="prometheus",monitor="residency-scheduler"}'}
            deadline = time.monotonic() + 60
            found: list[object] = []
            while time.monotonic() < deadline and not found:
                found = httpx.get(query, params=params, timeout=5).json()["data"]["result"]
                time.sleep(1)
            assert found, f"no sample reached the store:\n{sender.log.read_text()[-2000:]}"
        finally:
            sender.stop()
    finally:
        store.stop()
