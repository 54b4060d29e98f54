"""Objects: the one place where a stored object's bytes are produced and consumed.

A repository (format 2, docs/repository-format.md) stores file contents once,
as objects under ``objects/<first two hex digits>/<id>``. Bytes flow one way:

    plaintext -> encode (compress, or not; encryption slots in here) -> hash -> store

and back through ``open_object`` (``object_reader.py``). ``Encoder`` is the only producer
of stored bytes and ``open_object`` the only consumer, so client-side encryption is a
change to these two and nothing else.

An object's id is the hash of its STORED bytes, not of the plaintext (sha256; BLAKE3
for encrypted objects, see below):

- ``verify`` checks every object without any key (hash what is stored, compare
  with its name), which also works once objects are encrypted;
- two writers of one id write the same bytes, so racing backups cannot spoil
  each other's object (with random-nonce encryption, equal plaintexts become
  different objects rather than one name with two contents);
- dedupe does not need plaintext names: manifests record each file's plaintext
  sha256 next to the object that holds it, so a backup looks a known plaintext
  up there (``index.py``) and reuses its object.

Encrypted objects are named by BLAKE3 (``ObjectRef.hash``; manifests say
``"id_hash": "blake3"``, absent = sha256, which is also what encrypted objects
written before this had). An encrypted object needs two hashes, the plaintext's
(manifest, dedupe) and the stored bytes' (its id); a plain uncompressed one
needs one. With sha256 for both, encryption cost ~1.2-1.4x a plain first backup
on 2 cores; BLAKE3 hashes ~3.5x faster here (bench/README.md). Plaintext hashes
stay sha256: they are what an operator checks with sha256sum, and what dedupe
and every manifest already use.

A ``Blob`` is what a manifest says about stored content: the object, and the
size and sha256 of the plaintext it decodes to. ``open_object`` checks both
hashes and both sizes as it streams, and never yields more plaintext than
the manifest promised (a decompression bomb stops at the expected size).
"""

from __future__ import annotations

import hashlib
import re
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monctl.errors import IntegrityError
from monctl.repository.archive import GZIP_LEVEL, ZSTD_LEVEL

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.storage import Spool


PREFIX = "objects/"
CODECS: tuple[str, ...] = ("none", "zstd", "gzip")
MODES: tuple[str, ...] = ("auto", *CODECS)  # what --compression accepts
_ID_RE = re.compile(r"^[0-9a-f]{64}$")  # sha256 and BLAKE3 (32 bytes) alike
ID_HASHES: tuple[str, ...] = ("sha256", "blake3")
_KEY_RE = re.compile(r"^objects/([0-9a-f]{2})/([0-9a-f]{64})$")
SAMPLE = 1024 * 1024  # "auto" judges a file by compressing its first MiB
WORTH_IT = 0.9  # compress only when the sample shrinks by 10% or more
READ_SIZE = 1024 * 1024


def object_key(object_id: str) -> str:
    return f"{PREFIX}{object_id[:2]}/{object_id}"


def id_of_key(key: str) -> str | None:
    """The object id a storage key names, or None when it is no object key."""
    match = _KEY_RE.match(key)
    if match is None or match.group(2)[:2] != match.group(1):
        return None
    return match.group(2)


def is_id(value: str) -> bool:
    return bool(_ID_RE.match(value))


@dataclass(frozen=True, slots=True)
class ObjectRef:
    """A stored object: its id (the ``hash`` of the stored bytes), stored size and codec;
    ``encrypted``: the stored bytes are an age file (of the codec's output)."""

    id: str
    stored: int
    codec: str
    encrypted: bool = False
    hash: str = "sha256"  # of the id: "blake3" for encrypted objects (module docstring)

    @property
    def key(self) -> str:
        return object_key(self.id)


@dataclass(frozen=True, slots=True)
class Blob:
    """Content as a manifest knows it: the object holding it, and what it decodes to."""

    ref: ObjectRef
    size: int  # plaintext bytes
    sha256: str  # of the plaintext

    def to_json(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "object": self.ref.id,
            "stored": self.ref.stored,
            "codec": self.ref.codec,
            "size": self.size,
            "sha256": self.sha256,
        }
        if self.ref.encrypted:  # absent when not: unencrypted manifests stay as they were
            doc["encrypted"] = True
        if self.ref.hash != "sha256":
            doc["id_hash"] = self.ref.hash
        return doc

    @classmethod
    def from_json(cls, obj: Any, where: str) -> Blob:
        """Strict: every field present and of its type; raise ValueError/TypeError."""
        if not isinstance(obj, Mapping):
            raise TypeError(f"{where}: not an object")
        object_id, sha = obj["object"], obj["sha256"]
        if not isinstance(object_id, str) or not is_id(object_id):
            raise ValueError(f"{where}: bad object id {str(object_id)[:70]!r}")
        if not isinstance(sha, str) or not is_id(sha):
            raise ValueError(f"{where}: bad sha256 {str(sha)[:70]!r}")
        codec = obj["codec"]
        if codec not in CODECS:
            raise ValueError(f"{where}: unknown codec {str(codec)[:20]!r}")
        stored, size = obj["stored"], obj["size"]
        for name, value in (("stored", stored), ("size", size)):
            if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 2**63:
                raise ValueError(f"{where}: {name} is not a non-negative integer")
        encrypted = obj.get("encrypted", False)
        if not isinstance(encrypted, bool):
            raise ValueError(f"{where}: encrypted is not true or false")
        id_hash = obj.get("id_hash", "sha256")
        if "id_hash" in obj and id_hash != "blake3":  # absent is sha256: never written
            raise ValueError(f"{where}: unknown id_hash {str(id_hash)[:20]!r}")
        if id_hash != "sha256" and not encrypted:
            raise ValueError(f"{where}: id_hash {id_hash!r} on an object not encrypted")
        return cls(ObjectRef(object_id, stored, codec, encrypted, id_hash), size, sha)


def id_hasher(name: str) -> Any:
    """A new hasher of object ids named ``name`` (one of ``ID_HASHES``)."""
    if name == "blake3":
        from monctl.adapters.age import blake3_hasher

        return blake3_hasher()
    return hashlib.sha256()


def check_mode(mode: str) -> str:
    if mode not in MODES:
        raise IntegrityError(f"unknown compression {mode!r}", hint=f"use one of {', '.join(MODES)}")
    return mode


def choose_codec(mode: str, sample: bytes, compressed: bool = False) -> str:
    """The codec for content whose first bytes are ``sample``.

    A forced ``mode`` (zstd, gzip, none) is obeyed. ``auto``: content the
    service declares already compressed (TSDB and Loki chunks) is stored as
    it is, without a sample; otherwise zstd only if the sample shrinks by at
    least 10% (Grafana's SQLite shrinks ~5x, TSDB chunks ~2%: not worth the CPU).
    """
    if mode != "auto":
        return check_mode(mode)
    if compressed or len(sample) < 64:
        return "none"
    import zstandard

    packed = zstandard.ZstdCompressor(level=ZSTD_LEVEL).compress(sample)
    return "zstd" if len(packed) <= len(sample) * WORTH_IT else "none"


class _Known:
    """A hash already computed, standing in for the hasher that would compute it."""

    def __init__(self, hexdigest: str) -> None:
        self._hex = hexdigest

    def hexdigest(self) -> str:
        return self._hex


class Encoder:
    """Plaintext in, stored bytes out to ``spool``: both hashed and counted as they pass.

    The ONE producer of stored bytes: plaintext -> codec -> age (when there are
    ``recipients``) -> hashed -> spool. With codec "none" and no encryption the
    stored bytes are the plaintext: hashed once. Encrypted bytes reach ``_sealed``
    from the encryptor, in the caller's thread (age1 keys) or pyrage's (SSH keys;
    the caller writes nothing to the spool meanwhile). ``abort`` when the object
    will not be finished (it stops pyrage's thread).

    Why no helper thread for the ciphertext's hash and write: measured on 2 cores,
    it saved no wall time and cost ~0.5 s of CPU per GiB in hand-offs, CPU the
    engine producing the tar needs (bench/README.md, encryption_bench.py).
    """

    def __init__(self, codec: str, spool: Spool, recipients: Sequence[str] = ()) -> None:
        self.codec = check_mode(codec)
        self.spool = spool
        self._plain: Any = hashlib.sha256()
        self._id_hash = "blake3" if recipients else "sha256"
        as_is = codec == "none" and not recipients
        self._stored = self._plain if as_is else id_hasher(self._id_hash)
        self.size = 0
        self._compress: Any = None
        if codec == "zstd":
            import zstandard

            self._compress = zstandard.ZstdCompressor(
                level=ZSTD_LEVEL, write_checksum=True
            ).compressobj()
        elif codec == "gzip":
            self._compress = zlib.compressobj(GZIP_LEVEL, zlib.DEFLATED, 31)
        self._age: Any = None
        if recipients:
            from monctl.adapters import age

            self._age = age.encryptor(recipients, self._sealed, "an object")

    def _sealed(self, data: bytes) -> None:
        """age hands over 64 KiB chunks (a local spool gathers them into whole blocks)."""
        self._stored.update(data)
        self.spool.write(data)

    def _out(self, data: bytes | bytearray | memoryview) -> None:
        if data:
            if self._age is not None:
                self._age.write(data)
                return
            if self._stored is not self._plain:
                self._stored.update(data)
            self.spool.write(data)

    def write(self, data: bytes | bytearray | memoryview) -> None:
        if not data:
            return
        self.size += len(data)
        self._plain.update(data)
        self._out(self._compress.compress(data) if self._compress else data)

    def write_whole(self, pieces: Sequence[bytes | memoryview], sha256: str) -> Blob:
        """All the plaintext at once, its sha256 already known (hashed once, not twice)."""
        self.size = sum(len(p) for p in pieces)
        if self._compress is None and self._age is None:
            self.spool.write_all(pieces)
            ref = ObjectRef(sha256, self.spool.size, self.codec)  # stored bytes = plaintext
            return Blob(ref, self.size, sha256)
        try:
            for piece in pieces:
                self._out(self._compress.compress(piece) if self._compress else piece)
        except BaseException:
            self.abort()  # no age thread (pyrage, SSH keys) outlives a failed object
            raise
        self._plain = _Known(sha256)
        return self.finish()

    def finish(self) -> Blob:
        try:
            if self._compress is not None:
                self._out(self._compress.flush())
            if self._age is not None:
                self._age.finish()  # every sealed byte has reached _sealed when it returns
        except BaseException:
            self.abort()  # no age thread (pyrage, SSH keys) outlives a failed object
            raise
        encrypted = self._age is not None
        ref = ObjectRef(
            self._stored.hexdigest(), self.spool.size, self.codec, encrypted, self._id_hash
        )
        return Blob(ref, self.size, self._plain.hexdigest())

    def abort(self) -> None:
        if self._age is not None:
            self._age.abort()
