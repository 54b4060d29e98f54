"""monctl's age files against the reference implementation: Debian's `age` 1.1 (Go,
filippo.io/age), the tool an operator would reach for without monctl.

monctl writes age files to ``age1…`` keys itself (``adapters/age_native.py``, OpenSSL's
ChaCha20-Poly1305 through ``cryptography``), and through pyrage for SSH keys; it reads
them through pyrage. Here `age -d` must open everything monctl writes, at every 64 KiB
chunk boundary and with several recipients, and monctl must open what `age -e` writes.
The last test is the promise of docs/backup-and-restore.md: `age -d -i KEY OBJECT |
zstd -d` gives a backed-up file back without monctl.
"""

from __future__ import annotations

import io
import os
import subprocess
from pathlib import Path

import pytest
from support import repo, require_binary
from support.fake_runtime import FakeRuntime

from monctl.adapters import age
from monctl.adapters.storage.local import LocalStorage
from monctl.project import Project
from monctl.repository.manifest import read_manifest
from monctl.repository.objects import object_key

pytestmark = pytest.mark.binaries

CHUNK = 64 * 1024


def keygen(path: Path) -> str:
    """A key written by the reference `age-keygen`; its public key."""
    subprocess.run([require_binary("age-keygen"), "-o", str(path)], check=True,
                   capture_output=True)  # fmt: skip
    for line in path.read_text().splitlines():
        if line.startswith("# public key: "):
            return line.removeprefix("# public key: ").strip()
    raise AssertionError("age-keygen wrote no public key")


def reference_decrypt(ciphertext: bytes, identity: Path) -> bytes:
    done = subprocess.run([require_binary("age"), "-d", "-i", str(identity)],
                          input=ciphertext, capture_output=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode(errors="replace")
    return done.stdout


def monctl_encrypt(data: bytes, recipients: tuple[str, ...], piece: int) -> bytes:
    out = io.BytesIO()
    enc = age.encryptor(recipients, out.write, "test object")
    for at in range(0, len(data), piece):
        enc.write(data[at : at + piece])
    enc.finish()
    return out.getvalue()


@pytest.mark.parametrize(
    "size",
    [0, 1, CHUNK - 1, CHUNK, CHUNK + 1, 3 * CHUNK, 3 * CHUNK + 5, 16 * CHUNK + 123],
)
def test_the_reference_age_opens_what_monctl_writes_to_age1_keys(tmp_path: Path, size: int) -> None:
    first = keygen(tmp_path / "first.txt")
    second = keygen(tmp_path / "second.txt")
    data = os.urandom(size)
    for piece in (1000, CHUNK, 1 << 20):  # how the plaintext arrives must not matter
        ciphertext = monctl_encrypt(data, tuple(sorted((first, second))), piece)
        assert isinstance(age.encryptor((first,), io.BytesIO().write, "x"), age.NativeEncryptor)
        assert reference_decrypt(ciphertext, tmp_path / "first.txt") == data
        assert reference_decrypt(ciphertext, tmp_path / "second.txt") == data


def test_the_reference_age_refuses_a_truncated_monctl_file(tmp_path: Path) -> None:
    recipient = keygen(tmp_path / "key.txt")
    ciphertext = monctl_encrypt(os.urandom(3 * CHUNK), (recipient,), 1 << 20)
    done = subprocess.run([require_binary("age"), "-d", "-i", str(tmp_path / "key.txt")],
                          input=ciphertext[:-CHUNK], capture_output=True, check=False)  # fmt: skip
    assert done.returncode != 0  # the last chunk's flag is checked: no silent short read


def test_the_reference_age_opens_what_monctl_writes_to_ssh_keys(tmp_path: Path) -> None:
    subprocess.run([require_binary("ssh-keygen"), "-q", "-t", "ed25519", "-N", "", "-f",
                    str(tmp_path / "k")], check=True)  # fmt: skip
    (recipient,) = age.parse_recipients([(tmp_path / "k.pub").read_text()])
    data = os.urandom(age.SMALL + 3 * CHUNK + 1)  # past SMALL: pyrage's streaming path
    assert reference_decrypt(monctl_encrypt(data, (recipient,), 1 << 20), tmp_path / "k") == data


@pytest.mark.parametrize("size", [0, CHUNK, 5 * CHUNK + 17])
def test_monctl_opens_what_the_reference_age_writes(tmp_path: Path, size: int) -> None:
    recipient = keygen(tmp_path / "key.txt")
    data = os.urandom(size)
    sealed = subprocess.run([require_binary("age"), "-e", "-r", recipient], input=data,
                            capture_output=True, check=True).stdout  # fmt: skip
    identities = age.load_identities([tmp_path / "key.txt"])
    with age.decrypting(io.BytesIO(sealed), len(sealed), identities, "test object") as plain:
        assert plain.read() == data


def test_a_backed_up_file_comes_back_with_age_and_zstd_alone(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    """docs/backup-and-restore.md: `age -d -i KEY OBJECT | zstd -d` (the manifest: the codec)."""
    recipient = keygen(tmp_path / "key.txt")
    rt.files["ledger"]["journal/0003"] = b"residents on call, week 48\n" * 50_000  # compresses
    report = repo.back_up(proj, rt, storage, (repo.LEDGER,), recipients=(recipient,))
    manifest = read_manifest(storage, report.backup_id)
    checked = 0
    for entry in manifest.files("ledger").files:
        if entry.blob is None:
            continue  # packed: inside the pack's object
        stored = (tmp_path / "repo" / object_key(entry.blob.ref.id)).read_bytes()
        plain = reference_decrypt(stored, tmp_path / "key.txt")
        if entry.blob.ref.codec == "zstd":
            plain = subprocess.run([require_binary("zstd"), "-d", "-c"], input=plain,
                                   capture_output=True, check=True).stdout  # fmt: skip
        assert entry.blob.ref.codec in ("zstd", "none")
        assert plain == rt.files["ledger"][entry.path]
        checked += 1
    assert checked >= 2
    assert any(
        e.blob is not None and e.blob.ref.codec == "zstd" for e in manifest.files("ledger").files
    )
