#!/usr/bin/env python3
"""Stand-in HTTP servers for the parts of the stack with no binary on the CI machine.

Grafana, Loki, Promtail and cAdvisor have no Debian package and no image can be
pulled in CI, so the end-to-end tests run these STAND-INS instead. Each one answers
the endpoints monctl uses the way the pinned upstream release does (status codes,
bodies, content types, the data directories and uids), and nothing more. They keep
only what the tests need: a real SQLite grafana.db (users, provisioned dashboards),
pushed log lines (memory, then flushed JSON files under /loki/chunks). Never read a
passing test against a stand-in as proof about the real program.

Every answer, and the upstream source it follows (or where it deliberately differs),
is listed in tests/images/standin/UPSTREAM.md. Keep the two in step.

    standin.py --role grafana|loki|promtail|cadvisor [upstream flags...]

Standard library only: the Loki image is distroless (python3, its stdlib and this
file; no shell), so nothing may be pip-installed or shelled out to.
"""

from __future__ import annotations

import argparse
import base64
import calendar
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
from urllib.parse import parse_qs

STANDIN_VERSION = os.environ.get("STANDIN_VERSION", "0.0.0-standin")
STARTED = time.monotonic()

DEFAULT_PORTS = {"grafana": 3000, "loki": 3100, "promtail": 9080, "cadvisor": 8080}


def log(msg: str) -> None:
    sys.stderr.write(f"standin: {msg}\n")
    sys.stderr.flush()


def rfc3339nano(t: float | None = None) -> str:
    """Go's time.RFC3339Nano in UTC (go-kit's DefaultTimestampUTC): trailing zeros trimmed."""
    ns = time.time_ns() if t is None else int(t * 1e9)
    secs, frac = divmod(ns, 1_000_000_000)
    base = time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(secs))
    digits = f"{frac:09d}".rstrip("0")
    return f"{base}.{digits}Z" if digits else f"{base}Z"


# --------------------------------------------------------------------------- replies


class Request:
    """One HTTP request as the roles see it (query and form already decoded)."""

    def __init__(self, method: str, target: str, headers: Any, body: bytes) -> None:
        self.method = method
        self.path, _, self.query_string = target.partition("?")
        self.headers = headers
        self.body = body
        self.query = parse_qs(self.query_string, keep_blank_values=True)
        # Go's r.ParseForm(): URL query plus an urlencoded POST body.
        self.form = {k: list(v) for k, v in self.query.items()}
        ctype = (headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if method in ("POST", "PUT", "PATCH") and ctype == "application/x-www-form-urlencoded":
            for k, v in parse_qs(body.decode("utf-8", "replace"), keep_blank_values=True).items():
                self.form[k] = v + self.form.get(k, [])

    def arg(self, name: str, default: str = "") -> str:
        values = self.form.get(name)
        return values[0] if values else default


class Reply:
    """Status, body, Content-Type (None: no header, as Go sends for an empty body) and headers."""

    def __init__(
        self,
        status: int,
        body: str | bytes = b"",
        ctype: str | None = "text/plain; charset=utf-8",
        headers: dict[str, str] | None = None,
    ) -> None:
        self.status = status
        self.body = body.encode() if isinstance(body, str) else body
        self.ctype = ctype
        self.headers = dict(headers or {})

    @classmethod
    def json(
        cls,
        status: int,
        doc: Any,
        ctype: str = "application/json",
        newline: bool = True,
        indent: int | None = None,
    ) -> Reply:
        # Go's json.Marshal is compact with no trailing newline; json.NewEncoder adds "\n".
        separators = (",", ": ") if indent else (",", ":")
        text = json.dumps(doc, indent=indent, separators=separators, ensure_ascii=False)
        return cls(status, text + ("\n" if newline else ""), ctype)


STATUS_TEXT = {303: "See Other", 307: "Temporary Redirect"}


def go_error(status: int, message: str) -> Reply:
    """net/http's http.Error: text/plain, nosniff, the message plus a newline."""
    return Reply(status, message + "\n", headers={"X-Content-Type-Options": "nosniff"})


def go_not_found() -> Reply:
    """net/http's NotFoundHandler (also gorilla/mux's default)."""
    return go_error(404, "404 page not found")


def mux_method_not_allowed() -> Reply:
    """gorilla/mux when the path matches but the method does not: status only, no body."""
    return Reply(405, b"", None)


def go_redirect(method: str, code: int, url: str) -> Reply:
    """net/http's http.Redirect: an HTML body only for GET, Content-Type for GET and HEAD."""
    if method not in ("GET", "HEAD"):
        return Reply(code, b"", None, {"Location": url})
    body = f'<a href="{url}">{STATUS_TEXT[code]}</a>.\n\n' if method == "GET" else ""
    return Reply(code, body, "text/html; charset=utf-8", {"Location": url})


def metrics_text(lines: list[str]) -> Reply:
    body = "# stand-in: these series are made up by a test stand-in, not measured\n"
    body += "\n".join(lines) + "\n"
    return Reply(200, body, "text/plain; version=0.0.4; charset=utf-8")


# --------------------------------------------------------------------------- flags


def go_flags(args: list[str], value_flags: set[str]) -> dict[str, str]:
    """Go's flag package as far as the stand-ins need it: -name / --name, -name=value,
    and "-name value" for the flags known to take a value. A bool flag given bare is "true"."""
    out: dict[str, str] = {}
    i = 0
    while i < len(args):
        arg = args[i]
        i += 1
        if arg == "--":
            break
        if not arg.startswith("-") or arg == "-":
            continue
        name = arg.lstrip("-")
        if "=" in name:
            name, value = name.split("=", 1)
        elif name in value_flags and i < len(args):
            value = args[i]
            i += 1
        else:
            value = "true"
        out[name] = value
    return out


def go_bool(value: str | None, default: bool = False) -> bool:
    """strconv.ParseBool; anything it rejects counts as the default here."""
    if value is None:
        return default
    if value in ("1", "t", "T", "TRUE", "true", "True"):
        return True
    if value in ("0", "f", "F", "FALSE", "false", "False"):
        return False
    return default


def version_text(program: str) -> str:
    """prometheus/common/version.Print, filled with the stand-in's own values."""
    return (
        f"{program}, version {STANDIN_VERSION} (branch: standin, revision: standin)\n"
        f"  build user:       standin\n"
        f"  build date:       \n"
        f"  go version:       none (python stand-in)\n"
        f"  platform:         linux/amd64\n"
        f"  tags:             standin"
    )


# --------------------------------------------------------------------------- YAML-ish

# There is no YAML parser in the standard library and the Loki image cannot hold
# PyYAML, so configuration files are checked by a small indentation-based reader:
# enough to find the top-level keys (Loki and Promtail decode them strictly: an
# unknown key is an error) and a few scalar settings, and to reject files a YAML
# parser would reject for the common reasons. The rules are listed in UPSTREAM.md.

KEY_RE = re.compile(
    r"""^(?:"((?:[^"\\]|\\.)*)"|'((?:[^']|'')*)'|([^\s#'"\[\]{},&*!|>%@`-][^#]*?|-[^\s#][^#]*?))"""
    r"""\s*:(?:[ \t]+(.*))?$"""
)
BLOCK_SCALAR_RE = re.compile(r"^[|>][-+0-9]*$")
MARKER_RE = re.compile(r"\bINVALID\b")


class YamlError(Exception):
    """A decode error worded like gopkg.in/yaml.v3's (str() follows "yaml: ")."""


class UnmarshalErrors(Exception):
    """yaml.v3's *TypeError: "unmarshal errors:" and one "line N: ..." per problem."""

    def __init__(self, problems: list[str]) -> None:
        super().__init__("unmarshal errors:\n  " + "\n  ".join(problems))


class Yamlish:
    """What the reader keeps of a document: top-level keys (with line numbers) and
    the scalar values reachable through mappings only, by dotted path."""

    def __init__(self) -> None:
        self.top: list[tuple[str, int]] = []
        self.values: dict[str, str] = {}
        self.top_is_sequence = False
        self.empty = True

    def get(self, path: str, default: str | None = None) -> str | None:
        return self.values.get(path, default)


def _strip_comment(text: str) -> str:
    """Drop a trailing " #..." comment that is not inside quotes."""
    quote = ""
    for i, ch in enumerate(text):
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'" and (i == 0 or text[i - 1] in " \t:[{,"):
            quote = ch
        elif ch == "#" and (i == 0 or text[i - 1] in " \t"):
            return text[:i].rstrip()
    return text.rstrip()


def _unquote(value: str) -> str:
    value = value.strip()
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        return value[1:-1]
    return value


def _bracket_delta(text: str) -> int:
    quote = ""
    depth = 0
    for ch in text:
        if quote:
            if ch == quote:
                quote = ""
        elif ch in "\"'":
            quote = ch
        elif ch in "[{":
            depth += 1
        elif ch in "]}":
            depth -= 1
    return depth


def read_yamlish(text: str) -> Yamlish:
    """Read one YAML document the way described in UPSTREAM.md; raise YamlError or
    UnmarshalErrors (duplicate top-level keys) as yaml.v3 would for those cases."""
    doc = Yamlish()
    seen: dict[str, int] = {}
    duplicates: list[str] = []
    # Open mapping keys on the current path: (column, key); key None marks a list item.
    stack: list[tuple[int, str | None]] = []
    block_col: int | None = None  # inside a block scalar (| or >) opened at this column
    flow_depth = 0  # inside a multi-line [ ] / { } flow collection
    open_quote = ""  # inside a quoted scalar that spans lines
    for n, raw in enumerate(text.split("\n"), 1):
        line = raw.rstrip("\r")
        stripped = line.lstrip(" ")
        col = len(line) - len(stripped)
        if open_quote:
            if open_quote in line:
                open_quote = ""
            continue
        if flow_depth > 0:
            flow_depth += _bracket_delta(_strip_comment(stripped))
            continue
        if block_col is not None:
            if not stripped.strip() or col > block_col:
                continue
            block_col = None
        if not stripped.strip():
            continue
        if stripped.startswith("\t"):
            # yaml.v3 (scanner): a tab may not indent a block.
            raise YamlError(f"line {n}: found character that cannot start any token")
        if stripped.startswith("#"):
            continue
        if col == 0 and stripped.rstrip() in ("---", "..."):
            continue
        content = _strip_comment(stripped)
        if MARKER_RE.search(content):
            # The stand-in's documented way for a test to make a file unparseable.
            raise YamlError(f"line {n}: did not find expected key")
        doc.empty = False
        # Leading "- " list markers; each opens a list item one level deeper.
        item_col = -1
        while content == "-" or content.startswith("- "):
            item_col = col
            if col == 0 and not doc.top and not stack:
                doc.top_is_sequence = True  # the document is a list, not a mapping
            while stack and stack[-1][0] >= col:
                stack.pop()
            stack.append((col, None))
            rest = content[1:]
            content = rest.lstrip(" ")
            col += 1 + (len(rest) - len(content))
        if not content:
            continue
        m = KEY_RE.match(content)
        if not m and item_col >= 0:
            # A scalar list item; it may open a block, flow or quoted scalar.
            if BLOCK_SCALAR_RE.match(content):
                block_col = item_col
            elif content[0] in "[{" and _bracket_delta(content) > 0:
                flow_depth = _bracket_delta(content)
            elif content[0] in "\"'" and (len(content) == 1 or not content.endswith(content[0])):
                open_quote = content[0]
            continue
        if not m:
            parent_col = stack[-1][0] if stack else -1
            if stack and col > parent_col:
                continue  # continuation of a multi-line plain scalar
            raise YamlError(f"line {n}: could not find expected ':'")
        key = m.group(1) if m.group(1) is not None else m.group(2) or m.group(3) or ""
        value = (m.group(4) or "").strip()
        while stack and stack[-1][0] >= col:
            stack.pop()
        if col == 0:
            if key in seen:
                duplicates.append(
                    f'line {n}: mapping key "{key}" already defined at line {seen[key]}'
                )
            else:
                seen[key] = n
                doc.top.append((key, n))
        path = [k for _, k in stack]
        if None not in path:
            doc.values[".".join([*(k for k in path if k), key])] = _unquote(value)
        stack.append((col, key))
        if BLOCK_SCALAR_RE.match(value):
            block_col = col
        elif value and value[0] in "[{" and _bracket_delta(value) > 0:
            flow_depth = _bracket_delta(value)
        elif value and value[0] in "\"'" and (len(value) == 1 or not value.endswith(value[0])):
            open_quote = value[0]
    if duplicates:
        raise UnmarshalErrors(duplicates)
    return doc


def expand_env(text: str) -> str:
    """drone/envsubst as used by -config.expand-env: ${VAR}, ${VAR:-default}, $VAR."""

    def sub(m: re.Match[str]) -> str:
        name = m.group(1) or m.group(3)
        value = os.environ.get(name, "")
        if m.group(1) and m.group(2) is not None and not value:
            return m.group(2)
        return value

    return re.sub(
        r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::?-([^}]*))?\}|\$([A-Za-z_][A-Za-z0-9_]*)", sub, text
    )


class ConfigFile:
    """A loaded config file: its path, text, and what the YAML-ish reader kept."""

    def __init__(self, path: str, text: str, doc: Yamlish) -> None:
        self.path = path
        self.text = text
        self.doc = doc

    def get(self, dotted: str, default: str | None = None) -> str | None:
        return self.doc.get(dotted, default)

    def canonical_digest(self) -> str:
        """A hash of the file without comments and blank lines. Promtail compares the
        re-serialised config (yaml.Marshal of the parsed struct), so a comment-only edit
        is "not changed" upstream too; see UPSTREAM.md for what still differs."""
        kept = []
        for line in self.text.split("\n"):
            if line.lstrip().startswith("#"):
                continue
            line = _strip_comment(line)
            if line.strip():
                kept.append(line)
        return hashlib.sha256("\n".join(kept).encode()).hexdigest()


def load_config(
    spec: str, expand: bool, known_keys: frozenset[str], type_name: str
) -> tuple[ConfigFile | None, str | None]:
    """pkg/util/cfg's ConfigFileLoader + YAML(strict): the first existing file of the
    comma-separated list, decoded with KnownFields(true). Returns (config, error text)."""
    for candidate in (p.strip() for p in spec.split(",")):
        if not os.path.exists(candidate):
            continue
        try:
            raw = Path(candidate).read_bytes()
        except OSError as exc:
            # os.ReadFile's error, returned before errors.Wrap(err, f).
            why = (exc.strerror or str(exc)).lower()
            err = (
                f"read {candidate}: {why}"
                if os.path.isdir(candidate)
                else f"open {candidate}: {why}"
            )
            return None, _with_expand_hint(err, expand)
        text = raw.decode("utf-8", "replace")
        if expand:
            text = expand_env(text)
        try:
            doc = read_yamlish(text)
        except YamlError as exc:
            return None, _with_expand_hint(f"{candidate}: yaml: {exc}", expand)
        except UnmarshalErrors as exc:
            return None, _with_expand_hint(f"{candidate}: yaml: {exc}", expand)
        if doc.empty:
            return None, _with_expand_hint(f"{candidate}: EOF", expand)
        if doc.top_is_sequence:
            problem = f"line 1: cannot unmarshal !!seq into {type_name}"
            return None, _with_expand_hint(
                f"{candidate}: yaml: unmarshal errors:\n  {problem}", expand
            )
        unknown = [
            f"line {line}: field {key} not found in type {type_name}"
            for key, line in doc.top
            if key not in known_keys
        ]
        if unknown:
            err = f"{candidate}: yaml: " + str(UnmarshalErrors(unknown))
            return None, _with_expand_hint(err, expand)
        return ConfigFile(candidate, text, doc), None
    return None, f"{spec} does not exist, set config.file for custom config path"


EXPAND_HINT = (
    "Use `-config.expand-env=true` flag if you want to expand environment variables in "
    "your config file"
)


def _with_expand_hint(err: str, expand: bool) -> str:
    if expand:
        return err
    return f"{err}. {EXPAND_HINT}"


# --------------------------------------------------------------------------- grafana

GRAFANA_HEADERS = {
    # Grafana's default response headers (seen on every answer, /healthz included).
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "deny",
    "X-Xss-Protection": "1; mode=block",
}


def slugify(title: str) -> str:
    """Close to Grafana's pkg/infra/slugify for ASCII titles."""
    return re.sub(r"[^a-z0-9]+", "-", title.lower()).strip("-")


class Grafana:
    """Grafana stand-in: health, admin-authenticated provisioning reloads, dashboard
    provisioning into a real SQLite DB, /api/search."""

    PARTS = ("dashboards", "datasources", "plugins", "alerting")

    def __init__(self, flags: dict[str, str]) -> None:
        self.data = Path(os.environ.get("GF_PATHS_DATA", "/var/lib/grafana"))
        self.db = self.data / "grafana.db"
        self.provisioning = Path(
            os.environ.get("GF_PATHS_PROVISIONING", "/etc/grafana/provisioning")
        )
        self.reloads = 0
        self.lock = threading.Lock()
        self.init_db()
        # Grafana provisions dashboards when it starts, not only on a reload.
        try:
            self.provision_dashboards()
        except (OSError, ValueError, sqlite3.Error) as exc:
            log(f"provisioning dashboards at start failed: {exc}")

    def port(self, default: int) -> int:
        return int(os.environ.get("GF_SERVER_HTTP_PORT") or default)

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
            # Column names as in Grafana's own `dashboard` table (a subset of them);
            # folders are rows with is_folder = 1, as Grafana stored them before 11.
            con.execute(
                "CREATE TABLE IF NOT EXISTS dashboard (id INTEGER PRIMARY KEY AUTOINCREMENT,"
                " uid TEXT NOT NULL, title TEXT NOT NULL, data TEXT NOT NULL,"
                " slug TEXT NOT NULL DEFAULT '', org_id INTEGER NOT NULL DEFAULT 1,"
                " version INTEGER NOT NULL DEFAULT 1, is_folder INTEGER NOT NULL DEFAULT 0,"
                " folder_uid TEXT, created TEXT, updated TEXT)"
            )
            con.execute(
                "CREATE UNIQUE INDEX IF NOT EXISTS UQE_dashboard_org_id_uid"
                " ON dashboard (org_id, uid)"
            )
            # Which file a provisioned dashboard came from (Grafana: dashboard_provisioning).
            con.execute(
                "CREATE TABLE IF NOT EXISTS dashboard_provisioning (id INTEGER PRIMARY KEY"
                " AUTOINCREMENT, dashboard_id INTEGER, name TEXT NOT NULL,"
                " external_id TEXT NOT NULL, updated INTEGER NOT NULL DEFAULT 0, check_sum TEXT)"
            )
            if fresh or con.execute("SELECT COUNT(*) FROM user").fetchone()[0] == 0:
                user = os.environ.get("GF_SECURITY_ADMIN_USER") or "admin"
                password = os.environ.get("GF_SECURITY_ADMIN_PASSWORD") or "admin"
                # The image's run.sh reads <VAR>__FILE (Docker secrets) into <VAR>.
                secret_file = os.environ.get("GF_SECURITY_ADMIN_PASSWORD__FILE")
                if secret_file:
                    password = Path(secret_file).read_text(encoding="utf-8").rstrip("\n")
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

    def identify(self, header: str | None) -> tuple[str, dict[str, Any] | None, bool]:
        """Basic auth as Grafana's authn service answers it: ("ok", None, is_admin), or
        ("denied", <401 body>, False)."""
        if not header or not header.startswith("Basic "):
            # errCantAuthenticateReq = errutil.Unauthorized("auth.unauthorized")
            return "denied", self._unauthorized("Unauthorized", "auth.unauthorized"), False
        try:
            user, _, password = base64.b64decode(header[6:]).decode().partition(":")
        except (ValueError, UnicodeDecodeError):
            return "denied", self._unauthorized("Unauthorized", "auth.unauthorized"), False
        row = None
        try:
            con = sqlite3.connect(self.db, timeout=2)
            try:
                row = con.execute(
                    "SELECT password, salt, is_admin FROM user WHERE login = ?", (user,)
                ).fetchone()
            finally:
                con.close()
        except sqlite3.Error:
            row = None
        if row and password and hmac.compare_digest(row[0], self._hash(password, row[1])):
            return "ok", None, bool(row[2])
        # errPasswordAuthFailed = errutil.Unauthorized("password-auth.failed", ...)
        failed = self._unauthorized("Invalid username or password", "password-auth.failed")
        return "denied", failed, False

    @staticmethod
    def _unauthorized(message: str, message_id: str) -> dict[str, Any]:
        # ReqContext.writeErrOrFallback with an errutil.Error: map keys, marshalled sorted.
        return {
            "extra": None,
            "message": message,
            "messageId": message_id,
            "statusCode": 401,
            "traceID": "",
        }

    # -- provisioning

    def _provision_files(self, part: str) -> list[Path]:
        return sorted(self.provisioning.glob(f"{part}/*.y*ml"))

    def providers(self) -> list[dict[str, str]]:
        """Dashboard providers of provisioning/dashboards/*.yaml (a YAML-free reading:
        each "- name:" item, with the scalar settings that follow it)."""
        found: list[dict[str, str]] = []
        for file in self._provision_files("dashboards"):
            text = file.read_text(encoding="utf-8", errors="replace")
            read_yamlish(text)  # a malformed provider file fails the reload, as upstream
            current: dict[str, str] | None = None
            for line in text.splitlines():
                body = _strip_comment(line)
                m = re.match(r"^\s*-\s+(\w+):\s*(.*)$", body)
                if m and m.group(1) == "name":
                    current = {"name": _unquote(m.group(2))}
                    found.append(current)
                    continue
                m = re.match(r"^\s*(?:-\s+)?(\w+):\s*(.*)$", body)
                if m and current is not None and m.group(2).strip():
                    current.setdefault(m.group(1), os.path.expandvars(_unquote(m.group(2))))
        return found

    def provision_dashboards(self) -> None:
        """Insert or update every dashboard JSON under each provider's path (like
        Grafana's file reader); a file that is not valid JSON is logged and skipped."""
        with self.lock:
            con = sqlite3.connect(self.db, timeout=5)
            try:
                for provider in self.providers():
                    self._provision_provider(con, provider)
                con.commit()
            finally:
                con.close()

    def _provision_provider(self, con: sqlite3.Connection, provider: dict[str, str]) -> None:
        """One provider. Like Grafana's file reader it writes only what changed (a file
        whose checksum matches its provisioning row is skipped), so a restart with the
        same files leaves grafana.db byte for byte as it was."""
        folder = Path(provider.get("path", ""))
        name = provider.get("name", "")
        folder_uid = None
        if provider.get("folder"):
            folder_uid = (
                provider.get("folderUid")
                or "f-" + hashlib.sha1(provider["folder"].encode()).hexdigest()[:12]
            )
            self._upsert(con, folder_uid, provider["folder"], "{}", None, is_folder=True)
        seen: set[str] = set()
        files = sorted(folder.rglob("*.json")) if folder.is_dir() else []
        for file in files:
            try:
                text = file.read_text(encoding="utf-8")
                doc = json.loads(text)
                if not isinstance(doc, dict):
                    raise ValueError("dashboard JSON is not an object")
            except (OSError, ValueError) as exc:
                log(f"failed to load dashboard from {file}: {exc}")
                continue
            seen.add(str(file))
            checksum = hashlib.md5(text.encode()).hexdigest()
            known = con.execute(
                "SELECT p.check_sum, d.folder_uid IS ? FROM dashboard_provisioning p"
                " JOIN dashboard d ON d.id = p.dashboard_id"
                " WHERE p.name = ? AND p.external_id = ?",
                (folder_uid, name, str(file)),
            ).fetchone()
            if known and known[0] == checksum and known[1]:
                continue  # unchanged since the last provisioning
            uid = str(doc.get("uid") or "p-" + hashlib.sha1(str(file).encode()).hexdigest()[:12])
            title = str(doc.get("title") or file.stem)
            doc["uid"] = uid
            doc.pop("id", None)
            dash_id = self._upsert(con, uid, title, json.dumps(doc), folder_uid)
            con.execute(
                "DELETE FROM dashboard_provisioning WHERE name = ? AND external_id = ?",
                (name, str(file)),
            )
            con.execute(
                "INSERT INTO dashboard_provisioning (dashboard_id, name, external_id, updated,"
                " check_sum) VALUES (?, ?, ?, ?, ?)",
                (dash_id, name, str(file), int(time.time()), checksum),
            )
        # Files gone from disk: their dashboards are deleted, or with disableDeletion
        # only un-provisioned (handleMissingDashboardFiles).
        keep = go_bool(provider.get("disableDeletion"), False)
        gone = con.execute(
            "SELECT id, dashboard_id, external_id FROM dashboard_provisioning WHERE name = ?",
            (name,),
        ).fetchall()
        for prov_id, dash_id, external in gone:
            if external in seen:
                continue
            con.execute("DELETE FROM dashboard_provisioning WHERE id = ?", (prov_id,))
            if not keep:
                con.execute("DELETE FROM dashboard WHERE id = ?", (dash_id,))

    @staticmethod
    def _upsert(
        con: sqlite3.Connection,
        uid: str,
        title: str,
        data: str,
        folder_uid: str | None,
        is_folder: bool = False,
    ) -> int:
        """Insert, or update only when something differs (no write otherwise)."""
        found = con.execute(
            "SELECT id, title, data, folder_uid FROM dashboard WHERE org_id = 1 AND uid = ?",
            (uid,),
        ).fetchone()
        if found:
            if (found[1], found[2], found[3]) != (title, data, folder_uid):
                con.execute(
                    "UPDATE dashboard SET title = ?, slug = ?, data = ?, folder_uid = ?,"
                    " version = version + 1, updated = datetime('now') WHERE id = ?",
                    (title, slugify(title), data, folder_uid, found[0]),
                )
            return int(found[0])
        cur = con.execute(
            "INSERT INTO dashboard (uid, title, data, slug, org_id, version, is_folder,"
            " folder_uid, created, updated) VALUES (?, ?, ?, ?, 1, 1, ?, ?, datetime('now'),"
            " datetime('now'))",
            (uid, title, data, slugify(title), 1 if is_folder else 0, folder_uid),
        )
        return int(cur.lastrowid or 0)

    def reload(self, part: str) -> Reply:
        """AdminProvisioningReload*: response.Success, or response.Error(500, ...) whose
        body gains "traceID" (NormalResponse.WriteTo)."""
        message = (
            "Failed to reload plugins config" if part == "plugins" else "Internal Server Error"
        )
        try:
            if part == "dashboards":
                self.provision_dashboards()
            else:
                for file in self._provision_files(part):
                    read_yamlish(file.read_text(encoding="utf-8", errors="replace"))
        except (YamlError, UnmarshalErrors, OSError, sqlite3.Error) as exc:
            log(f"provisioning {part} failed: {exc}")
            return Reply.json(500, {"message": message, "traceID": ""}, newline=False)
        self.reloads += 1
        return Reply.json(200, {"message": f"{part.capitalize()} config reloaded"}, newline=False)

    # -- search

    def search(self, req: Request) -> Reply:
        """GET /api/search: hits as pkg/services/search/model.Hit, folders first, then
        by title (HitList.Less)."""
        types = set(req.form.get("type", []))
        query = req.arg("query").lower()
        uids = set(req.form.get("dashboardUIDs", []))
        folder_uids = set(req.form.get("folderUIDs", []))
        tags = set(req.form.get("tag", []))
        try:
            limit = int(req.arg("limit") or 0)
        except ValueError:
            limit = 0  # c.QueryInt64 ignores a malformed number
        if limit > 5000:
            message = (
                "Limit is above maximum allowed (5000), use page parameter to access hits "
                "beyond limit"
            )
            return Reply.json(422, {"message": message}, newline=False)
        limit = limit or 1000  # the search service's default
        con = sqlite3.connect(self.db, timeout=5)
        try:
            rows = con.execute(
                "SELECT id, uid, title, slug, is_folder, folder_uid, data FROM dashboard"
                " WHERE org_id = 1"
            ).fetchall()
        finally:
            con.close()
        folders = {r[1]: r for r in rows if r[4]}
        hits: list[dict[str, Any]] = []
        for dash_id, uid, title, slug, is_folder, folder_uid, data in rows:
            kind = "dash-folder" if is_folder else "dash-db"
            if types and kind not in types:
                continue
            if query and query not in title.lower():
                continue
            if uids and uid not in uids:
                continue
            if folder_uids and (folder_uid or "general") not in folder_uids:
                continue
            try:
                dash_tags = [str(t) for t in json.loads(data).get("tags") or []]
            except (ValueError, AttributeError):
                dash_tags = []
            if tags and not tags.issubset(dash_tags):
                continue
            url = f"/dashboards/f/{uid}/{slug}" if is_folder else f"/d/{uid}/{slug}"
            hit: dict[str, Any] = {
                "id": dash_id,
                "uid": uid,
                "orgId": 1,
                "title": title,
                "uri": f"db/{slug}",
                "url": url,
                "slug": "",
                "type": kind,
                "tags": dash_tags,
                "isStarred": False,
            }
            if folder_uid and folder_uid in folders:
                f = folders[folder_uid]
                hit["folderId"] = f[0]
                hit["folderUid"] = folder_uid
                hit["folderTitle"] = f[2]
                hit["folderUrl"] = f"/dashboards/f/{folder_uid}/{f[3]}"
            hit["sortMeta"] = 0
            hits.append(hit)
        hits.sort(key=lambda h: (h["type"] != "dash-folder", h["title"].lower()))
        # response.JSON: json.Marshal, "application/json".
        return Reply.json(200, hits[:limit], newline=False)

    # -- routing

    def handle(self, req: Request) -> Reply:
        reply = self._route(req)
        for k, v in GRAFANA_HEADERS.items():
            reply.headers.setdefault(k, v)
        return reply

    def _route(self, req: Request) -> Reply:
        method, path = req.method, req.path
        head_or_get = method in ("GET", "HEAD")
        if path == "/healthz" and head_or_get:
            return Reply(200, "Ok")
        if path == "/api/health" and head_or_get:
            ok = self.db_ok()
            doc = {"database": "ok" if ok else "failing", "version": STANDIN_VERSION}
            doc["commit"] = "standin"
            return Reply.json(
                200 if ok else 503, doc, "application/json; charset=UTF-8", False, indent=2
            )
        if path == "/metrics" and method == "GET":
            return metrics_text(
                [
                    f'grafana_build_info{{version="{STANDIN_VERSION}",edition="standin"}} 1',
                    f"grafana_standin_provisioning_reloads_total {self.reloads}",
                ]
            )
        m = re.fullmatch(r"/api/admin/provisioning/(\w+)/reload", path)
        if m and m.group(1) in self.PARTS and method == "POST":
            status, body, is_admin = self.identify(req.headers.get("Authorization"))
            if status != "ok":
                return Reply.json(401, body, "application/json; charset=UTF-8")
            if not is_admin:
                return Reply.json(
                    403, {"message": "Permission denied"}, "application/json; charset=UTF-8"
                )
            return self.reload(m.group(1))
        if path == "/api/search" and method in ("GET", "HEAD"):
            status, body, _ = self.identify(req.headers.get("Authorization"))
            if status != "ok":
                return Reply.json(401, body, "application/json; charset=UTF-8")
            return self.search(req)
        if path.startswith("/api"):
            # NotFoundHandler for API paths: JsonApiErr(404, "Not found", nil).
            return Reply.json(404, {"message": "Not found"}, "application/json; charset=UTF-8")
        # Other paths: Grafana renders its single-page app with status 404.
        page = "<!doctype html><html><body>Grafana stand-in: page not found</body></html>\n"
        return Reply(404, page, "text/html; charset=UTF-8")


# --------------------------------------------------------------------------- loki

# The YAML keys of pkg/loki/loki.go `Config` (inlined into ConfigWrapper), Loki 3.7.
# An unknown top-level key fails "field X not found in type loki.ConfigWrapper".
LOKI_TOP_KEYS = frozenset(
    (
        "target", "auth_enabled", "http_prefix", "ballast_bytes", "server", "internal_server",
        "ui", "distributor", "querier", "query_engine", "query_scheduler", "frontend",
        "query_range", "ruler", "ruler_storage", "ingester_client", "ingester",
        "pattern_ingester", "index_gateway", "bloom_build", "bloom_gateway", "storage_config",
        "chunk_store_config", "schema_config", "compactor", "compactor_client",
        "compactor_grpc_client", "limits_config", "frontend_worker", "memberlist",
        "kafka_config", "dataobj", "ingest_limits", "ingest_limits_frontend",
        "ingest_limits_frontend_client", "runtime_config", "operational_config", "tracing",
        "analytics", "profiling", "tenant_limits_allow_publish", "legacy_read_target",
        "common", "shutdown_delay", "metrics_namespace",
        # ConfigWrapper's exported fields without yaml tags decode under their lowercased
        # Go names (yaml.v3's default), so these are accepted too.
        "verifyconfig", "printconfig", "listtargets", "logconfig", "configfile",
        "configexpandenv",
    )
)  # fmt: skip
LOKI_VALUE_FLAGS = {
    "config.file",
    "log.level",
    "log.format",
    "target",
    "server.http-listen-port",
    "server.grpc-listen-port",
}
# limits_config.discover_service_name default (pkg/validation/limits.go).
DISCOVER_SERVICE_NAME = (
    "service", "app", "application", "app_name", "name", "app_kubernetes_io_name", "container",
    "container_name", "k8s_container_name", "component", "workload", "job", "k8s_job_name",
)  # fmt: skip
EMPTY_MATCHER_ERROR = (
    "parse error : queries require at least one regexp or equality matcher that does not "
    'have an empty-compatible value. For instance, app=~".*" does not meet this requirement, '
    'but app=~".+" will'
)
INSTANT_LOG_QUERY_ERROR = (
    "log queries are not supported as an instant query type, please change your query to "
    "a range query type"
)
LEVELS = {"debug": 0, "info": 1, "warn": 2, "error": 3}


def logfmt(level: str, caller: str, **fields: str) -> str:
    """One go-kit logfmt line as Loki and Promtail write them (level, ts, caller, ...)."""
    parts = [f"level={level}", f"ts={rfc3339nano()}", f"caller={caller}"]
    for k, v in fields.items():
        quoted = not v or re.search(r'[\s="]', v)  # go-logfmt quotes such values
        parts.append(f"{k}={json.dumps(v) if quoted else v}")
    return " ".join(parts)


def parse_selector(query: str) -> tuple[list[tuple[str, str, str]], list[tuple[str, str]]]:
    """`{name="v", n2!="v", n3=~"re", n4!~"re"} |= "x" != "y" |~ "re" !~ "re"`, the only
    LogQL the stand-in knows. Raises ValueError with Loki-like text otherwise."""
    m = re.match(r"^\s*\{(.*?)\}\s*(.*)$", query, re.S)
    if not m:
        raise ValueError(f"parse error at line 1, col 1: syntax error: unexpected {query[:1]!r}")
    matchers: list[tuple[str, str, str]] = []
    body = m.group(1).strip()
    pos = 0
    item = re.compile(r'\s*([A-Za-z_][A-Za-z0-9_]*)\s*(=~|!~|!=|=)\s*"((?:[^"\\]|\\.)*)"\s*(,|$)')
    while pos < len(body):
        mm = item.match(body, pos)
        if not mm:
            raise ValueError(f"parse error : stand-in cannot read the selector {{{body}}}")
        matchers.append((mm.group(1), mm.group(2), json.loads(f'"{mm.group(3)}"')))
        pos = mm.end()
    filters: list[tuple[str, str]] = []
    rest = m.group(2).strip()
    filt = re.compile(r'(\|=|!=|\|~|!~)\s*"((?:[^"\\]|\\.)*)"\s*')
    while rest:
        fm = filt.match(rest)
        if not fm:
            raise ValueError(
                "parse error : the Loki stand-in supports only stream selectors and line "
                f"filters, not: {rest}"
            )
        filters.append((fm.group(1), json.loads(f'"{fm.group(2)}"')))
        rest = rest[fm.end() :].strip()
    if not any(
        (op == "=" and value != "") or (op == "=~" and not re.fullmatch(value, ""))
        for _, op, value in matchers
    ):
        raise ValueError(EMPTY_MATCHER_ERROR)
    return matchers, filters


def _matches(labels: dict[str, str], matchers: list[tuple[str, str, str]]) -> bool:
    for name, op, value in matchers:
        have = labels.get(name, "")
        if op == "=" and have != value:
            return False
        if op == "!=" and have == value:
            return False
        if op == "=~" and not re.fullmatch(value, have):
            return False
        if op == "!~" and re.fullmatch(value, have):
            return False
    return True


def _line_ok(line: str, filters: list[tuple[str, str]]) -> bool:
    for op, value in filters:
        if op == "|=" and value not in line:
            return False
        if op == "!=" and value in line:
            return False
        if op == "|~" and not re.search(value, line):
            return False
        if op == "!~" and re.search(value, line):
            return False
    return True


def parse_loki_time(value: str, default_ns: int) -> int:
    """pkg/loghttp parseTimestamp: float seconds, RFC3339(Nano), or an integer that is
    seconds when it has at most 10 digits, nanoseconds otherwise."""
    if value == "":
        return default_ns
    if "." in value:
        try:
            secs = float(value)
            whole = int(secs)
            frac = round((secs - whole) * 1000) / 1000
            return whole * 1_000_000_000 + int(frac * 1e9)
        except ValueError:
            pass
    try:
        number = int(value)
    except ValueError:
        m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d+)?(Z|[+-]\d\d:\d\d)", value)
        if not m:
            raise ValueError(f'strconv.ParseInt: parsing "{value}": invalid syntax') from None
        base = calendar.timegm(time.strptime(m.group(1), "%Y-%m-%dT%H:%M:%S"))
        if m.group(3) != "Z":
            sign = 1 if m.group(3)[0] == "+" else -1
            base -= sign * (int(m.group(3)[1:3]) * 3600 + int(m.group(3)[4:6]) * 60)
        frac_ns = int((m.group(2) or ".0")[1:].ljust(9, "0")[:9])
        return base * 1_000_000_000 + frac_ns
    return number * 1_000_000_000 if len(value) <= 10 else number


DURATION_UNITS = {
    "ms": 10**6,
    "s": 10**9,
    "m": 60 * 10**9,
    "h": 3600 * 10**9,
    "d": 86400 * 10**9,
    "w": 7 * 86400 * 10**9,
    "y": 365 * 86400 * 10**9,
}


def parse_duration_ns(value: str) -> int:
    """Prometheus' model.ParseDuration (used for since=): e.g. 1h30m, 15m, 2d."""
    parts = re.findall(r"(\d+)(ms|s|m|h|d|w|y)", value)
    if not parts or "".join(n + u for n, u in parts) != value:
        raise ValueError(f'not a valid duration string: "{value}"')
    return sum(int(n) * DURATION_UNITS[u] for n, u in parts)


class Loki:
    """Loki stand-in: min-ready delay, push kept in memory, /flush writes it under
    <chunks_directory>, queries over both."""

    def __init__(self, flags: dict[str, str], config: ConfigFile | None) -> None:
        self.config = config
        get = config.get if config else (lambda _k, d=None: d)
        if os.environ.get("STANDIN_LOKI_DIR"):
            self.chunks = Path(os.environ["STANDIN_LOKI_DIR"]) / "chunks"
        else:
            prefix = get("common.path_prefix")
            self.chunks = Path(
                get("common.storage.filesystem.chunks_directory")
                or get("storage_config.filesystem.directory")
                or (f"{prefix}/chunks" if prefix else "/loki/chunks")
            )
        # Upstream's ingester.lifecycler.min_ready_duration defaults to 15s; the stand-in
        # waits 3s (STANDIN_MIN_READY_SECONDS) to keep the tests quick.
        self.min_ready = float(os.environ.get("STANDIN_MIN_READY_SECONDS", "3"))
        self.ready_since: float | None = None
        self.ready = False
        self.pending: list[Any] = []
        self.lock = threading.Lock()
        self.lines = 0
        self.flushed = 0

    def start(self) -> None:
        try:
            self.chunks.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            # Loki cannot start its store either (e.g. a restored volume owned by root):
            # it exits 1 and never serves /ready.
            log(f"error initialising module: store: mkdir {self.chunks}: {exc.strerror}")
            raise SystemExit(1) from None

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

    def check_ready(self) -> Reply:
        """Loki.readyHandler -> Ingester.CheckReady -> dskit Lifecycler.CheckReady: the
        min-ready timer starts at the first check that passes, and readiness latches."""
        if not self.ready:
            now = time.monotonic()
            if self.ready_since is None:
                self.ready_since = now
            if now - self.ready_since < self.min_ready:
                return go_error(
                    503, f"Ingester not ready: waiting for {self.min_ready:g}s after being ready"
                )
            self.ready = True
        return go_error(200, "ready")

    def push(self, req: Request) -> Reply:
        ctype = (req.headers.get("Content-Type") or "").split(";")[0].strip().lower()
        if ctype != "application/json":
            # Promtail's snappy-compressed protobuf: no snappy in the stdlib, so it is
            # kept as bytes (flushed, never queried). See UPSTREAM.md.
            with self.lock:
                self.pending.append({"raw_b64": base64.b64encode(req.body).decode()})
            return Reply(204, b"", None)
        try:
            doc: Any = json.loads(req.body or b"null")
            streams = doc.get("streams") if isinstance(doc, dict) else None
            if not isinstance(streams, list):
                raise ValueError("no streams")
            count = 0
            for stream in streams:
                if not isinstance(stream.get("stream"), dict):
                    raise ValueError("stream labels must be an object")
                for value in stream.get("values", []):
                    if not isinstance(value[0], str) or not value[0].isdigit():
                        raise ValueError("timestamp must be a string of nanoseconds")
                    if not isinstance(value[1], str):
                        raise ValueError("log line must be a string")
                    count += 1
        except (ValueError, TypeError, AttributeError, IndexError, KeyError) as exc:
            # Upstream answers 400 with the decoder's error; the wording here is the
            # stand-in's own (see UPSTREAM.md).
            why = str(exc) if isinstance(exc, ValueError) else "malformed push request"
            return go_error(400, f"couldn't parse push request: {why}")
        with self.lock:
            self.lines += count
            self.pending.append(doc)
        return Reply(204, b"", None)

    def _entries(self) -> list[tuple[dict[str, str], int, str]]:
        """Every pushed line (memory and flushed files) as (labels, ns, line)."""
        with self.lock:
            docs = list(self.pending)
        for file in sorted(self.chunks.glob("standin-*.json")):
            try:
                loaded = json.loads(file.read_text(encoding="utf-8"))
            except (OSError, ValueError):
                continue
            docs.extend(loaded if isinstance(loaded, list) else [])
        out = []
        for doc in docs:
            if not isinstance(doc, dict):
                continue
            for stream in doc.get("streams") or []:
                labels = {str(k): str(v) for k, v in (stream.get("stream") or {}).items()}
                if "service_name" not in labels and DISCOVER_SERVICE_NAME:
                    found = next((labels[k] for k in DISCOVER_SERVICE_NAME if labels.get(k)), None)
                    labels["service_name"] = found or "unknown_service"
                for value in stream.get("values") or []:
                    entry_labels = dict(labels)
                    if len(value) > 2 and isinstance(value[2], dict):
                        # Structured metadata is merged into the stream labels when the
                        # client does not ask for categorize-labels.
                        entry_labels.update({str(k): str(v) for k, v in value[2].items()})
                    out.append((entry_labels, int(value[0]), str(value[1])))
        return out

    def query(self, req: Request, instant: bool) -> Reply:
        query = req.arg("query")
        if not query:
            return go_error(400, "query must be supplied")
        try:
            matchers, filters = parse_selector(query)
        except ValueError as exc:
            return go_error(400, str(exc))
        if instant:
            return go_error(400, INSTANT_LOG_QUERY_ERROR)
        now = time.time_ns()
        try:
            end = parse_loki_time(req.arg("end"), now)
            since = parse_duration_ns(req.arg("since")) if req.arg("since") else 3600 * 10**9
            start = parse_loki_time(req.arg("start"), end - since)
            limit = int(req.arg("limit") or 100)
        except ValueError as exc:
            return go_error(400, str(exc))
        if limit <= 0:
            return go_error(400, "limit must be a positive value")
        if end < start:
            return go_error(400, "end timestamp must not be before or equal to start time")
        direction = (req.arg("direction") or "backward").lower()
        if direction not in ("backward", "forward"):
            return go_error(400, f"invalid direction '{req.arg('direction')}'")
        # start inclusive, end exclusive (start == end selects that instant).
        picked = [
            e
            for e in self._entries()
            if (start <= e[1] < end or start == end == e[1])
            and _matches(e[0], matchers)
            and _line_ok(e[2], filters)
        ]
        picked.sort(key=lambda e: e[1], reverse=direction == "backward")
        picked = picked[:limit]
        streams: dict[str, dict[str, Any]] = {}
        for labels, ts, line in picked:
            key = json.dumps(labels, sort_keys=True)
            streams.setdefault(key, {"stream": labels, "values": []})["values"].append(
                [str(ts), line]
            )
        result = [streams[k] for k in sorted(streams)]
        total_bytes = sum(len(e[2]) for e in picked)
        doc = {
            "status": "success",
            "data": {
                "resultType": "streams",
                "result": result,
                "stats": {
                    "summary": {
                        "totalEntriesReturned": len(picked),
                        "totalLinesProcessed": len(picked),
                        "totalBytesProcessed": total_bytes,
                        "execTime": 0,
                        "queueTime": 0,
                        "subqueries": 0,
                        "splits": 0,
                        "shards": 0,
                    }
                },
            },
        }
        return Reply.json(200, doc, "application/json; charset=UTF-8")

    def handle(self, req: Request) -> Reply:
        method, path = req.method, req.path
        routes = {
            "/ready": ("GET",),
            "/flush": ("GET", "POST"),
            "/loki/api/v1/push": ("POST",),
            "/loki/api/v1/status/buildinfo": ("GET",),
            "/loki/api/v1/query_range": ("GET", "POST"),
            "/loki/api/v1/query": ("GET", "POST"),
        }
        if path in routes and method not in routes[path]:
            return mux_method_not_allowed()
        if path == "/ready":
            return self.check_ready()
        if path == "/metrics":
            with self.lock:
                pending = len(self.pending)
            return metrics_text(
                [
                    f'loki_build_info{{branch="standin",revision="standin",'
                    f'version="{STANDIN_VERSION}"}} 1',
                    f'loki_distributor_lines_received_total{{tenant="fake"}} {self.lines}',
                    f'loki_ingester_chunks_flushed_total{{reason="forced"}} {self.flushed}',
                    f"loki_standin_pending_pushes {pending}",
                ]
            )
        if path == "/flush":
            # Ingester.FlushHandler: sweepUsers(true) then 204. Upstream only queues the
            # chunks; the stand-in writes them before answering.
            self.flush()
            return Reply(204, b"", None)
        if path == "/loki/api/v1/push":
            return self.push(req)
        if path == "/loki/api/v1/status/buildinfo":
            info = {
                "version": STANDIN_VERSION,
                "revision": "standin",
                "branch": "standin",
                "buildUser": "",
                "buildDate": "",
                "goVersion": "",
            }
            return Reply.json(200, info)
        if path == "/loki/api/v1/query_range":
            return self.query(req, instant=False)
        if path == "/loki/api/v1/query":
            return self.query(req, instant=True)
        return go_not_found()

    def stop(self) -> None:
        self.flush()


def loki_main(args: list[str]) -> tuple[Loki | None, int | None, int]:
    """cmd/loki/main.go up to the server start. Returns (role, exit code or None, port)."""
    flags = go_flags(args, LOKI_VALUE_FLAGS)
    if any(re.fullmatch(r"-+version", a) for a in args):
        print(version_text("loki"))
        return None, 0, 0
    spec = flags.get("config.file", "config.yaml,config/config.yaml")
    expand = go_bool(flags.get("config.expand-env"))
    config, err = load_config(spec, expand, LOKI_TOP_KEYS, "loki.ConfigWrapper")
    if err:
        sys.stderr.write(f"failed parsing config: {err}\n")
        return None, 1, 0
    assert config is not None
    level = flags.get("log.level") or config.get("server.log_level") or "info"
    if go_bool(flags.get("verify-config")):
        if LEVELS.get(level, 0) <= LEVELS["info"]:
            print(logfmt("info", "main.go:109", msg="config is valid"), file=sys.stderr)
        return None, 0, 0
    port = int(
        flags.get("server.http-listen-port") or config.get("server.http_listen_port") or 3100
    )
    role = Loki(flags, config)
    role.start()
    return role, None, port


# --------------------------------------------------------------------------- promtail

# clients/pkg/promtail/config.Config (decoded through its `type plain Config`).
PROMTAIL_TOP_KEYS = frozenset(
    (
        "global", "server", "client", "clients", "positions", "scrape_configs",
        "target_config", "limits_config", "options", "tracing", "wal",
    )
)  # fmt: skip
PROMTAIL_VALUE_FLAGS = {
    "config.file",
    "log.level",
    "server.http-listen-port",
    "server.grpc-listen-port",
    "client.url",
    "positions.file",
}
PROMTAIL_NOT_READY = (
    "Not ready: Unable to find any logs to tail. Please verify permissions, volumes, "
    "scrape_config, etc."
)


class Promtail:
    """Promtail stand-in: ready when it has something to tail; /reload only when enabled,
    refusing an unchanged or unparseable file as upstream does."""

    def __init__(self, flags: dict[str, str], config: ConfigFile | None) -> None:
        self.flags = flags
        self.spec = flags.get("config.file", "")
        self.expand = go_bool(flags.get("config.expand-env"))
        self.config = config
        get = config.get if config else (lambda _k, d=None: d)
        self.runtime_reload = go_bool(flags.get("server.enable-runtime-reload")) or go_bool(
            get("server.enable_runtime_reload")
        )
        self.health_check_target = go_bool(get("server.health_check_target"), True)
        # What reloadConfig compares against (p.configLoaded), set at start.
        self.loaded = config.canonical_digest() if config else ""
        self.ok_reloads = 0
        self.failed_reloads = 0
        self.lock = threading.Lock()

    def log_globs(self) -> list[str]:
        if not self.config:
            return []
        return re.findall(r"__path__:\s*['\"]?([^'\"\s#]+)", self.config.text)

    def targets_ready(self) -> bool:
        if self.config and "docker_sd_configs" in self.config.text:
            return Path("/var/run/docker.sock").exists()
        return any(glob.glob(pattern, recursive=True) for pattern in self.log_globs())

    def reload(self) -> Reply:
        """Promtail.reload: newConfig() (cfg.DefaultUnmarshal), then reloadConfig, which
        refuses a config equal to the loaded one (errConfigNotChange)."""
        with self.lock:
            config, err = (None, None)
            if self.spec:
                config, err = load_config(self.spec, self.expand, PROMTAIL_TOP_KEYS, "config.plain")
            if err:
                self.failed_reloads += 1
                print(f"Unable to parse config: {err}", flush=True)  # newConfigFunc prints it too
                return go_error(
                    500, f"failed to reload config: Error new Config: unable to parse config: {err}"
                )
            digest = config.canonical_digest() if config else ""
            if digest == self.loaded:
                self.failed_reloads += 1
                log("Error reloading config: config has not changed")
                return go_error(500, "failed to reload config: config has not changed")
            self.loaded = digest
            self.config = config
            self.ok_reloads += 1
            return Reply(200, b"", None)

    def handle(self, req: Request) -> Reply:
        path = req.path
        if path == "/ready":
            if self.health_check_target and not self.targets_ready():
                return go_error(500, PROMTAIL_NOT_READY)
            return Reply(200, "Ready")
        if path == "/metrics":
            return metrics_text(
                [
                    f'promtail_build_info{{branch="standin",revision="standin",'
                    f'version="{STANDIN_VERSION}"}} 1',
                    f"promtail_config_reload_success_total {self.ok_reloads}",
                    f"promtail_config_reload_fail_total {self.failed_reloads}",
                ]
            )
        if path == "/reload" and self.runtime_reload:
            return self.reload()
        if path == "/":
            return go_redirect(req.method, 303, "/targets")
        return go_not_found()


def promtail_main(args: list[str]) -> tuple[Promtail | None, int | None, int]:
    """clients/cmd/promtail/main.go up to the server start."""
    flags = go_flags(args, PROMTAIL_VALUE_FLAGS)
    spec = flags.get("config.file", "")
    config, err = None, None
    if spec:
        config, err = load_config(
            spec, go_bool(flags.get("config.expand-env")), PROMTAIL_TOP_KEYS, "config.plain"
        )
    if err:
        print(f"Unable to parse config: {err}")
        return None, 1, 0
    if go_bool(flags.get("check-syntax")):
        if not spec:
            print("Invalid config file")
            return None, 1, 0
        print("Valid config file! No syntax issues found")
        return None, 0, 0
    if go_bool(flags.get("version")):
        print(version_text("promtail"))
        return None, 0, 0
    get = config.get if config else (lambda _k, d=None: d)
    port = int(flags.get("server.http-listen-port") or get("server.http_listen_port") or 9080)
    return Promtail(flags, config), None, port


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

    def __init__(self, flags: dict[str, str]) -> None:
        pass

    def handle(self, req: Request) -> Reply:
        path = req.path
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
        if path == "/containers/":
            page = (
                "<!doctype html><html><body>cAdvisor stand-in: no container pages</body></html>\n"
            )
            return Reply(200, page, "text/html; charset=utf-8")
        # Every other path is caught by the "/" handler: a redirect to the containers page.
        return go_redirect(req.method, 307, "/containers/")


# --------------------------------------------------------------------------- server


def make_handler(role: Any) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        # Go's net/http speaks HTTP/1.1 with keep-alive; so does the stand-in.
        protocol_version = "HTTP/1.1"

        def send_response(self, code: int, message: str | None = None) -> None:
            # Go servers send no Server header; keep Date like net/http.
            self.log_request(code)
            self.send_response_only(code, message)
            self.send_header("Date", self.date_time_string())

        def log_request(self, code: int | str = "-", size: int | str = "-") -> None:
            # Like Loki (DisableRequestSuccessLog): only server errors are logged; the
            # 503s of a readiness probe while starting are expected, not errors.
            if isinstance(code, int) and code >= 500 and code != 503:
                super().log_request(code, size)

        def _read_body(self) -> bytes:
            if (self.headers.get("Transfer-Encoding") or "").lower() == "chunked":
                chunks: list[bytes] = []
                while True:
                    size = int(self.rfile.readline().split(b";")[0].strip() or b"0", 16)
                    if size == 0:
                        while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                            pass
                        return b"".join(chunks)
                    chunks.append(self.rfile.read(size))
                    self.rfile.readline()
            length = int(self.headers.get("Content-Length") or 0)
            return self.rfile.read(length) if length else b""

        def _serve(self, method: str) -> None:
            body = self._read_body()
            req = Request(method, self.path, self.headers, body)
            try:
                reply = role.handle(req)
            except Exception as exc:  # a stand-in bug must show, not hang the client
                reply = Reply(500, f"stand-in error: {exc!r}\n")
            self.send_response(reply.status)
            for name, value in reply.headers.items():
                self.send_header(name, value)
            if reply.status not in (204, 304):
                if reply.ctype:
                    self.send_header("Content-Type", reply.ctype)
                self.send_header("Content-Length", str(len(reply.body)))
            self.end_headers()
            if method != "HEAD" and reply.status not in (204, 304):
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

        def do_PATCH(self) -> None:
            self._serve("PATCH")

        def do_OPTIONS(self) -> None:
            self._serve("OPTIONS")

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


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description="stand-in server for monctl's tests", allow_abbrev=False
    )
    parser.add_argument("--role", required=True, choices=sorted(DEFAULT_PORTS))
    parser.add_argument("--listen-port", type=int, default=None)
    args, extra = parser.parse_known_args(argv)
    port = DEFAULT_PORTS[args.role]
    role: Any
    if args.role == "loki":
        role, code, port = loki_main(extra)
    elif args.role == "promtail":
        role, code, port = promtail_main(extra)
    else:
        flags = go_flags(extra, set())
        role = Grafana(flags) if args.role == "grafana" else Cadvisor(flags)
        code = None
        if args.role == "grafana":
            port = role.port(port)
    if code is not None:
        sys.stdout.flush()
        sys.stderr.flush()
        return code
    if args.listen_port:
        port = args.listen_port
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
