"""The stack's credentials: who may use Prometheus' and Alertmanager's HTTP APIs.

Prometheus and Alertmanager answer only to basic auth (their ``--web.config.file``):
user ``monctl`` (fixed: Prometheus 2.x reads a scrape's username from its
configuration file only, never from a file or variable) and the password
``MONITORING_AUTH_PASSWORD`` in ``.env``. Their web configuration holds the password's
bcrypt hash, kept in ``.env`` too (``MONITORING_AUTH_WEB_CONFIG``, one line of JSON,
which is YAML), so that compose and Swarm hand both to the containers the same way: as
secrets (files under /run/secrets), never as an environment variable or argument.

``up`` creates both when they are missing (``ensure``) and makes the hash again when
it no longer matches the password (an operator who set a password by hand);
``rotate`` replaces them (the verb ``monctl credentials rotate`` is
``monctl/lifecycle/rotate.py``). ``.env`` is rewritten whole, mode 0600, atomically.
``bcrypt`` is imported only there: every other command just reads ``.env``.
"""

from __future__ import annotations

import json
import os
import re
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monctl import redaction
from monctl.errors import ConfigError
from monctl.project import GENERATE_MARKER

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.http import Response
    from monctl.project import Project
    from monctl.services.model import Service

# The services whose containers hold the credentials (the compose file's `secrets:`):
# a container gets a changed secret only when it is created again.
HOLDERS = ("prometheus", "alertmanager", "grafana")
USER = "monctl"
PASSWORD_VAR = "MONITORING_AUTH_PASSWORD"
WEB_CONFIG_VAR = "MONITORING_AUTH_WEB_CONFIG"
# Enough for a password of 192 random bits (nothing to guess); Prometheus and
# Alertmanager verify it on requests they have not seen (they cache the rest).
BCRYPT_ROUNDS = 10
# What monctl generates (redaction.generate: URL-safe) and what an operator may set: no
# quote, backslash, space or control character, so every tool reads .env alike.
_PASSWORD = re.compile(r"[A-Za-z0-9._~+/=!@%^*()\[\]{}:;,?-]{16,128}")


def auth(project: Project, service: Service) -> tuple[str, str] | None:
    """The basic-auth pair for requests to ``service``, or None when it needs none.

    Every HTTP call monctl makes to a service of the stack takes its credentials
    from here (health probes, reload, snapshots, drill questions)."""
    if not service.basic_auth:
        return None
    password = project.setting(PASSWORD_VAR)
    return (USER, password) if password else None


def refused(project: Project, service: Service) -> tuple[str, str]:
    """(what a 401 from ``service`` means, what to do about it)."""
    if not service.basic_auth:
        return f"{service.title} asks for credentials monctl does not have (401)", ""
    if not project.setting(PASSWORD_VAR):
        return (
            f"{service.title} requires the stack's credentials (401) and {PASSWORD_VAR} "
            "is not set in .env",
            "`monctl up` generates it",
        )
    return (
        f"{service.title} refused the stack's credentials (401): the password in .env is "
        "not the one the running service holds",
        "`monctl up` hands .env's credentials to the services; "
        "after editing the password by hand, run it again",
    )


def to_service(
    project: Project, service: Service, method: str, url: str, *, what: str, **kwargs: Any
) -> Response:
    """One request to a service of the stack (``monctl.adapters.http.call``: the same
    ``kwargs``, timeout included), with the credentials it requires (httpx never logs
    them). A 401 means the two disagree: OperationFailed saying so, rather than a
    confusing answer further on."""
    from monctl.adapters import http  # httpx: only the commands that send a request
    from monctl.errors import OperationFailed

    response = http.call(method, url, what=what, auth=auth(project, service), **kwargs)
    if response.status_code == 401:
        message, hint = refused(project, service)
        raise OperationFailed(f"{what}: {message}", hint=hint)
    return response


def web_config(password: str) -> str:
    """The web configuration (one line of JSON, which YAML reads) for ``password``."""
    import bcrypt  # only up and rotate hash: keep the other commands' start-up lean

    hashed = bcrypt.hashpw(password.encode(), bcrypt.gensalt(BCRYPT_ROUNDS)).decode()
    return json.dumps({"basic_auth_users": {USER: hashed}}, separators=(",", ":"))


def _matches(config: str, password: str) -> bool:
    import bcrypt

    try:
        hashed = json.loads(config)["basic_auth_users"][USER]
        return bool(bcrypt.checkpw(password.encode(), str(hashed).encode()))
    except (ValueError, KeyError, TypeError):
        return False


def _check_password(password: str) -> None:
    if not _PASSWORD.fullmatch(password):
        raise ConfigError(
            f"{PASSWORD_VAR} in .env is not a usable password (16-128 characters: letters, "
            "digits and punctuation other than quotes, backslash and $; no spaces)",
            hint=f"remove the {PASSWORD_VAR} line and run `monctl up` (it generates one), "
            "or `monctl credentials rotate`",
        )


def ensure(project: Project) -> list[str]:
    """Make sure ``.env`` holds the password and its matching web configuration;
    return what was done (never the values)."""
    # As compose reads them: the process environment wins over .env.
    password = project.setting(PASSWORD_VAR)
    config = project.setting(WEB_CONFIG_VAR)
    done: list[str] = []
    changes: dict[str, str] = {}
    if not password or password == GENERATE_MARKER:
        password = redaction.generate()
        changes[PASSWORD_VAR] = password
        done.append(f"generated {PASSWORD_VAR} in .env")
    _check_password(password)
    if changes or not config or not _matches(config, password):
        changes[WEB_CONFIG_VAR] = web_config(password)
        if len(changes) == 1:
            done.append(f"wrote {WEB_CONFIG_VAR} in .env (the password's hash)")
    if changes:
        write_env(project, changes)
    return done


def rotate(project: Project) -> None:
    """A new password and web configuration in ``.env`` (the caller restarts)."""
    password = redaction.generate()
    write_env(project, {PASSWORD_VAR: password, WEB_CONFIG_VAR: web_config(password)})


_PLAIN = re.compile(r"[A-Za-z0-9._-]+")


def _line(name: str, value: str) -> str:
    # Single quotes: compose and monctl both read the text between them literally
    # (a bcrypt hash is full of $). No value written here holds a quote. A plain
    # value (the password) stays unquoted, for `cut -d= -f2`.
    return f"{name}={value}" if _PLAIN.fullmatch(value) else f"{name}='{value}'"


_ASSIGN = re.compile(r"\s*(?:export[ \t]+)?([A-Za-z_][A-Za-z0-9_]*)\s*=")


def env_text(text: str, changes: dict[str, str]) -> str:
    """``text`` (a .env file) with each variable of ``changes`` set: its last assignment
    replaced (the one that wins), or a line appended."""
    lines = text.split("\n")
    last: dict[str, int] = {}
    for number, line in enumerate(lines):
        match = _ASSIGN.match(line)
        if match and match.group(1) in changes:
            last[match.group(1)] = number
    for name, number in last.items():
        lines[number] = _line(name, changes[name])
    while lines and lines[-1] == "":
        lines.pop()
    for name, value in changes.items():
        if name not in last:
            lines.append(_line(name, value))
    return "\n".join(lines) + "\n"


def write_env(project: Project, changes: dict[str, str]) -> None:
    """Set ``changes`` in ``.env``: a new file, mode 0600, moved over the old one."""
    from monctl.envfile import read_env_text

    for value in changes.values():
        redaction.register(value)
    path: Path = project.env_file
    text = env_text(read_env_text(path) if path.exists() else "", changes)
    fd, temp = tempfile.mkstemp(prefix=".env.", dir=path.parent)  # created 0600
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(text)
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(temp, path)
    except BaseException:
        Path(temp).unlink(missing_ok=True)
        raise
    project.load_env()
