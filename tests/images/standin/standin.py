#!/usr/bin/env python3
"""Stand-in HTTP servers for the parts of the stack with no binary on the CI machine.

Grafana, Loki, Promtail and cAdvisor have no Debian package and no image can be
pulled in CI, so the end-to-end tests run these STAND-INS instead. Each one answers
the endpoints documented in docs/../shared/reference/endpoints.md the way upstream
does (status codes, bodies, the data directories and uids), and nothing more: they
store no real metrics, logs or dashboards. Never read a passing test against a
stand-in as proof about the real program.

    standin.py --role grafana|loki|promtail|cadvisor [upstream flags, ignored]

Standard library only (the test base image has python3 and nothing else).
"""

from __future__ import annotations

import argparse
import base64
import glob
import hashlib
import hmac
import http.client
import json
import os
import re
import secrets
import signal
import socket
import sqlite3
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

STANDIN_VERSION = os.environ.get("STANDIN_VERSION", "0.0.0-standin")
STARTED = time.monotonic()
STARTED_WALL = time.time()

DEFAULT_PORTS = {"grafana": 3000, "loki": 3100, "promtail": 9080, "cadvisor": 8080}


def log(msg: str) -> None:
    sys.stderr.write(f"standin: {msg}\n")
    sys.stderr.flush()


class Reply:
    def __init__(
        self, status: int, body: str | bytes = b"", ctype: str = "text/plain; charset=utf-8"
    ) -> None:
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.ctype = ctype

    @classmethod
    def json(cls, status: int, doc: Any) -> Reply:
        return cls(status, json.dumps(doc) + "\n", "application/json")


def metrics_text(lines: list[str]) -> Reply:
    body = "# stand-in: these series are made up by a test stand-in, not measured\n"
    body += "\n".join(lines) + "\n"
    return Reply(200, body, "text/plain; version=0.0.4; charset=utf-8")


# --------------------------------------------------------------------------- grafana


class Grafana:
    """Grafana stand-in: health, admin-authenticated provisioning reloads, a real SQLite DB."""

    def __init__(self, args: argparse.Namespace, extra: list[str]) -> None:
        self.data = Path(os.environ.get("GF_PATHS_DATA", "/var/lib/grafana"))
        self.db = self.data / "grafana.db"
        self.provisioning = Path(
            os.environ.get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning")
        )
        self.reloads = 0
        self.init_db()

    @staticmethod
    def _hash(password: str, salt: str) -> str:
        return hashlib.pbkdf2_hmac("sha256", password.encode(), salt.encode(), 10_000).hex()

    def init_db(self) -> None:
        """Like Grafana: create the DB on first start and set the admin password from env
        only then (a later change of GF_SECURITY_ADMIN_PASSWORD does not apply)."""
        self.data.mkdir(parents=True, exist_ok=True)
        fresh = not self.db.exists()
        con = sqlite3.connect(self.db)
        try:
            con.execute(
                "CREATE TABLE IF NOT EXISTS user (id INTEGER PRIMARY KEY, login TEXT UNIQUE,"
                " password TEXT, salt TEXT, is_admin INTEGER, created TEXT)"
            )
            con.execute(
                "CREATE TABLE IF NOT EXISTS standin_info (key TEXT PRIMARY KEY, value TEXT)"
            )
            if fresh or con.execute("SELECT COUNT(*) FROM user").fetchone()[0] == 0:
                user = os.environ.get("GF_SECURITY_ADMIN_USER") or "admin"
                password = os.environ.get("GF_SECURITY_ADMIN_PASSWORD") or "admin"
                salt = secrets.token_hex(8)
                con.execute(
                    "INSERT OR REPLACE INTO user (id, login, password, salt, is_admin, created)"
                    " VALUES (1, ?, ?, ?, 1, datetime('now'))",
                    (user, self._hash(password, salt), salt),
                )
                con.execute(
                    "INSERT OR REPLACE INTO standin_info VALUES ('created_by', ?)",
                    (f"grafana stand-in {STANDIN_VERSION}",),
                )
                log(f"created {self.db} with admin user {user!r}")
            con.commit()
        finally:
            con.close()

    def db_ok(self) -> bool:
        try:
            con = sqlite3.connect(f"file:{self.db}?mode=rw", uri=True, timeout=2)
            try:
                con.execute("SELECT COUNT(*) FROM user").fetchone()
            finally:
                con.close()
            return True
        except sqlite3.Error as exc:
            log(f"database check failed: {exc}")
            return False

    def authorised(self, header: str | None) -> bool:
        if not header or not header.startswith("Basic "):
            return False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return False
        try:
            con = sqlite3.connect(self.db, timeout=2)
            try:
                row = con.execute(
                    "SELECT password, salt FROM user WHERE login = ? AND is_admin = 1", (user,)
                ).fetchone()
            finally:
                con.close()
        except sqlite3.Error:
            return False
        return bool(row) and hmac.compare_digest(row[0], self._hash(password, row[1]))

    def dashboard_paths(self) -> list[Path]:
        """Folders named by `path:` in the dashboard providers (a YAML-free reading)."""
        paths: list[Path] = []
        for provider in sorted(self.provisioning.glob("dashboards/*.y*ml")):
            for line in provider.read_text(encoding="utf-8", errors="replace").splitlines():
                m = re.match(r"^\s*(?:-\s*)?path:\s*['\"]?([^'\"#]+?)['\"]?\s*(?:#.*)?$", line)
                if m:
                    paths.append(Path(os.path.expandvars(m.group(1))))
        return paths

    def reload(self, kind: str) -> Reply:
        if kind == "dashboards":
            for folder in self.dashboard_paths():
                for file in sorted(folder.rglob("*.json")) if folder.is_dir() else []:
                    try:
                        json.loads(file.read_text(encoding="utf-8"))
                    except (OSError, ValueError) as exc:
                        return Reply.json(
                            500, {"message": f"Failed to reload dashboards: {file}: {exc}"}
                        )
        self.reloads += 1
        return Reply.json(200, {"message": f"{kind.capitalize()} config reloaded"})

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> Reply:
        if path == "/healthz":
            return Reply(200, "Ok")
        if path == "/api/health":
            ok = self.db_ok()
            doc = {"commit": "standin", "database": "ok" if ok else "failing"}
            doc["version"] = STANDIN_VERSION
            return Reply.json(200 if ok else 503, doc)
        m = re.fullmatch(
            r"/api/admin/provisioning/(dashboards|datasources|plugins|alerting)/reload", path
        )
        if m:
            if method != "POST":
                return Reply.json(405, {"message": "Method Not Allowed"})
            if not self.authorised(headers.get("Authorization")):
                return Reply.json(401, {"message": "invalid username or password"})
            return self.reload(m.group(1))
        if path == "/metrics":
            return metrics_text(
                [
                    f'grafana_build_info{{version="{STANDIN_VERSION}",edition="standin"}} 1',
                    f"grafana_standin_provisioning_reloads_total {self.reloads}",
                ]
            )
        return Reply.json(404, {"message": "Not found"})


# --------------------------------------------------------------------------- loki


class Loki:
    """Loki stand-in: min-ready delay, push kept in memory, /flush writes it under /loki/chunks."""

    def __init__(self, args: argparse.Namespace, extra: list[str]) -> None:
        self.data = Path(os.environ.get("STANDIN_LOKI_DIR", "/loki"))
        self.chunks = self.data / "chunks"
        self.chunks.mkdir(parents=True, exist_ok=True)
        self.min_ready = float(os.environ.get("STANDIN_MIN_READY_SECONDS", "3"))
        self.pending: list[Any] = []
        self.lock = threading.Lock()
        self.lines = 0
        self.flushed = 0

    def flush(self) -> None:
        with self.lock:
            if not self.pending:
                return
            name = self.chunks / f"standin-{time.time_ns()}.json"
            tmp = name.with_suffix(".tmp")
            tmp.write_text(json.dumps(self.pending) + "\n", encoding="utf-8")
            os.replace(tmp, name)
            self.pending = []
            self.flushed += 1
            log(f"flushed to {name}")

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> Reply:
        if path == "/ready":
            if time.monotonic() - STARTED < self.min_ready:
                return Reply(
                    503, f"Ingester not ready: waiting for {self.min_ready:g}s after being ready\n"
                )
            return Reply(200, "ready\n")
        if path == "/metrics":
            with self.lock:
                pending = len(self.pending)
            return metrics_text(
                [
                    f'loki_build_info{{version="{STANDIN_VERSION}",revision="standin"}} 1',
                    f'loki_distributor_lines_received_total{{tenant="fake"}} {self.lines}',
                    f'loki_ingester_chunks_flushed_total{{reason="forced"}} {self.flushed}',
                    f"loki_standin_pending_pushes {pending}",
                ]
            )
        if path == "/flush":
            if method != "POST":
                return Reply(405, "405 method not allowed\n")
            self.flush()
            return Reply(204)
        if path == "/loki/api/v1/push":
            if method != "POST":
                return Reply(405, "405 method not allowed\n")
            try:
                doc: Any = json.loads(body or b"null")
                for stream in doc.get("streams", []) if isinstance(doc, dict) else []:
                    self.lines += len(stream.get("values", []))
            except ValueError:  # promtail's snappy protobuf: kept as bytes
                doc = {"raw_b64": base64.b64encode(body).decode()}
            with self.lock:
                self.pending.append(doc)
            return Reply(204)
        if path == "/loki/api/v1/status/buildinfo":
            return Reply.json(
                200,
                {
                    "version": STANDIN_VERSION,
                    "revision": "standin",
                    "branch": "standin",
                    "goVersion": "",
                },
            )
        return Reply(404, "404 page not found\n")

    def stop(self) -> None:
        self.flush()


# --------------------------------------------------------------------------- promtail


class Promtail:
    """Promtail stand-in: ready when it has something to tail; /reload only when enabled."""

    def __init__(self, args: argparse.Namespace, extra: list[str]) -> None:
        self.runtime_reload = any(
            a.lstrip("-").split("=")[0] == "server.enable-runtime-reload"
            and not a.endswith("=false")
            for a in extra
        )
        self.config = args.config_file
        self.ok_reloads = 0
        self.failed_reloads = 0

    def log_globs(self) -> list[str]:
        if not self.config:
            return ["/var/log/*log"]
        try:
            text = Path(self.config).read_text(encoding="utf-8", errors="replace")
        except OSError:
            return []
        return re.findall(r"__path__:\s*['\"]?([^'\"\s#]+)", text)

    def ready(self) -> bool:
        if Path("/var/run/docker.sock").exists():
            return True
        return any(glob.glob(pattern, recursive=True) for pattern in self.log_globs())

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> Reply:
        if path == "/ready":
            if self.ready():
                return Reply(200, "Ready")
            return Reply(
                500,
                "Not ready: Unable to find any logs to tail. Please verify permissions, "
                "volumes, scrape_config, etc.",
            )
        if path == "/metrics":
            return metrics_text(
                [
                    f'promtail_build_info{{version="{STANDIN_VERSION}",revision="standin"}} 1',
                    f"promtail_config_reload_success_total {self.ok_reloads}",
                    f"promtail_config_reload_fail_total {self.failed_reloads}",
                ]
            )
        if path == "/reload":
            if not self.runtime_reload:
                return Reply(404, "404 page not found\n")
            if self.config and not Path(self.config).is_file():
                self.failed_reloads += 1
                return Reply(500, f"failed to reload config: open {self.config}: no such file\n")
            self.ok_reloads += 1
            return Reply(200, "")
        return Reply(404, "404 page not found\n")


# --------------------------------------------------------------------------- cadvisor


def docker_containers() -> list[dict[str, Any]]:
    """The containers of the Docker engine when its socket is mounted, else []."""
    sock_path = "/var/run/docker.sock"
    if not os.path.exists(sock_path):
        return []

    class UnixConnection(http.client.HTTPConnection):
        def connect(self) -> None:
            self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
            self.sock.settimeout(2)
            self.sock.connect(sock_path)

    try:
        conn = UnixConnection("localhost", timeout=2)
        conn.request("GET", "/containers/json")
        resp = conn.getresponse()
        data = json.loads(resp.read()) if resp.status == 200 else []
        conn.close()
        return data if isinstance(data, list) else []
    except (OSError, ValueError):
        return []


class Cadvisor:
    """cAdvisor stand-in: /healthz and a few container_* series with made-up values."""

    def __init__(self, args: argparse.Namespace, extra: list[str]) -> None:
        pass

    def handle(self, method: str, path: str, headers: Any, body: bytes) -> Reply:
        if path == "/healthz":
            return Reply(200, "ok")
        if path == "/metrics":
            now = time.time()
            up = time.monotonic() - STARTED
            rows = [("/", "", "")]
            for c in docker_containers():
                names = c.get("Names") or ["/" + c.get("Id", "")[:12]]
                rows.append(
                    (f"/docker/{c.get('Id', '')}", names[0].lstrip("/"), c.get("Image", ""))
                )
            if len(rows) == 1:
                rows.append(("/docker/standin", socket.gethostname(), "cadvisor-standin"))
            lines = [
                f'cadvisor_version_info{{cadvisorVersion="{STANDIN_VERSION}",'
                f'cadvisorRevision="standin"}} 1'
            ]
            for cid, name, image in rows:
                labels = f'id="{cid}",image="{image}",name="{name}"'
                lines.append(f'container_cpu_usage_seconds_total{{cpu="total",{labels}}} {up:.3f}')
                lines.append(f"container_memory_usage_bytes{{{labels}}} 16777216")
                lines.append(f"container_last_seen{{{labels}}} {now:.3f}")
            return metrics_text(lines)
        return Reply(404, "404 page not found\n")


ROLES = {"grafana": Grafana, "loki": Loki, "promtail": Promtail, "cadvisor": Cadvisor}


# --------------------------------------------------------------------------- server


def make_handler(role: Any) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        server_version = "standin"

        def _serve(self, method: str) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            path = self.path.split("?", 1)[0]
            try:
                reply = role.handle(method, path, self.headers, body)
            except Exception as exc:  # a stand-in bug must show, not hang the client
                reply = Reply(500, f"stand-in error: {exc!r}\n")
            self.send_response(reply.status)
            if reply.status != 204:
                self.send_header("Content-Type", reply.ctype)
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if method != "HEAD" and reply.status != 204:
                self.wfile.write(reply.body)

        def do_GET(self) -> None:
            self._serve("GET")

        def do_HEAD(self) -> None:
            self._serve("HEAD")

        def do_POST(self) -> None:
            self._serve("POST")

        def do_PUT(self) -> None:
            self._serve("PUT")

        def do_DELETE(self) -> None:
            self._serve("DELETE")

    return Handler


class DualStackServer(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True
    address_family = socket.AF_INET6

    def server_bind(self) -> None:
        self.socket.setsockopt(socket.IPPROTO_IPV6, socket.IPV6_V6ONLY, 0)
        super().server_bind()


class V4Server(ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True


def port_from(role_name: str, extra: list[str], explicit: int | None) -> int:
    if explicit:
        return explicit
    if role_name == "grafana" and os.environ.get("GF_SERVER_HTTP_PORT"):
        return int(os.environ["GF_SERVER_HTTP_PORT"])
    for arg in extra:
        m = re.fullmatch(r"--?(?:server\.http-listen-port|port)=(\d+)", arg)
        if m:
            return int(m.group(1))
    return DEFAULT_PORTS[role_name]


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="stand-in server for monctl's tests", allow_abbrev=False
    )
    parser.add_argument("--role", required=True, choices=sorted(ROLES))
    parser.add_argument("--listen-port", type=int, default=None)
    parser.add_argument("-config.file", "--config.file", dest="config_file", default=None)
    args, extra = parser.parse_known_args(argv)
    if extra:
        log(f"ignoring upstream arguments: {' '.join(extra)}")
    role = ROLES[args.role](args, extra)
    port = port_from(args.role, extra, args.listen_port)
    try:
        server: ThreadingHTTPServer = DualStackServer(("::", port), make_handler(role))
    except OSError:
        server = V4Server(("0.0.0.0", port), make_handler(role))

    def on_signal(signum: int, frame: Any) -> None:
        raise SystemExit(0)

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    log(f"{args.role} stand-in {STANDIN_VERSION} listening on port {port}")
    try:
        server.serve_forever(poll_interval=0.2)
    except SystemExit:
        log("stopping")
    finally:
        stop = getattr(role, "stop", None)
        if stop:
            stop()
        server.server_close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
