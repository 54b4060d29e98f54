"""Builds real format-1 backups (monctl's flat archives, before incremental backups) for
the archive and backup-listing tests: real tar streams (files, directories, links),
compressed by monctl's own compress_stream, written through a Storage, with a manifest
written last — the layout ``monctl backup`` produced. Format 2 (what ``monctl backup``
writes now) is made by the real pipeline: see ``support.repo``."""

from __future__ import annotations

import io
import os
import tarfile
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta

from monctl.adapters.storage import Storage
from monctl.repository.archive import Digest, compress_stream
from monctl.repository.manifest import (
    Manifest,
    ServiceEntry,
    archive_key,
    archive_name,
    parse_backup_id,
    write_manifest,
)


def tar_bytes(root: str = "prometheus", files: dict[str, bytes] | None = None) -> bytes:
    """A tar stream holding ``root``/ with ``files`` and a relative symlink inside it."""
    files = files if files is not None else default_files()
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        add_dir(tar, root)
        for name, data in files.items():
            parts = name.split("/")[:-1]
            for i in range(1, len(parts) + 1):
                path = f"{root}/{'/'.join(parts[:i])}"
                if path not in tar.getnames():
                    add_dir(tar, path)
            add_file(tar, f"{root}/{name}", data)
        link = tarfile.TarInfo(f"{root}/current")
        link.type, link.linkname = tarfile.SYMTYPE, "wal"
        tar.addfile(link)
    return buf.getvalue()


def default_files() -> dict[str, bytes]:
    return {
        "wal/00000001": os.urandom(70_000) + bytes(100_000),
        "01HBLOCK/index": b"index " * 5000,
        "01HBLOCK/chunks/000001": os.urandom(50_000),
        "queries.active": b"",
    }


def add_dir(tar: tarfile.TarFile, name: str) -> None:
    info = tarfile.TarInfo(name)
    info.type, info.mode = tarfile.DIRTYPE, 0o755
    tar.addfile(info)


def add_file(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size, info.uid, info.gid = len(data), 65534, 65534
    tar.addfile(info, io.BytesIO(data))


def pieces(data: bytes, size: int = 64 * 1024) -> Iterable[bytes]:
    return (data[i : i + size] for i in range(0, len(data), size))


def make_backup(
    storage: Storage,
    backup_id: str,
    services: Iterable[str] = ("prometheus", "grafana"),
    compression: str = "zstd",
    manifest: bool = True,
) -> Manifest:
    """Write a backup with one real archive per service; the manifest last (or not)."""
    entries = {}
    for service in services:
        digest = Digest()
        key = archive_key(backup_id, service, compression)
        storage.put(key, compress_stream(pieces(tar_bytes(service)), compression, digest))
        entries[service] = ServiceEntry(
            archive=archive_name(service, compression),
            image=f"example/{service}:1.0",
            version="1.0",
            size=digest.size,
            raw_size=digest.raw_size,
            sha256=digest.sha256,
            strategy="pause-copy",
            data_root=service,
        )
    started = parse_backup_id(backup_id)
    m = Manifest(
        backup_id=backup_id,
        monctl_version="0.1.0",
        started_at=started,
        finished_at=started + timedelta(seconds=42),
        compression=compression,
        services=entries,  # type: ignore[arg-type]
        format_version=1,
    )
    if manifest:
        write_manifest(storage, m)
    return m


def days_ago(now: datetime, days: float) -> str:
    return (now - timedelta(days=days)).astimezone(UTC).strftime("%Y%m%dT%H%M%SZ")


class GeneratedTar(io.RawIOBase):
    """A tar stream of ``count`` small files, produced as it is read (never whole)."""

    def __init__(self, count: int) -> None:
        self._chunks = self._produce(count)
        self._buf = b""

    @staticmethod
    def _produce(count: int) -> Iterator[bytes]:
        top = tarfile.TarInfo("loki")
        top.type = tarfile.DIRTYPE
        yield top.tobuf(tarfile.GNU_FORMAT)
        for i in range(count):
            info = tarfile.TarInfo(f"loki/chunks/{i:08d}")
            info.size = 10
            yield info.tobuf(tarfile.GNU_FORMAT) + b"0123456789" + b"\0" * 502
        yield b"\0" * 1024

    def readable(self) -> bool:
        return True

    def readinto(self, b: memoryview) -> int:  # type: ignore[override]
        while not self._buf:
            nxt = next(self._chunks, None)
            if nxt is None:
                return 0
            self._buf = nxt
        n = min(len(b), len(self._buf))
        b[:n] = self._buf[:n]
        self._buf = self._buf[n:]
        return n
