"""Format-1 ("flat") backups of a running test stack's real data, as monctl wrote them
before incremental backups: one zstd tar archive per service, read through the engine's
archive API (what `monctl backup` streamed), and a format-1 manifest written last. The
tests use them to show that today's monctl still lists, verifies and restores them."""

from __future__ import annotations

import subprocess
from datetime import UTC, datetime

from monctl import services
from monctl.adapters.storage import Storage
from monctl.repository.archive import Digest, compress_stream
from monctl.repository.manifest import (
    Manifest,
    ServiceEntry,
    archive_key,
    archive_name,
    write_manifest,
)
from support.data import container, inspect
from support.engine import Stack


def flat_backup(stack: Stack, storage: Storage, backup_id: str, names: tuple[str, ...]) -> Manifest:
    entries = {}
    for name in names:
        data = services.get(name).data
        assert data is not None
        proc = subprocess.Popen(
            ["docker", "cp", f"{container(stack, name)}:{data.path}", "-"], stdout=subprocess.PIPE
        )
        assert proc.stdout is not None
        digest = Digest()
        chunks = iter(lambda out=proc.stdout: out.read(1 << 20), b"")  # type: ignore[misc]
        storage.put(archive_key(backup_id, name, "zstd"), compress_stream(chunks, "zstd", digest))
        assert proc.wait() == 0
        entries[name] = ServiceEntry(
            archive=archive_name(name, "zstd"),
            image=inspect(stack, name, "{{.Config.Image}}"),
            version=None,
            size=digest.size,
            raw_size=digest.raw_size,
            sha256=digest.sha256,
            strategy=data.strategy,
            data_root=data.path.rstrip("/").rsplit("/", 1)[-1],
        )
    now = datetime.now(UTC)
    manifest = Manifest(backup_id, "0.1.0", now, now, "zstd", entries, format_version=1)  # type: ignore[arg-type]
    write_manifest(storage, manifest)
    return manifest
