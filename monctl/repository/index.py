"""What a repository already holds, as a backup starting now sees it.

Built once per backup from two sources: the listing of ``objects/`` (which
objects are present, and how large) and the newest complete format-2
manifest holding each service being backed up (which files it held, in which
objects). From these:

- ``units(service)``: the entries of each immutable unit (a TSDB block) as
  last backed up; ``ingest.plan`` reuses a unit without reading it when the
  listing shows it unchanged and all its objects present;
- ``known(sha256, size)``: an object, present and referenced by a complete
  backup, that holds this plaintext — so content read again is not written
  again. Only objects a manifest references count: an unreferenced object
  may be garbage that a prune elsewhere is deleting right now.

Objects written by the running backup are added as it goes (``add``), so
the same content twice in one backup is stored once. An object that went
missing is simply not present: the unit that needs it is read again and
the object rewritten, which is how a backup repairs the repository.

Storing
=======

``ObjectStore``: storing one file's bytes as an object of the backup's staging batch, or
finding it stored.

Everything happens piece by piece as the engine's stream arrives (views of
its chunks, never copied): each piece is hashed the moment it is read, so
the engine, which produces the stream at its own pace and waits while nobody
reads it, is never kept waiting long (measured: faster than hashing and
writing on a second thread, which only adds contention for the GIL on two
cores; bench/README.md).

- A small file (up to ``IN_MEMORY``) is kept as pieces until its hash is
  known: when the repository holds that content, nothing is written at all
  (Loki's chunks, read again every time), else the pieces are written in one
  ``writev``.
- A larger file is encoded into a spool while it is hashed; the spool is
  dropped if the content turns out to be in the repository already.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from monctl.errors import IntegrityError, StorageError
from monctl.repository.filelist import FileEntry, ServiceFiles
from monctl.repository.manifest import Manifest, is_backup_id, read_manifest
from monctl.repository.objects import PREFIX, SAMPLE, Blob, Encoder, choose_codec, id_of_key

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage import Spool, Storage
    from monctl.adapters.storage import Staging as Staging  # for the verbs' annotations


@dataclass
class Index:
    present: dict[str, int] = field(default_factory=dict)  # object id -> stored size
    by_content: dict[tuple[str, int], Blob] = field(default_factory=dict)
    services: dict[str, ServiceFiles] = field(default_factory=dict)  # last backup of each
    mine: set[str] = field(default_factory=set)  # ids written by the running backup

    @property
    def stored_bytes(self) -> int:
        """Bytes of every object in the repository (as listed, plus this backup's)."""
        return sum(self.present.values())

    def present_blob(self, blob: Blob) -> bool:
        return self.present.get(blob.ref.id) == blob.ref.stored

    def known(self, sha256: str, size: int) -> Blob | None:
        blob = self.by_content.get((sha256, size))
        return blob if blob is not None and self.present_blob(blob) else None

    def add(self, blob: Blob) -> None:
        """An object this backup wrote (present once the batch commits)."""
        self.present[blob.ref.id] = blob.ref.stored
        self.by_content.setdefault((blob.sha256, blob.size), blob)
        self.mine.add(blob.ref.id)

    def written(self, object_id: str) -> bool:
        return object_id in self.mine

    def units(self, service: str) -> dict[str, list[FileEntry]]:
        """The entries of ``service``'s last backup, by top-level name."""
        files = self.services.get(service)
        tops: dict[str, list[FileEntry]] = {}
        for entry in files.files if files else ():
            tops.setdefault(entry.top, []).append(entry)
        return tops

    def learn(self, manifest: Manifest, services: Iterable[str]) -> None:
        for name, data in manifest.services.items():
            if not isinstance(data, ServiceFiles):
                continue
            if name in services and name not in self.services:
                self.services[name] = data
            for blob in data.blobs():
                self.by_content.setdefault((blob.sha256, blob.size), blob)


def list_objects(storage: Storage) -> dict[str, int]:
    """Every object in the repository: id -> stored size."""
    found = {}
    for info in storage.list_objects(PREFIX):
        object_id = id_of_key(info.key)
        if object_id is not None:
            found[object_id] = info.size
    return found


def load(storage: Storage, services: Iterable[str], recipients: tuple[str, ...] = ()) -> Index:
    """The index for a backup of ``services``: one listing, and the newest complete
    manifest that holds each of them (older ones are not read: what they alone
    hold is not in the data any more). Unreadable manifests are passed over, and
    so are those encrypted otherwise than to exactly ``recipients`` (none: not
    encrypted): an object is reused only if whoever can read this backup can
    read it, and no plaintext object ends up in an encrypted backup."""
    wanted = set(services)
    index = Index(present=list_objects(storage))
    ids = sorted((n for n in storage.children("") if is_backup_id(n)), reverse=True)
    for backup_id in ids:
        if wanted <= set(index.services):
            break
        try:
            manifest = read_manifest(storage, backup_id)
        except (IntegrityError, StorageError):
            continue  # incomplete, invalid, or gone since the listing
        if manifest.recipients != recipients:
            continue
        if manifest.format_version >= 2 and wanted & set(manifest.services):
            index.learn(manifest, wanted - set(index.services))
    return index


# Storing

IN_MEMORY = 4 * 1024 * 1024


def _head(pieces: list[bytes | memoryview], size: int) -> bytes:
    """The first ``size`` bytes of ``pieces`` (joining only as many as that takes)."""
    taken, total = [], 0
    for piece in pieces:
        taken.append(piece)
        total += len(piece)
        if total >= size:
            break
    return b"".join(taken)[:size]


def hashed(pieces: Iterable[bytes | memoryview]) -> tuple[list[bytes | memoryview], str]:
    """A small file's pieces, held, and their sha256 (touches nothing shared: any thread)."""
    hasher = hashlib.sha256()
    held: list[bytes | memoryview] = []
    for piece in pieces:
        hasher.update(piece)
        held.append(piece)
    return held, hasher.hexdigest()


@dataclass
class Prepared:
    """A file ``ObjectStore.prepare`` made ready: encoded into ``spool`` as ``blob``, or
    (known already) its pieces ``held`` and their ``sha``."""

    spool: Spool | None
    blob: Blob | None
    held: list[bytes | memoryview] = field(default_factory=list)
    sha: str = ""


@dataclass
class ObjectStore:
    staging: Staging
    index: Index
    mode: str  # auto, zstd, gzip, none
    full: bool = False
    recipients: tuple[str, ...] = ()  # age public keys: every object encrypted to them
    written: int = 0  # stored bytes written
    new_objects: int = 0
    reused: dict[str, int] = field(default_factory=dict)  # object id -> stored bytes

    def _known(self, sha256: str, size: int) -> Blob | None:
        known = None if self.full else self.index.known(sha256, size)
        if known is not None:
            self.reused[known.ref.id] = known.ref.stored
        return known

    def whole(self, pieces: Iterable[bytes | memoryview], compressed: bool) -> Blob:
        """A small file: hashed, looked up, written only when new."""
        return self.whole_hashed(*hashed(pieces), compressed)

    def whole_hashed(self, held: list[bytes | memoryview], sha: str, compressed: bool) -> Blob:
        """``whole`` of a file already hashed (``hashed``, on another thread)."""
        known = self._known(sha, sum(len(p) for p in held))
        if known is not None:
            return known
        return self.keep(*self._encoded(held, sha, compressed))

    def _encoded(
        self, held: list[bytes | memoryview], sha: str, compressed: bool
    ) -> tuple[Spool, Blob]:
        """A small file's stored form in a spool of its own (dropped if encoding fails)."""
        sample = b"" if compressed else _head(held, SAMPLE)
        spool = self.staging.spool()
        codec = choose_codec(self.mode, sample, compressed)
        try:
            return spool, Encoder(codec, spool, self.recipients).write_whole(held, sha)
        except BaseException:
            self.staging.drop(spool)
            raise

    def stream(self, pieces: Iterable[bytes | memoryview], compressed: bool) -> Blob:
        """A large file: encoded into a spool as it is hashed, dropped if already stored."""
        spool = self.staging.spool()
        return self.settle(spool, self.encode(pieces, compressed, spool))

    def encode(self, pieces: Iterable[bytes | memoryview], compressed: bool, spool: Spool) -> Blob:
        """The stored form of ``pieces`` into ``spool`` (its own, from ``staging.spool()``):
        touches nothing shared, so another thread may run it; ``settle`` then decides."""
        it = iter(pieces)
        head = bytearray()
        if not compressed:  # the sample decides the codec
            for piece in it:
                head += piece
                if len(head) >= SAMPLE:
                    break
        codec = choose_codec(self.mode, bytes(head[:SAMPLE]), compressed)
        encoder = Encoder(codec, spool, self.recipients)
        try:
            encoder.write(head)
            del head
            for piece in it:
                encoder.write(piece)
            return encoder.finish()
        except BaseException:
            encoder.abort()  # stops the age thread, if one runs
            raise

    def prepare(
        self, pieces: Iterable[bytes | memoryview], size: int, compressed: bool
    ) -> Prepared:
        """A file of ``size`` bytes hashed and, unless the repository holds it already,
        encoded into a spool of its own: touches nothing shared but the staging's list of
        spools, so ingest's workers run it; ``settled`` then decides, on one thread."""
        if size > IN_MEMORY:
            spool = self.staging.spool()
            blob = self.encode(pieces, compressed, spool)
        else:
            held, sha = hashed(pieces)
            if not self.full and self.index.known(sha, sum(len(p) for p in held)):
                return Prepared(None, None, held, sha)  # reused: ``settled`` finds it
            spool, blob = self._encoded(held, sha, compressed)
        spool.done()
        return Prepared(spool, blob)

    def settled(self, prepared: Prepared, compressed: bool) -> Blob:
        """``prepare``'s file kept (or dropped: stored already, or twice in this backup)."""
        if prepared.spool is None or prepared.blob is None:
            return self.whole_hashed(prepared.held, prepared.sha, compressed)
        return self.settle(prepared.spool, prepared.blob)

    def settle(self, spool: Spool, blob: Blob) -> Blob:
        """An encoded spool kept as ``blob``'s object, or dropped when already stored."""
        known = self._known(blob.sha256, blob.size)
        if known is not None:
            self.staging.drop(spool)
            return known
        return self.keep(spool, blob)

    def keep(self, spool: Spool, blob: Blob) -> Blob:
        """Keep ``spool`` as ``blob``'s object (once per backup: a repeat is dropped)."""
        if self.index.written(blob.ref.id):  # the same content twice in this backup
            self.staging.drop(spool)
            return blob
        self.staging.keep(spool, blob.ref.key, replace=self.full)
        self.index.add(blob)
        self.written += blob.ref.stored
        self.new_objects += 1
        return blob
