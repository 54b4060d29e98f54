"""A FAKE Docker engine answering the Swarm API of a multi-node swarm, which one machine
cannot build (no second engine; the engine refuses privileged containers, so no
Docker-in-Docker).

The answers are made by ``scenario`` with the field names and shapes of the real Engine
API 1.41 (as recorded from the single-node swarm of tests/e2e/test_swarm.py: services
with ``ServiceStatus``, tasks with ``Status.State/Err`` and ``DesiredState``, nodes with
``Description.Hostname``, gateway containers with ``Ports``). ``FakeEngine`` serves them
over HTTP on 127.0.0.1 (``DOCKER_HOST=tcp://...``), for the Docker SDK and for monctl's
own async reads alike, and counts the requests per path: how the round trips of
``monctl health`` were checked. Also a FAKE monitoring endpoint (``FakeServices``): every
single-task service's probes answer ready, and Prometheus' targets list the exporters of
every node. ``monctl`` runs the CLI in a subprocess against a ``FakeEngine``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
from collections import Counter
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse

from monctl import services
from monctl.project import Project
from support import REPO

STACK = "fakestack"
# Three nodes: enough for a task missing on one and data on another.
NODES = ["node-a", "node-b", "node-c"]
# /metrics of every FAKE service at once: pg_up and the reload metrics deep checks read.
METRICS = (
    b"pg_up 1\n"
    b"prometheus_config_last_reload_successful 1\n"
    b"alertmanager_config_last_reload_successful 1\n"
    b"alertmanager_notifications_failed_total 0\n"
    b"alertmanager_notifications_total 0\n"
)
TIME = "2026-11-30T10:00:00.000000000Z"


def _node(index: int, hostname: str, role: str = "manager", state: str = "ready") -> dict[str, Any]:
    return {
        "ID": f"node{index:03d}id",
        "Version": {"Index": 10},
        "Description": {"Hostname": hostname},
        "Spec": {"Role": role, "Availability": "active", "Labels": {}},
        "Status": {"State": state, "Addr": f"10.1.0.{index}"},
    }


def _service(name: str, every_node: bool, image: str) -> dict[str, Any]:
    mode: dict[str, Any] = {"Global": {}} if every_node else {"Replicated": {"Replicas": 1}}
    return {
        "ID": f"svc-{name}",
        "Version": {"Index": 20},
        "Spec": {
            "Name": f"{STACK}_{name}",
            "Labels": {"com.docker.stack.namespace": STACK},
            "Mode": mode,
            "TaskTemplate": {
                "ContainerSpec": {
                    "Image": f"{image}@sha256:{'0' * 64}",
                    "Healthcheck": {"Test": ["CMD", "wget", "http://127.0.0.1/"]},
                }
            },
        },
    }


def _task(
    service: str, node: str, index: int, state: str = "running", err: str = ""
) -> dict[str, Any]:
    status: dict[str, Any] = {"State": state, "Timestamp": TIME, "Message": state}
    if err:
        status["Err"] = err
    if state == "running":
        status["ContainerStatus"] = {"ContainerID": f"c-{service}-{node}", "PID": 100 + index}
    return {
        "ID": f"task-{service}-{node}-{index}",
        "Version": {"Index": 30 + index},
        "ServiceID": f"svc-{service}",
        "NodeID": node,
        "Slot": 0,
        "DesiredState": "running",
        "Status": status,
    }


@dataclass
class Scenario:
    nodes: list[dict[str, Any]]
    services: list[dict[str, Any]]
    tasks: list[dict[str, Any]]
    gateways: list[dict[str, Any]]
    local_node: str  # the hostname of the engine monctl talks to
    local_containers: list[dict[str, Any]] = field(default_factory=list)
    swarm_state: str = "active"
    manager: bool = True

    def info(self) -> dict[str, Any]:
        node = next((n for n in self.nodes if n["Description"]["Hostname"] == self.local_node), {})
        return {
            "Name": self.local_node,
            "ServerVersion": "20.10.24",
            "Swarm": {
                "LocalNodeState": self.swarm_state,
                "ControlAvailable": self.manager,
                "NodeID": node.get("ID", ""),
            },
        }


def scenario(
    hostnames: list[str],
    gateway_port: int = 0,
    *,
    missing: dict[str, str] | None = None,  # every-node service -> node without a task
    failing: dict[str, tuple[str, str]] | None = None,  # service -> (node, error)
    single_on: str | None = None,  # the node of the single-task services' tasks
) -> Scenario:
    """A swarm of ``hostnames`` (the first is the manager monctl talks to) running the
    declared services: every-node ones on every node, the others on ``single_on``."""
    nodes = [_node(i + 1, h, "manager" if i == 0 else "worker") for i, h in enumerate(hostnames)]
    ids = {n["Description"]["Hostname"]: n["ID"] for n in nodes}
    missing, failing = missing or {}, failing or {}
    docs, tasks, gateways = [], [], []
    for i, service in enumerate(services.SERVICES):
        every = service.placement == "every-node"
        doc = _service(service.name, every, f"example/{service.name}:1.0")
        where = hostnames if every else [single_on or hostnames[0]]
        running = 0
        for j, host in enumerate(where):
            if missing.get(service.name) == host:
                continue
            if failing.get(service.name, ("", ""))[0] == host:
                tasks.append(_task(service.name, ids[host], j, "failed", failing[service.name][1]))
                continue
            tasks.append(_task(service.name, ids[host], j))
            running += 1
        doc["ServiceStatus"] = {
            "RunningTasks": running,
            "DesiredTasks": len(where),
            "CompletedTasks": 0,
        }
        docs.append(doc)
        if not every and gateway_port:
            gateways.append(
                {
                    "Id": f"gw-{i}",
                    "State": "running",
                    "Labels": {
                        "org.monctl.gateway": STACK,
                        "org.monctl.gateway.service": service.name,
                    },
                    "Ports": [
                        {
                            "IP": "127.0.0.1",
                            "PrivatePort": service.container_port,
                            "PublicPort": gateway_port,
                            "Type": "tcp",
                        }
                    ],
                }
            )
    return Scenario(nodes, docs, tasks, gateways, hostnames[0])


class FakeEngine:
    """A FAKE engine serving ``scenario`` on 127.0.0.1; ``requests`` counts paths."""

    def __init__(self, world: Scenario) -> None:
        self.world = world
        self.requests: Counter[str] = Counter()
        engine = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def do_GET(self) -> None:
                url = urlparse(self.path)
                path = re.sub(r"^/v\d+\.\d+", "", url.path)
                engine.requests[path] += 1
                query = parse_qs(url.query)
                status, body = engine.answer(path, query)
                data = body if isinstance(body, bytes) else json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Api-Version", "1.41")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            do_HEAD = do_GET

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def host(self) -> str:
        return f"tcp://127.0.0.1:{self.server.server_address[1]}"

    def __enter__(self) -> FakeEngine:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()

    def answer(self, path: str, query: dict[str, list[str]]) -> tuple[int, Any]:
        w = self.world
        if path == "/_ping":
            return 200, b"OK"
        if path == "/version":
            return 200, {"ApiVersion": "1.41", "Version": "20.10.24", "MinAPIVersion": "1.12"}
        if path == "/info":
            return 200, w.info()
        if path in ("/services", "/tasks", "/nodes") and not w.manager:
            return 503, {"message": "This node is not a swarm manager."}
        if path == "/services":
            return 200, w.services
        if path == "/tasks":
            return 200, w.tasks
        if path == "/nodes":
            return 200, w.nodes
        if path == "/containers/json":
            labels = json.loads((query.get("filters") or ["{}"])[0]).get("label", [])
            if any(label.startswith("org.monctl.gateway=") for label in labels):
                return 200, w.gateways
            return 200, w.local_containers
        return 404, {"message": f"page not found: {path}"}


class FakeServices:
    """A FAKE of every single-task service's HTTP side on one port: liveness and
    readiness answer 200, and ``/api/v1/targets`` (Prometheus) lists one target per
    node of every every-node service, up. ``requests`` counts paths."""

    def __init__(self, hostnames: list[str]) -> None:
        self.requests: Counter[str] = Counter()
        every = [s.name for s in services.SERVICES if s.placement == "every-node"]
        targets = [
            {
                "labels": {"job": job, "instance": host, "node": host},
                "scrapePool": job,
                "scrapeUrl": "http://10.0.0.1:1/metrics",
                "health": "up",
                "lastError": "",
            }
            for job in every
            for host in hostnames
        ]
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args: Any) -> None:
                pass

            def _reply(self, status: int, body: bytes, kind: str = "text/plain") -> None:
                self.send_response(status)
                self.send_header("Content-Type", kind)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def do_GET(self) -> None:
                path = urlparse(self.path).path
                owner.requests[path] += 1
                if path == "/api/v1/targets":
                    doc = {"status": "success", "data": {"activeTargets": targets}}
                    return self._reply(200, json.dumps(doc).encode(), "application/json")
                if path == "/api/health":
                    return self._reply(200, b'{"database": "ok"}', "application/json")
                if path == "/metrics":
                    return self._reply(200, METRICS)
                if path == "/api/v1/rules":
                    doc = {"status": "success", "data": {"groups": []}}
                    return self._reply(200, json.dumps(doc).encode(), "application/json")
                if path == "/api/v1/alerts":
                    doc = {"status": "success", "data": {"alerts": []}}
                    return self._reply(200, json.dumps(doc).encode(), "application/json")
                if path == "/api/v2/alerts":
                    return self._reply(200, b"[]", "application/json")
                return self._reply(200, b"OK")

            def do_POST(self) -> None:
                owner.requests["POST " + urlparse(self.path).path] += 1
                self._reply(204, b"")

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def __enter__(self) -> FakeServices:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.server.shutdown()
        self.server.server_close()


def monctl(project: Project, engine: FakeEngine, *args: str) -> subprocess.CompletedProcess[str]:
    """``python -m monctl`` as an operator runs it, talking to the fake engine."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("MONCTL_", "DOCKER_"))}
    env.update(DOCKER_HOST=engine.host, NO_COLOR="1", COLUMNS="200", PYTHONPATH=str(REPO))
    argv = [sys.executable, "-m", "monctl", "--project-dir", str(project.root)]
    argv += ["--project-name", STACK, *args]
    return subprocess.run(argv, capture_output=True, text=True, env=env, timeout=120, check=False)
