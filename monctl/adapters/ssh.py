"""``DOCKER_HOST=ssh://[user@]host[:port]``: the other machine, reached as the docker CLI does.

The Docker SDK is told to use the ``ssh`` program (``Engine``), like the docker
CLI, so the operator's own ssh configuration, keys and agent apply. Published
ports live on *that* host's loopback (the stack publishes on 127.0.0.1 only),
so HTTP to the services goes through local port forwards of the same ``ssh``
(``Forwards``), one per port, closed when monctl exits.
"""

from __future__ import annotations

import atexit
import os
import socket
import subprocess
import time
from urllib.parse import urlparse

from monctl import runner
from monctl.errors import DockerUnavailable
from monctl.redaction import redact

CONNECT_TIMEOUT = 20.0


def target() -> str | None:
    """The ssh:// DOCKER_HOST, or None when monctl talks to a local (or tcp) engine."""
    host = os.environ.get("DOCKER_HOST") or ""
    return host if host.startswith("ssh://") else None


def _argv(url: str) -> list[str]:
    parsed = urlparse(url)
    if not parsed.hostname:
        raise DockerUnavailable(
            f"DOCKER_HOST={redact(url)} names no host", hint="use ssh://user@host[:port]"
        )
    destination = f"{parsed.username}@{parsed.hostname}" if parsed.username else parsed.hostname
    port = ["-p", str(parsed.port)] if parsed.port else []
    return ["ssh", "-o", "BatchMode=yes", *port, destination]


def run(url: str, argv: list[str], timeout: float = 60) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` on the host over ssh."""
    return runner.run([*_argv(url), "--", *argv], timeout=timeout)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class Forwards:
    """Local ports that lead to ``host:port`` addresses as seen from the ssh host."""

    def __init__(self, url: str) -> None:
        self.url = url
        self.ports: dict[tuple[str, int], int] = {}
        self.processes: list[subprocess.Popen[bytes]] = []
        atexit.register(self.close)

    def local(self, host: str, port: int) -> int:
        """The local port forwarded to ``host:port`` on the ssh host (opened on first use)."""
        key = (host, port)
        if key not in self.ports:
            self.ports[key] = self._open(host, port)
        return self.ports[key]

    def _open(self, host: str, port: int) -> int:
        local = _free_port()
        argv = _argv(self.url)
        argv[1:1] = [
            "-N",
            "-o",
            "ExitOnForwardFailure=yes",
            "-L",
            f"127.0.0.1:{local}:{host}:{port}",
        ]
        process = subprocess.Popen(
            argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE
        )
        self.processes.append(process)
        deadline = time.monotonic() + CONNECT_TIMEOUT
        while time.monotonic() < deadline:
            if process.poll() is not None:
                why = (process.stderr.read() if process.stderr else b"").decode(errors="replace")
                raise DockerUnavailable(
                    f"ssh could not forward a port to {host}:{port} on {redact(self.url)}: "
                    + (redact(why.strip().splitlines()[-1]) if why.strip() else "ssh exited"),
                    hint="check that `ssh` reaches the host without a prompt (keys, agent)",
                )
            with socket.socket() as probe:
                probe.settimeout(0.2)
                if probe.connect_ex(("127.0.0.1", local)) == 0:
                    return local
            time.sleep(0.05)
        raise DockerUnavailable(f"ssh did not open a forward to {host}:{port} within 20 s")

    def close(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=5)
                except subprocess.TimeoutExpired:
                    process.kill()
        self.processes.clear()
        self.ports.clear()
