"""A local directory as a backup destination (a mounted disk, NFS, ...).

Atomicity: an object is written to "<key>.partial-<random>" beside its final
name, fsynced, renamed over the final name with os.replace, and the directory
fsynced — a crash leaves either the old state or the complete object, plus at
worst a partial file that ``list`` ignores and ``clean_partials`` removes.
"""

from __future__ import annotations

import builtins
import io
import os
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import AbstractContextManager, contextmanager, suppress
from datetime import timedelta
from pathlib import Path
from typing import Any, BinaryIO

from monctl.adapters.storage import ObjectInfo, check_key
from monctl.adapters.storage.os_errors import storage_error
from monctl.adapters.storage.staging import (
    PARTIAL_RE,
    LocalStaging,
    fsync_path,
    linked_error,
    local_staging,
    partial_name,
)
from monctl.errors import StorageError


class LocalStorage:
    """Storage in a local directory; see ``monctl.adapters.storage.Storage``."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).expanduser().absolute()
        self.location = str(self.root)

    def __repr__(self) -> str:
        return f"LocalStorage({self.location!r})"

    def _path(self, key: str) -> Path:
        return self._inside(self.root.joinpath(*check_key(key).split("/")))

    def _inside(self, path: Path) -> Path:
        """``path``, unless a directory on its way below the root is a link (StorageError):
        no read, write, listing or deletion leaves the destination through one."""
        refused = linked_error(self.root, self.location, path)
        if refused is not None:
            raise refused
        return path

    def _start(self, prefix: str) -> Path:
        """The directory a walk of ``prefix`` starts from (itself not a link)."""
        head = prefix.rsplit("/", 1)[0] if "/" in prefix else ""
        if not head:
            return self.root
        start = self.root.joinpath(*check_key(head).split("/"))
        self._inside(start / "-")
        return start

    def _error(self, what: str, e: OSError) -> StorageError:
        return storage_error(e, self.location, what)

    def _require_root(self) -> None:
        if not self.root.is_dir():
            raise StorageError(
                f"backup directory {self.location} does not exist",
                hint="check the path (--to/--from, or the destination in .env)",
            )

    def put(self, key: str, chunks: Iterable[bytes], *, size_hint: int | None = None) -> int:
        final = self._path(key)
        try:
            final.parent.mkdir(parents=True, exist_ok=True)
        except OSError as e:
            raise self._error(f"cannot create the directory for {key}", e) from None
        tmp = final.with_name(partial_name(final.name))
        written = 0
        try:
            with open(tmp, "xb") as f:
                for chunk in chunks:
                    f.write(chunk)
                    written += len(chunk)
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, final)
        except BaseException as e:
            # Any failure, Ctrl-C included: leave no partial file behind.
            with suppress(OSError):
                tmp.unlink()
            if isinstance(e, OSError):
                raise self._error(f"cannot write {key}", e) from None
            raise
        fsync_path(final.parent)
        return written

    @contextmanager
    def _open(self, key: str) -> Iterator[BinaryIO]:
        path = self._path(key)
        try:
            # O_NOFOLLOW: an object that is a link is not one monctl wrote.
            f = os.fdopen(os.open(path, os.O_RDONLY | os.O_NOFOLLOW), "rb")
        except FileNotFoundError:
            raise StorageError(f"no object {key} in {self.location}") from None
        except OSError as e:
            raise self._error(f"cannot read {key}", e) from None
        with f:
            yield _Reading(f, lambda e: self._error(f"cannot read {key}", e))  # type: ignore[misc]

    def open(self, key: str) -> AbstractContextManager[BinaryIO]:
        return self._open(key)

    def _walk(self, start: Path) -> Iterator[Path]:
        for dirpath, dirnames, filenames in os.walk(start, onerror=None, followlinks=False):
            dirnames.sort()
            for name in sorted(filenames):
                yield Path(dirpath, name)

    def list_objects(self, prefix: str = "") -> builtins.list[ObjectInfo]:
        self._require_root()
        # Walk only the directory the prefix names, never the whole destination.
        start = self._start(prefix)
        out = []
        for path in self._walk(start):
            key = path.relative_to(self.root).as_posix()
            if not key.startswith(prefix) or PARTIAL_RE.search(key):
                continue
            try:
                st = path.lstat()
            except FileNotFoundError:
                continue  # deleted while we walked
            if os.path.isfile(path) and not path.is_symlink():
                out.append(ObjectInfo(key, st.st_size, st.st_mtime))
        return sorted(out, key=lambda o: o.key)

    def list(self, prefix: str = "") -> builtins.list[str]:
        return [o.key for o in self.list_objects(prefix)]

    def children(self, prefix: str = "") -> builtins.list[str]:
        self._require_root()
        base = self._start(prefix.strip("/") + "/")
        try:
            return sorted(e.name for e in os.scandir(base) if e.is_dir(follow_symlinks=False))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise self._error("cannot list", e) from None

    def _unlink(self, path: Path) -> bool:
        try:
            path.unlink()
            return True
        except FileNotFoundError:
            return False
        except OSError as e:
            raise self._error(f"cannot delete {path.relative_to(self.root)}", e) from None

    def _prune_empty_dirs(self, start: Path) -> None:
        d = start
        while d != self.root and self.root in d.parents:
            try:
                d.rmdir()
            except OSError:
                return  # not empty (or gone): stop climbing
            d = d.parent

    def delete(self, keys: Iterable[str]) -> None:
        for key in keys:
            path = self._path(key)
            self._unlink(path)
            self._prune_empty_dirs(path.parent)

    def delete_prefix(self, prefix: str) -> int:
        if not prefix.endswith("/"):
            raise StorageError(f"delete_prefix needs a directory prefix ending in '/': {prefix!r}")
        base = self._start(prefix)
        if not base.is_dir():
            return 0
        count = 0
        for path in list(self._walk(base)):
            if self._unlink(path) and not PARTIAL_RE.search(path.name):
                count += 1
        for dirpath, _dirs, _files in sorted(os.walk(base), key=lambda t: -len(t[0])):
            with suppress(OSError):
                os.rmdir(dirpath)
        self._prune_empty_dirs(base.parent)
        return count

    def clean_partials(
        self,
        prefix: str = "",
        older_than: timedelta = timedelta(hours=1),
        accept: Callable[[str], bool] | None = None,
    ) -> builtins.list[str]:
        start = self._start(prefix)
        if not start.is_dir():
            return []
        cutoff = time.time() - older_than.total_seconds()
        cleaned = []
        for path in self._walk(start):
            if not PARTIAL_RE.search(path.name):
                continue
            key = PARTIAL_RE.sub("", path.relative_to(self.root).as_posix())
            if not key.startswith(prefix) or (accept is not None and not accept(key)):
                continue
            try:
                if path.lstat().st_mtime > cutoff:
                    continue
            except FileNotFoundError:
                continue
            if self._unlink(path):
                cleaned.append(key)
        return cleaned

    def exists(self, key: str) -> bool:
        return self._path(key).is_file()

    def size(self, key: str) -> int:
        try:
            return self._path(key).stat().st_size
        except FileNotFoundError:
            raise StorageError(f"no object {key} in {self.location}") from None
        except OSError as e:
            raise self._error(f"cannot read {key}", e) from None

    def staging(self, prefix: str) -> AbstractContextManager[LocalStaging]:
        return local_staging(self.root, prefix, self._error)

    def check_writable(self) -> None:
        try:
            self.root.mkdir(parents=True, exist_ok=True)
            probe = self.root / partial_name(".monctl-write-test")
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as e:
            raise self._error("cannot write", e) from None


class _Reading(io.RawIOBase):
    """An open object file whose read errors (EIO, a disk gone) are StorageErrors, as
    ``Storage.open`` promises, not OSErrors in the middle of a restore."""

    def __init__(self, file: io.BufferedReader, fail: Callable[[OSError], StorageError]) -> None:
        self._file = file
        self._fail = fail

    def readable(self) -> bool:
        return True

    def fileno(self) -> int:  # a direct restore reads a plain object by its descriptor
        return self._file.fileno()

    def read(self, size: int | None = -1) -> bytes:
        try:
            return self._file.read(-1 if size is None else size)
        except OSError as e:
            raise self._fail(e) from None

    def readinto(self, b: Any) -> int:
        try:
            return self._file.readinto(b)
        except OSError as e:
            raise self._fail(e) from None
