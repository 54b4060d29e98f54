"""A real single-node Docker Swarm for the Swarm runtime's end-to-end tests.

``swarm_engine`` makes the test engine a swarm manager (``docker swarm init
--advertise-addr 127.0.0.1``) when it is not in a swarm, and leaves the swarm
again at the end, so the engine is left as it was found; an engine that is
already a manager is used as it is and left a manager. Compose keeps working
on an engine in swarm mode, so the other end-to-end tests are not disturbed.
``SwarmStack`` is a test stack (``support.engine.make_stack``) run with
``--runtime swarm``: its own stack name, free ports, the locally built images, and
quicker timing (``quicken``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from support import require
from support.engine import Result, Stack, docker, make_stack


def swarm_state() -> tuple[str, bool]:
    """(LocalNodeState, ControlAvailable) of the test engine."""
    out = docker("info", "--format", "{{json .Swarm}}").out.strip()
    info = json.loads(out or "{}")
    return str(info.get("LocalNodeState") or "inactive"), bool(info.get("ControlAvailable"))


@contextmanager
def swarm_engine() -> Iterator[bool]:
    """The engine as a swarm manager for the block; yields whether this made it one."""
    state, manager = swarm_state()
    require(
        state in ("inactive", "") or manager,
        f"the test engine is in a swarm but not a manager (state {state!r}): "
        "the Swarm tests need a manager",
    )
    created = not manager
    if created:
        init = docker("swarm", "init", "--advertise-addr", "127.0.0.1", timeout=120)
        require(init.code == 0, f"`docker swarm init` failed: {init.err.strip()[-300:]}")
    try:
        yield created
    finally:
        if created:
            docker("swarm", "leave", "--force", timeout=120)


@dataclass
class SwarmStack:
    stack: Stack

    @property
    def name(self) -> str:
        return self.stack.project_name

    @property
    def root(self) -> Path:
        return self.stack.root

    def monctl(self, *args: str, timeout: float = 600, env: dict[str, str] | None = None) -> Result:
        return self.stack.monctl("--runtime", "swarm", *args, timeout=timeout, env=env)

    def url(self, service: str) -> str:
        return self.stack.url(service)

    def service(self, service: str) -> dict[str, Any]:
        out = docker("service", "inspect", f"{self.name}_{service}").out
        found = json.loads(out or "[]")
        assert found, f"no Swarm service {self.name}_{service}"
        return dict(found[0])

    def teardown(self) -> None:
        """Remove everything of the stack, whatever state it is in."""
        docker("stack", "rm", self.name, timeout=120)
        gateways = docker("ps", "-aq", "--filter", f"label=org.monctl.gateway={self.name}").out
        if gateways.split():
            docker("rm", "-f", *gateways.split())
        label = f"label=com.docker.stack.namespace={self.name}"
        for _ in range(60):  # task containers hold their volumes until they are gone
            if not docker("ps", "-aq", "--filter", label).out.split():
                break
            docker("container", "prune", "-f", "--filter", label)
            import time

            time.sleep(1)
        volumes = docker("volume", "ls", "-q", "--filter", label).out.split()
        if volumes:
            docker("volume", "rm", "-f", *volumes)
        for kind in ("config", "secret"):
            left = docker(kind, "ls", "-q", "--filter", label).out.split()
            if left:
                docker(kind, "rm", *left)
        self.stack.teardown()


# The test stack's timing, in its own copy of the files (the shipped ones keep theirs; what
# runs and what is checked is the same, only sooner). Swarm counts a task as running only
# once its healthcheck has passed, and the first check comes one interval after the start:
# 15-30 s for every task Swarm starts (`up`, a rolled update, `credentials rotate`, a
# restore's scale back up). Prometheus finds the every-node tasks at each refresh of its
# Swarm discovery (30 s): the tasks started after it wait that long to be scraped.
HEALTHCHECK_INTERVAL = 2
DISCOVERY_REFRESH = "5s"
_INTERVAL = re.compile(r"^(\s+interval:) (\d+)s$")
_RETRIES = re.compile(r"^(\s+retries:) (\d+)$")
_REFRESH = re.compile(r"^(\s+refresh_interval:) \d+s$", re.M)


def quicken(root: Path) -> None:
    """Check the healthchecks every HEALTHCHECK_INTERVAL seconds in ``root``'s copy, with
    retries for as long as before (a task is as slow to be called unhealthy), and refresh
    Swarm discovery every DISCOVERY_REFRESH."""
    compose = root / "compose" / "docker-compose.monitoring.yml"
    lines, was, changed = [], 0, 0
    for line in compose.read_text(encoding="utf-8").splitlines():
        if found := _INTERVAL.match(line):
            was = int(found.group(2))
            line = f"{found.group(1)} {HEALTHCHECK_INTERVAL}s"
            changed += 1
        elif (found := _RETRIES.match(line)) and was:
            tolerated = was * int(found.group(2))  # seconds of failed checks before unhealthy
            line = f"{found.group(1)} {-(-tolerated // HEALTHCHECK_INTERVAL)}"
            was = 0
        lines.append(line)
    assert changed, f"{compose.name}: no healthcheck interval (the file changed: see quicken)"
    compose.write_text("\n".join(lines) + "\n", encoding="utf-8")
    prometheus = root / "config" / "prometheus" / "prometheus-swarm.yml"
    text, count = _REFRESH.subn(rf"\1 {DISCOVERY_REFRESH}", prometheus.read_text(encoding="utf-8"))
    assert count, f"{prometheus.name}: no refresh_interval (the file changed: see quicken)"
    prometheus.write_text(text, encoding="utf-8")


def make_swarm_stack(root: Path) -> SwarmStack:
    stack = make_stack(root)
    quicken(stack.root)
    return SwarmStack(stack)
