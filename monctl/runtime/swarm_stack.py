"""The stack file `docker stack deploy` gets, rendered from the compose file.

One source of truth: ``compose/docker-compose.monitoring.yml`` holds the
images, commands, volumes, ports and healthchecks; ``compose/docker-compose.swarm.yml``
holds only what differs on Swarm (secrets as files, Prometheus reading the
Swarm API, node-exporter's textfile volume, the overlay network). ``docker
compose config`` merges the two and interpolates ``.env`` and the environment
exactly as compose does (stack deploy reads no ``.env``); this module turns
the merged model into a version 3 stack file:

- ``deploy``: one task per node (``mode: global``) for services declared
  ``every-node``, else one replica placed by ``constraints`` (the runtime
  chooses them: the ``monitoring=true`` node label, else the managers);
- every file under a ``config/`` bind mount becomes a Swarm config, and
  ``x-monctl-files`` replaces single files (Prometheus' Swarm variant, filled
  in by Swarm's golang template driver); secrets come from the variables their
  ``environment:`` names. Both are immutable on Swarm, so their names carry a
  hash of their content: a change makes a new object, the service's spec
  changes, and Swarm rolls its tasks. An empty secret is left out (Swarm
  refuses empty ones), with the variables that pointed at its file;
- ``ports`` are left out: Swarm cannot publish on 127.0.0.1 (the gateway does,
  see ``gateway.py``); so are the keys stack deploy ignores or refuses
  (``restart``, ``depends_on``, ``privileged``, ``devices``, ``pid``);
- ``endpoint_mode: dnsrr``: with nothing published through the routing mesh no
  virtual IP is needed; a service's name resolves to its tasks' addresses
  (which also works on kernels without IPVS, where virtual IPs do not).
"""

from __future__ import annotations

import hashlib
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monctl.errors import ConfigError

if TYPE_CHECKING:  # pragma: no cover
    from monctl.project import Project

SWARM_FILE = Path("compose") / "docker-compose.swarm.yml"
FILES_KEY = "x-monctl-files"
LOCAL_BIND_KEY = "x-monctl-local-bind"
NAME_LIMIT = 64  # Swarm's limit on config and secret names
_UNSAFE = re.compile(r"[^A-Za-z0-9_.-]+")
# Passed through as they are (everything else of a service is dropped or rebuilt).
_KEPT = ("image", "command", "entrypoint", "environment", "user", "working_dir", "logging")


@dataclass(frozen=True)
class ConfigFile:
    name: str  # the Swarm object (content-hashed)
    path: Path  # on the host
    target: str  # in the container
    template: bool = False  # Swarm's golang template driver fills it in


@dataclass(frozen=True)
class SecretFile:
    name: str
    var: str  # the setting holding the value (.env or the environment)
    target: str
    uid: str = "0"
    gid: str = "0"
    mode: int = 0o444


@dataclass
class Rendered:
    """The stack file and what it refers to, per service (short names)."""

    stack: str
    document: dict[str, Any]
    configs: dict[str, list[ConfigFile]] = field(default_factory=dict)
    secrets: dict[str, list[SecretFile]] = field(default_factory=dict)
    images: dict[str, str] = field(default_factory=dict)
    local_binds: dict[str, Path] = field(default_factory=dict)  # volume name -> host directory
    networks: dict[str, str] = field(default_factory=dict)  # key -> Docker name (external ones)

    def write(self, directory: Path, values: dict[str, str]) -> Path:
        """Write the stack file and the secrets' values (``values``: var -> value,
        files of mode 0600 in ``directory``, a private temporary directory)."""
        import yaml

        doc = dict(self.document)
        secrets: dict[str, Any] = {}
        for files in self.secrets.values():
            for s in files:
                path = directory / s.name
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
                with os.fdopen(fd, "w", encoding="utf-8") as fh:
                    fh.write(values[s.var])
                secrets[s.name] = {"name": s.name, "file": str(path)}
        if secrets:
            doc["secrets"] = secrets
        target = directory / "stack.yml"
        target.write_text(yaml.safe_dump(doc, sort_keys=False), encoding="utf-8")
        return target


def object_name(stack: str, label: str, content: bytes) -> str:
    """``<stack>_<label>_<12 hex of sha256>``, within Swarm's 64 characters."""
    digest = hashlib.sha256(content).hexdigest()[:12]
    label = _UNSAFE.sub("-", label).strip("-._") or "file"
    room = NAME_LIMIT - len(stack) - len(digest) - 2
    if room < 1:
        raise ConfigError(
            f"the stack name {stack!r} is too long for Swarm object names",
            hint="use a shorter --project-name",
        )
    return f"{stack}_{label[-room:].lstrip('-._') or 'f'}_{digest}"


def _config_files(
    stack: str, root: Path, service: dict[str, Any], compose_dir: Path
) -> tuple[list[ConfigFile], list[dict[str, Any]]]:
    """(the service's Swarm configs, its remaining volumes): every file under a bind
    mount of the project's config/ directory, then the x-monctl-files replacements."""
    config_root = (root / "config").resolve()
    files: dict[str, ConfigFile] = {}
    volumes: list[dict[str, Any]] = []
    for mount in service.get("volumes") or []:
        source = Path(str(mount.get("source", "")))
        if mount.get("type") == "bind" and source.resolve().is_relative_to(config_root):
            source = source.resolve()
            paths = sorted(p for p in source.rglob("*") if p.is_file()) if source.is_dir() else []
            if source.is_file():
                paths = [source]
            for path in paths:
                inside = path.relative_to(source).as_posix() if source.is_dir() else ""
                target = f"{mount['target']}/{inside}" if inside else str(mount["target"])
                label = path.relative_to(config_root).as_posix()
                files[target] = ConfigFile(
                    object_name(stack, label, path.read_bytes()), path, target
                )
        else:
            volumes.append(mount)
    for item in service.get(FILES_KEY) or []:
        path = (compose_dir / str(item["source"])).resolve()
        if not path.is_file():
            raise ConfigError(
                f"{SWARM_FILE} names {item['source']}, which does not exist",
                hint="restore the file from the stack (monctl init)",
            )
        template = bool(item.get("template"))
        content = path.read_bytes() + (b"\0golang" if template else b"")
        label = path.relative_to(config_root).as_posix()
        target = str(item["target"])
        files[target] = ConfigFile(object_name(stack, label, content), path, target, template)
    return sorted(files.values(), key=lambda c: c.target), volumes


def _volume(mount: dict[str, Any]) -> dict[str, Any]:
    """A volume in the stack file's long syntax (only the keys its schema knows)."""
    out: dict[str, Any] = {"type": mount["type"], "target": mount["target"]}
    if mount.get("source"):
        out["source"] = str(mount["source"])
    if mount.get("read_only"):
        out["read_only"] = True
    if mount["type"] == "volume" and (mount.get("volume") or {}).get("nocopy"):
        out["volume"] = {"nocopy": True}
    return out


def _tmpfs(entry: str) -> dict[str, Any]:
    """``/path:opts`` (compose's short syntax, not converted by stack deploy) as a
    tmpfs mount; options beyond the size do not exist there (mode 1777)."""
    return {"type": "tmpfs", "target": entry.split(":", 1)[0]}


def _healthcheck(check: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in check.items() if k != "start_interval"}


def _secret_refs(
    stack: str, project: Project, service: dict[str, Any], declared: dict[str, Any]
) -> tuple[list[SecretFile], set[str]]:
    """(the service's secrets that have a value, the targets of those left out)."""
    found: list[SecretFile] = []
    empty: set[str] = set()
    for ref in service.get("secrets") or []:
        key = str(ref["source"])
        var = str((declared.get(key) or {}).get("environment") or "")
        if not var:
            raise ConfigError(
                f"secret {key} in {SWARM_FILE} must name its variable (environment: VAR)"
            )
        target = str(ref.get("target") or f"/run/secrets/{key}")
        value = project.setting(var)
        if not value:
            empty.add(target)
            continue
        mode = ref.get("mode")
        found.append(
            SecretFile(
                object_name(stack, key, value.encode()),
                var,
                target,
                str(ref.get("uid") or "0"),
                str(ref.get("gid") or "0"),
                int(str(mode), 8) if mode is not None else 0o444,
            )
        )
    return found, empty


def render(
    project: Project,
    model: dict[str, Any],
    placement: Mapping[str, str],
    constraints: list[str],
    only: tuple[str, ...] = (),
) -> Rendered:
    """The stack file for ``model`` (the merged compose model). ``placement``:
    service -> "single" | "every-node"; ``constraints`` for the single ones;
    ``only``: render just these services (others are left as they run)."""
    stack = project.name
    compose_dir = project.compose_file.parent
    rendered = Rendered(stack, {"version": "3.8", "services": {}})
    services: dict[str, Any] = rendered.document["services"]
    configs: dict[str, Any] = {}
    used_volumes: set[str] = set()
    used_networks: set[str] = set()
    for name, service in (model.get("services") or {}).items():
        if only and name not in only:
            continue
        out: dict[str, Any] = {k: service[k] for k in _KEPT if service.get(k) is not None}
        files, mounts = _config_files(stack, project.root, service, compose_dir)
        secrets, empty = _secret_refs(stack, project, service, model.get("secrets") or {})
        env = out.get("environment") or {}
        out["environment"] = {k: v for k, v in env.items() if v not in empty}
        volumes = [_volume(m) for m in mounts]
        volumes += [_tmpfs(str(t)) for t in service.get("tmpfs") or []]
        used_volumes |= {str(m["source"]) for m in mounts if m.get("type") == "volume"}
        if volumes:
            out["volumes"] = volumes
        if service.get("healthcheck"):
            out["healthcheck"] = _healthcheck(service["healthcheck"])
        networks = list(service.get("networks") or {})
        used_networks |= set(networks)
        out["networks"] = networks
        out["configs"] = [{"source": c.name, "target": c.target, "mode": 0o444} for c in files]
        out["secrets"] = [
            {"source": s.name, "target": s.target, "uid": s.uid, "gid": s.gid, "mode": s.mode}
            for s in secrets
        ]
        for c in files:
            configs[c.name] = {"name": c.name, "file": str(c.path)}
            if c.template:
                configs[c.name]["template_driver"] = "golang"
        every_node = placement.get(name) == "every-node"
        out["deploy"] = {
            "mode": "global" if every_node else "replicated",
            # Names resolve to the tasks' own addresses: no virtual IP (nothing is
            # published through the routing mesh), and no need for IPVS in the kernel.
            "endpoint_mode": "dnsrr",
            "restart_policy": {"condition": "any", "delay": "5s"},
        }
        if not every_node:
            out["deploy"]["replicas"] = 1
            out["deploy"]["placement"] = {"constraints": list(constraints)}
        services[name] = out
        rendered.configs[name] = files
        rendered.secrets[name] = secrets
        rendered.images[name] = str(service.get("image", ""))
    if configs:
        rendered.document["configs"] = configs
    rendered.document["networks"] = _networks(model, used_networks, rendered)
    rendered.document["volumes"] = _volumes(model, used_volumes, compose_dir, rendered)
    return rendered


def _networks(model: dict[str, Any], used: set[str], rendered: Rendered) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, net in (model.get("networks") or {}).items():
        if key not in used:
            continue
        if net.get("external"):
            out[key] = {"external": True, "name": net.get("name", key)}
            rendered.networks[key] = str(net.get("name", key))
        else:
            out[key] = {"driver": "overlay", "attachable": bool(net.get("attachable", True))}
    return out


def _volumes(
    model: dict[str, Any], used: set[str], compose_dir: Path, rendered: Rendered
) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, vol in (model.get("volumes") or {}).items():
        if key not in used:
            continue
        out[key] = {}
        local = (vol or {}).get(LOCAL_BIND_KEY)
        if local:
            rendered.local_binds[f"{rendered.stack}_{key}"] = (compose_dir / str(local)).resolve()
    return out
