"""What a format-2 manifest says about one service: every file, and where its bytes are.

A service's data is a list of entries in the order a restore writes them
(a directory before what it holds): directories, symlinks, hard links and
files, each with its mode, owner and time. A file's bytes are either an
object of their own (``blob``: large or immutable files, shared between
backups) or part of the service's pack, one object holding the other files'
bytes one after the other, in entry order (small or changing files: a
database, a WAL). Paths are relative to the data directory.

Parsing is as strict as for format 1, because a manifest comes from outside:
every path is a plain relative name without "." or ".." components, unique,
never below a file or link listed before it; a symlink's target is relative without
".."; a hard link points at a file listed before it; numbers are bounded; the
pack's size is exactly the sum of the packed files. A manifest that passes
can be restored without any member leaving the data directory.
"""

from __future__ import annotations

import posixpath
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

from monctl.repository.objects import Blob, is_id

KINDS = ("file", "dir", "symlink", "hardlink")
MAX_PATH = 4096
MAX_ENTRIES = 2_000_000
_BIG = 2**63


@dataclass(frozen=True, slots=True)
class FileEntry:
    path: str  # relative to the data directory: "01HBLOCK/chunks/000001"
    kind: str  # one of KINDS
    mode: int
    uid: int
    gid: int
    mtime: int
    size: int = 0  # files: plaintext bytes
    sha256: str = ""  # files: of the plaintext
    link: str = ""  # symlinks: the target; hard links: the path of the file they link to
    blob: Blob | None = None  # files stored as their own object; None: in the pack

    @property
    def top(self) -> str:
        """The first component of the path (a TSDB block's ULID)."""
        return self.path.split("/", 1)[0]

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "path": self.path,
            "type": self.kind,
            "mode": self.mode,
            "uid": self.uid,
            "gid": self.gid,
            "mtime": self.mtime,
        }
        if self.kind == "file":
            out["size"], out["sha256"] = self.size, self.sha256
            if self.blob is not None:  # its size and sha256 are the file's, set above
                out.update(self.blob.to_json())
        elif self.kind in ("symlink", "hardlink"):
            out["link"] = self.link
        return out


@dataclass(frozen=True, slots=True)
class Stats:
    """What one service's backup cost and saved."""

    read_bytes: int = 0  # tar stream bytes read from the engine
    written_bytes: int = 0  # stored bytes this backup wrote to the destination
    new_objects: int = 0
    reused_objects: int = 0  # objects referenced that the repository already held
    reused_bytes: int = 0  # their stored bytes

    def to_json(self) -> dict[str, int]:
        return {
            "read_bytes": self.read_bytes,
            "written_bytes": self.written_bytes,
            "new_objects": self.new_objects,
            "reused_objects": self.reused_objects,
            "reused_bytes": self.reused_bytes,
        }


@dataclass(frozen=True, slots=True)
class ServiceFiles:
    """One service in a format-2 manifest."""

    image: str
    version: str | None
    strategy: str
    files: tuple[FileEntry, ...]
    pack: Blob | None
    stats: Stats = field(default_factory=Stats)
    # What the service held, for a restore drill to compare with (Drill.record).
    facts: dict[str, Any] = field(default_factory=dict)

    def blobs(self) -> Iterator[Blob]:
        """Every stored content this service needs (the pack first)."""
        if self.pack is not None:
            yield self.pack
        for entry in self.files:
            if entry.blob is not None:
                yield entry.blob

    @property
    def stored_size(self) -> int:
        """Stored bytes of the distinct objects it needs."""
        return sum({b.ref.id: b.ref.stored for b in self.blobs()}.values())

    @property
    def raw_size(self) -> int:
        return sum(e.size for e in self.files)

    def to_json(self, files: bool = True) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "image": self.image,
            "version": self.version,
            "strategy": self.strategy,
            "pack": self.pack.to_json() if self.pack else None,
            "stats": self.stats.to_json(),
        }
        if self.facts:
            doc["facts"] = self.facts
        if files:
            doc["files"] = [e.to_json() for e in self.files]
        return doc


def _int(obj: Mapping[str, Any], key: str, where: str, top: int = _BIG) -> int:
    value = obj[key]
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < top:
        raise ValueError(f"{where}: {key} is not an integer in range")
    return value


def _text(obj: Mapping[str, Any], key: str, where: str) -> str:
    value = obj[key]
    if not isinstance(value, str):
        raise TypeError(f"{where}: {key} is not a string")
    if len(value) > MAX_PATH or "\0" in value:
        raise ValueError(f"{where}: {key} is too long or holds a NUL")
    try:
        # What restore writes into its tar stream: UTF-8, with the bytes of a name that
        # is not UTF-8 as surrogate escapes. A lone surrogate beyond those cannot be
        # written, so what verify accepts here restore can always write.
        value.encode("utf-8", "surrogateescape")
    except UnicodeEncodeError:
        raise ValueError(f"{where}: {key} holds a character no file name can") from None
    return value


def check_path(path: str, where: str) -> None:
    """A plain relative name: no leading "/", no "", "." or ".." component."""
    parts = path.split("/")
    if not path or path.startswith("/") or any(p in ("", ".", "..") for p in parts):
        raise ValueError(f"{where}: unsafe path {path[:120]!r}")


def _entry(obj: Any, i: int) -> FileEntry:
    where = f"file #{i}"
    if not isinstance(obj, Mapping):
        raise TypeError(f"{where}: not an object")
    path = _text(obj, "path", where)
    where = f"file {path[:120]!r}"
    check_path(path, where)
    kind = obj["type"]
    if kind not in KINDS:
        raise ValueError(f"{where}: unknown type {str(kind)[:20]!r}")
    common = {
        "path": path,
        "kind": kind,
        "mode": _int(obj, "mode", where, 0o10000),
        "uid": _int(obj, "uid", where, 2**32),
        "gid": _int(obj, "gid", where, 2**32),
        "mtime": _int(obj, "mtime", where),
    }
    if kind == "file":
        sha = _text(obj, "sha256", where)
        if not is_id(sha):
            raise ValueError(f"{where}: bad sha256")
        blob = Blob.from_json(obj, where) if "object" in obj else None
        return FileEntry(**common, size=_int(obj, "size", where), sha256=sha, blob=blob)
    if kind in ("symlink", "hardlink"):
        link = _text(obj, "link", where)
        if not link or link.startswith("/") or ".." in link.split("/"):
            raise ValueError(f"{where}: unsafe link target {link[:120]!r}")
        return FileEntry(**common, link=link)
    return FileEntry(**common)


def parse_files(obj: Any, name: str) -> tuple[tuple[FileEntry, ...], int]:
    """The entries of service ``name`` and the bytes its pack must hold."""
    if not isinstance(obj, list):
        raise TypeError(f"service {name}: files is not a list")
    if len(obj) > MAX_ENTRIES:
        raise ValueError(f"service {name}: more than {MAX_ENTRIES} files")
    entries: list[FileEntry] = []
    kinds: dict[str, str] = {}
    packed = 0
    for i, raw in enumerate(obj):
        entry = _entry(raw, i)
        if entry.path in kinds and not (kinds[entry.path] == "made" and entry.kind == "dir"):
            raise ValueError(f"service {name}: {entry.path[:120]!r} is listed twice")
        parent = posixpath.dirname(entry.path)
        while parent and kinds.get(parent, "made") in ("dir", "made"):
            # A directory not listed (yet) is made on the way, as tar does.
            kinds.setdefault(parent, "made")
            parent = posixpath.dirname(parent)
        if parent:
            raise ValueError(f"service {name}: {entry.path[:120]!r} lies below a non-directory")
        if entry.kind == "hardlink" and kinds.get(entry.link) != "file":
            raise ValueError(
                f"service {name}: hard link {entry.path[:120]!r} points at no file before it"
            )
        kinds[entry.path] = entry.kind
        if entry.kind == "file" and entry.blob is None:
            packed += entry.size
        entries.append(entry)
    return tuple(entries), packed


def parse_service(
    obj: Any, name: str, text: Any, facts: Callable[[Mapping[str, Any], str], dict[str, Any]]
) -> ServiceFiles:
    """Service ``name`` of a format-2 manifest; ``text(obj, key)`` reads a bounded string."""
    if not isinstance(obj, Mapping):
        raise TypeError(f"service {name}: not an object")
    files, packed = parse_files(obj["files"], name)
    pack = Blob.from_json(obj["pack"], f"service {name} pack") if obj["pack"] is not None else None
    if (pack.size if pack else 0) != packed:
        raise ValueError(f"service {name}: the pack does not hold exactly the packed files")
    stats_obj = obj.get("stats") or {}
    if not isinstance(stats_obj, Mapping):
        raise TypeError(f"service {name}: stats is not an object")
    stats = Stats(**{k: _int(stats_obj, k, f"service {name} stats") for k in Stats().to_json()})
    version = obj.get("version")
    return ServiceFiles(
        image=text(obj, "image"),
        version=text(obj, "version") if version is not None else None,
        strategy=text(obj, "strategy"),
        files=files,
        pack=pack,
        stats=stats,
        facts=facts(obj, name),
    )
