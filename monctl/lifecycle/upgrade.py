"""``monctl init --upgrade DIR``: bring a stack written by ``monctl init`` up to the
files this monctl ships, without losing an edit.

``init`` records what it wrote (``.monctl/shipped.json``: each file's sha256 and the
monctl version), so an upgrade can tell a file the operator edited from one left as
shipped. Per shipped file:

- missing in DIR: written (``added``);
- the same as shipped: nothing to do (``unchanged``);
- left as the last init or upgrade wrote it: replaced by the new one (``updated``);
- edited, or not on the record (a stack from before the record): the new file is
  written beside it as ``FILE.new``, as package managers do (``review``), and the
  operator's file is not touched.

``.env`` is never written (it holds the secrets): each ``*_IMAGE`` pin in it that
differs from the shipped ``.env.example`` is reported, so a newer monctl's pins are
not silently ignored. With ``dry_run`` nothing is written at all.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from monctl import __version__
from monctl.errors import ConfigError, ExitCode

RECORD = Path(".monctl") / "shipped.json"
PARTS = ("compose", "config", ".env.example")
_RECORD_MAX = 4 * 1024 * 1024  # a record is a few KiB; anything larger is not ours


def shipped_files(source: Path) -> dict[str, Path]:
    """Every file of the stack this monctl ships, by its path relative to the stack."""
    found: dict[str, Path] = {}
    for part in PARTS:
        top = source / part
        if top.is_file():
            found[part] = top
            continue
        for path in sorted(top.rglob("*")):
            if path.is_file() and "__pycache__" not in path.parts:
                found[path.relative_to(source).as_posix()] = path
    return found


def digest(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def read_record(target: Path) -> dict[str, str]:
    """The files the last init/upgrade wrote and their sha256 ({} when there is no
    record, or it is not one monctl wrote: then every difference counts as an edit)."""
    path = target / RECORD
    try:
        if path.is_symlink() or path.stat().st_size > _RECORD_MAX:
            return {}
        doc = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    files = doc.get("files") if isinstance(doc, dict) else None
    if not isinstance(files, dict):
        return {}
    return {
        k: v for k, v in files.items() if isinstance(k, str) and isinstance(v, str) and len(v) == 64
    }


def write_record(target: Path, files: dict[str, str]) -> None:
    path = target / RECORD
    path.parent.mkdir(exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text(
        json.dumps({"monctl_version": __version__, "files": files}, indent=2, sort_keys=True)
        + "\n",
        encoding="utf-8",
    )
    os.replace(tmp, path)


def record_init(source: Path, target: Path) -> None:
    """After ``init`` copied the stack: remember what it wrote."""
    write_record(target, {rel: digest(p) for rel, p in shipped_files(source).items()})


@dataclass
class UpgradeReport:
    target: Path
    dry_run: bool
    files: list[tuple[str, str]] = field(default_factory=list)  # (path, action)
    images: list[tuple[str, str, str]] = field(default_factory=list)  # (var, .env, shipped)

    @property
    def exit_code(self) -> ExitCode:
        return ExitCode.OK

    @property
    def to_review(self) -> list[str]:
        return [path for path, action in self.files if action == "review"]

    def to_json(self) -> dict[str, Any]:
        return {
            "directory": str(self.target),
            "dry_run": self.dry_run,
            "files": [{"path": p, "action": a} for p, a in self.files],
            "review": self.to_review,
            "image_pins": [{"var": v, "env": e, "shipped": s} for v, e, s in self.images],
        }


def _env_images(target: Path, shipped_example: Path) -> list[tuple[str, str, str]]:
    from monctl.envfile import read_env

    env_path = target / ".env"
    if not env_path.is_file():
        return []
    env = read_env(env_path)
    shipped = read_env(shipped_example, ".env.example")
    return [
        (var, env[var], shipped[var])
        for var in sorted(shipped)
        if var.endswith("_IMAGE") and var in env and env[var] != shipped[var]
    ]


@dataclass(frozen=True)
class UpgradeRequest:
    """What ``monctl init --upgrade`` is asked: the shipped files (``source``), the copy to
    bring up to them (``target``), and whether only to say what would change."""

    source: Path
    target: Path
    dry_run: bool = False


def perform(request: UpgradeRequest) -> UpgradeReport:
    """``monctl init --upgrade``."""
    return upgrade(request.source, request.target, request.dry_run)


def upgrade(source: Path, target: Path, dry_run: bool = False) -> UpgradeReport:
    """Compare the stack in ``target`` with the files shipped in ``source`` and
    bring it up to them without losing an edit (see the module's text)."""
    from monctl.project import COMPOSE_FILE

    target = target.expanduser().resolve()
    if not (target / COMPOSE_FILE).is_file():
        raise ConfigError(
            f"{target} does not hold a stack ({COMPOSE_FILE} is missing)",
            hint="create one with `monctl init DIR`",
        )
    record = read_record(target)
    report = UpgradeReport(target, dry_run)
    written = dict(record)
    for rel, new in shipped_files(source).items():
        here = target / rel
        new_sum = digest(new)
        if here.is_symlink() or (here.exists() and not here.is_file()):
            action = "review"  # not a plain file: never replaced, the new one goes beside it
        elif not here.exists():
            action = "added"
        else:
            have = digest(here)
            if have == new_sum:
                action = "unchanged"
            elif record.get(rel) == have:
                action = "updated"
            else:
                action = "review"
        report.files.append((rel, action))
        if dry_run or action == "unchanged":
            if action == "unchanged":
                written[rel] = new_sum
            continue
        dest = here if action in ("added", "updated") else here.with_name(here.name + ".new")
        dest.parent.mkdir(parents=True, exist_ok=True)
        tmp = dest.with_name(dest.name + ".monctl-tmp")
        tmp.unlink(missing_ok=True)  # a leftover (or a link) is never written through
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, new.stat().st_mode & 0o777)
        with os.fdopen(fd, "wb") as fh:
            fh.write(new.read_bytes())
        os.replace(tmp, dest)  # replaces a link named FILE.new, never follows it
        if action != "review":
            written[rel] = new_sum
    report.images = _env_images(target, source / ".env.example")
    if not dry_run:
        write_record(target, written)
    return report
