"""Encrypted backups (age, `--encrypt-to`) through the real pipeline: what reaches the
repository, what a restore, a verify and the index need, and how a missing or wrong
key is refused before anything is touched.

The runtime is the fake at the outer edge (``support.fake_runtime``); the repository a
real local directory; age is the real pyrage. The S3 flow is in tests/adapters/storage, the
engine flow in tests/e2e.
"""

from __future__ import annotations

import gzip
import json
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pyrage
import pytest
import zstandard
from blake3 import blake3
from support import repo
from support.age_keys import write_identity
from support.fake_runtime import FakeRuntime

from monctl.adapters import age
from monctl.adapters.storage.local import LocalStorage
from monctl.backup import restore, verify, verify_all
from monctl.errors import ExitCode, IntegrityError, UsageError
from monctl.project import Project
from monctl.repository.manifest import read_manifest
from monctl.repository.objects import object_key

AGE_HEADER = b"age-encryption.org/v1\n"


def new_key(path: Path) -> tuple[str, age.Identities]:
    """A fresh age identity written as age-keygen does; its recipient and loaded form."""
    return write_identity(path), age.load_identities([path])


def stored_objects(tmp_path: Path) -> list[Path]:
    return sorted(p for p in (tmp_path / "repo" / "objects").rglob("*") if p.is_file())


def raw_manifest(tmp_path: Path, backup_id: str) -> dict[str, object]:
    doc: dict[str, object] = json.loads(
        (tmp_path / "repo" / backup_id / "manifest.json").read_text()
    )
    return doc


def nothing_touched(rt: FakeRuntime) -> bool:
    return not [e for e in rt.log if e.startswith(("stage", "swap", "stop", "start"))]


def test_every_object_is_an_age_file_and_a_restore_with_the_key_gives_everything_back(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    recipient, identities = new_key(tmp_path / "key.txt")
    expected = {name: dict(files) for name, files in rt.files.items()}
    report = repo.back_up(proj, rt, storage, recipients=(recipient,))
    assert report.to_json()["encrypted_to"] == [recipient]

    objects = stored_objects(tmp_path)
    assert len(objects) >= 6
    known = expected["ledger"]["ledger.db"][:4096]
    for path in objects:
        body = path.read_bytes()
        assert body.startswith(AGE_HEADER), path
        assert known not in body  # no plaintext, not even in the pack
        assert path.name == blake3(body).hexdigest()  # named by BLAKE3 of what is stored
    doc = raw_manifest(tmp_path, report.backup_id)
    assert doc["encryption"] == {"scheme": "age", "recipients": [recipient]}
    # What stays readable without the key: names, sizes and plaintext hashes.
    manifest = read_manifest(storage, report.backup_id)
    blobs = [b for name in manifest.services for b in manifest.files(name).blobs()]
    assert blobs and all(b.ref.encrypted and b.ref.hash == "blake3" for b in blobs)
    assert '"id_hash": "blake3"' in json.dumps(doc)
    # Format 3: a monctl from before BLAKE3 ids asks for an upgrade instead of calling
    # the objects corrupt (its FORMAT_VERSION was 2).
    assert doc["format_version"] == 3

    rt.files = {"tsdb": {"B9/junk": b"x"}, "ledger": {}}
    done = restore.run(
        proj, rt, storage, report.backup_id, (), confirm=lambda q: True, identities=identities
    )
    assert done.exit_code == ExitCode.OK, done.to_json()
    assert rt.files == expected


def test_an_object_is_a_standard_age_file_any_age_tool_opens(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    """Recoverable without monctl: `age -d` (here pyrage's one-shot decrypt, not the
    streaming code monctl reads with), then the codec the manifest names."""
    ident = pyrage.x25519.Identity.generate()
    report = repo.back_up(proj, rt, storage, (repo.LEDGER,), recipients=(str(ident.to_public()),))
    entry = next(
        e
        for e in read_manifest(storage, report.backup_id).files("ledger").files
        if e.path == "journal/0002"
    )
    assert entry.blob is not None
    stored = (tmp_path / "repo" / object_key(entry.blob.ref.id)).read_bytes()
    plain = pyrage.decrypt(stored, [ident])
    if entry.blob.ref.codec == "zstd":
        plain = zstandard.ZstdDecompressor().stream_reader(plain).read()
    elif entry.blob.ref.codec == "gzip":
        plain = gzip.decompress(plain)
    assert plain == rt.files["ledger"]["journal/0002"]


def test_a_restore_without_a_key_or_with_the_wrong_one_touches_nothing(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    recipient, _ = new_key(tmp_path / "right.txt")
    _, wrong = new_key(tmp_path / "wrong.txt")
    report = repo.back_up(proj, rt, storage, recipients=(recipient,))
    before = {name: dict(files) for name, files in rt.files.items()}
    rt.log.clear()

    with pytest.raises(age.MissingIdentity) as missing:
        restore.run(proj, rt, storage, report.backup_id, (), confirm=lambda q: True)
    assert missing.value.exit_code == ExitCode.INTEGRITY
    assert "--identity" in (missing.value.hint or "")
    with pytest.raises(age.NoMatchingIdentity, match="matches none of them") as info:
        restore.run(
            proj, rt, storage, report.backup_id, (), confirm=lambda q: True, identities=wrong
        )
    assert info.value.exit_code == ExitCode.INTEGRITY
    assert str(tmp_path / "wrong.txt") in info.value.message  # which file, never its content
    assert "AGE-SECRET-KEY" not in info.value.message
    assert nothing_touched(rt) and rt.files == before


def test_an_ssh_key_encrypts_and_its_private_half_restores(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    for name in ("ssh", "other"):
        keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "ops@host"]
        subprocess.run([*keygen, "-f", tmp_path / name], check=True)
    recipient = (tmp_path / "ssh.pub").read_text().strip()
    expected = {name: dict(files) for name, files in rt.files.items()}
    report = repo.back_up(proj, rt, storage, (repo.LEDGER,), recipients=(recipient,))
    assert report.recipients == (" ".join(recipient.split()[:2]),)  # no comment recorded

    rt.log.clear()
    other = age.load_identities([tmp_path / "other"])
    with pytest.raises(age.NoMatchingIdentity):  # found by opening one small object
        restore.run(
            proj, rt, storage, report.backup_id, (), confirm=lambda q: True, identities=other
        )
    assert nothing_touched(rt)

    rt.files["ledger"] = {}
    right = age.load_identities([tmp_path / "ssh"])
    done = restore.run(
        proj, rt, storage, report.backup_id, (), confirm=lambda q: True, identities=right
    )
    assert done.exit_code == ExitCode.OK, done.to_json()
    assert rt.files["ledger"] == expected["ledger"]


def test_verify_checks_stored_bytes_without_the_key_and_contents_with_it(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    recipient, identities = new_key(tmp_path / "key.txt")
    report = repo.back_up(proj, rt, storage, recipients=(recipient,))
    bid = report.backup_id

    keyless = verify.verify(storage, bid)
    assert keyless.ok and keyless.contents_checked is False
    keyed = verify.verify(storage, bid, identities=identities)
    assert keyed.ok and keyed.contents_checked is True
    with pytest.raises(age.MissingIdentity):
        verify.verify(storage, bid, deep=True)

    # One flipped byte in the middle of an object: found without the key (its hash).
    victim = max(stored_objects(tmp_path), key=lambda p: p.stat().st_size)
    data = bytearray(victim.read_bytes())
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    damaged = verify.verify(storage, bid, check=False)
    assert not damaged.ok and damaged.exit_code == ExitCode.INTEGRITY
    everything = verify_all.verify_all(storage)
    assert not everything.ok and victim.name in everything.needed_by


def test_verify_with_the_key_finds_ciphertext_that_hashes_right_but_does_not_decrypt(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    """An object rewritten under a new name matching its new bytes (an attacker, or a
    bug) passes every keyless check; only the key finds it."""
    recipient, identities = new_key(tmp_path / "key.txt")
    report = repo.back_up(proj, rt, storage, (repo.LEDGER,), recipients=(recipient,))
    path = tmp_path / "repo" / report.backup_id / "manifest.json"
    doc = json.loads(path.read_text())
    entry = next(e for e in doc["services"]["ledger"]["files"] if e.get("object"))
    other_recipient, _ = new_key(tmp_path / "other.txt")
    forged = pyrage.encrypt(b"x" * 100, [pyrage.x25519.Recipient.from_str(other_recipient)])
    forged_id = blake3(forged).hexdigest()  # encrypted objects are named by BLAKE3
    (tmp_path / "repo" / object_key(forged_id)).parent.mkdir(parents=True, exist_ok=True)
    (tmp_path / "repo" / object_key(forged_id)).write_bytes(forged)
    entry.update(object=forged_id, stored=len(forged))
    path.write_text(json.dumps(doc))

    assert verify.verify(storage, report.backup_id).ok  # keyless: consistent
    checked = verify.verify(storage, report.backup_id, check=False, identities=identities)
    assert not checked.ok and checked.exit_code == ExitCode.INTEGRITY
    assert "unlike the backup's other objects" in json.dumps(checked.to_json())


def test_the_index_reuses_only_objects_sealed_to_the_same_keys(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    a, _ = new_key(tmp_path / "a.txt")
    b, _ = new_key(tmp_path / "b.txt")
    first = repo.back_up(proj, rt, storage, (repo.LEDGER,), recipients=(a,))
    assert repo.stats(first, "ledger").new_objects == 3
    same = repo.back_up(proj, rt, storage, (repo.LEDGER,), recipients=(a,))
    assert repo.stats(same, "ledger").new_objects == 0
    assert repo.stats(same, "ledger").written_bytes == 0
    rotated = repo.back_up(proj, rt, storage, (repo.LEDGER,), recipients=(a, b))
    assert repo.stats(rotated, "ledger").reused_objects == 0  # new key set: all written again
    plain = repo.back_up(proj, rt, storage, (repo.LEDGER,))
    assert repo.stats(plain, "ledger").reused_objects == 0  # never a sealed object unsealed
    assert not read_manifest(storage, plain.backup_id).files("ledger").pack.ref.encrypted  # type: ignore[union-attr]


def test_a_failed_encrypted_backup_leaves_no_manifest_and_no_spool(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    real = rt.read_data

    def broken(service: object, path: str) -> Iterator[bytes]:
        if "ledger" in path:
            yield from list(real(service, path))[:1]  # cut off mid-stream  # type: ignore[arg-type]
            yield b"\0" * 100
            return
        yield from real(service, path)  # type: ignore[arg-type]

    rt.read_data = broken  # type: ignore[method-assign]
    from monctl.backup import create

    recipient, _ = new_key(tmp_path / "key.txt")
    report = create.run(proj, rt, storage, (repo.TSDB, repo.LEDGER), recipients=(recipient,))
    assert report.error is not None
    assert not list((tmp_path / "repo").glob("*/manifest.json"))
    leftovers = [p for p in (tmp_path / "repo").rglob("*") if ".partial" in p.name]
    assert leftovers == []
    for path in stored_objects(tmp_path):  # what was committed is sealed too
        assert path.read_bytes().startswith(AGE_HEADER)


def test_a_manifest_whose_objects_disagree_with_its_encryption_is_invalid(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    recipient, _ = new_key(tmp_path / "key.txt")
    report = repo.back_up(proj, rt, storage, (repo.LEDGER,), recipients=(recipient,))
    path = tmp_path / "repo" / report.backup_id / "manifest.json"
    good = path.read_text()

    def broken(change: object) -> str:
        doc = json.loads(good)
        change(doc)  # type: ignore[operator]
        path.write_text(json.dumps(doc))
        with pytest.raises(IntegrityError) as info:
            read_manifest(storage, report.backup_id)
        return info.value.message

    # Encryption claimed away: the sealed objects would be read as plaintext.
    assert "encrypt" in broken(lambda d: d.pop("encryption"))
    # One object said to be plaintext in an encrypted backup.
    assert "encrypt" in broken(lambda d: d["services"]["ledger"]["pack"].pop("encrypted"))
    # BLAKE3 ids in a format-2 manifest (which names every object by sha256).
    assert "id_hash" in broken(lambda d: d.update(format_version=2))
    # Object ids named by a hash monctl does not know, or BLAKE3 on a plaintext object.
    assert "id_hash" in broken(lambda d: d["services"]["ledger"]["pack"].update(id_hash="md5"))
    assert "not encrypted" in broken(
        lambda d: (d.pop("encryption"), d["services"]["ledger"]["pack"].pop("encrypted"))
    )
    # A recipient that is no public key, and an unknown scheme.
    broken(lambda d: d["encryption"].update(recipients=["AGE-SECRET-KEY-1XYZ"]))
    broken(lambda d: d["encryption"].update(scheme="gpg"))
    broken(lambda d: d["encryption"].update(recipients=[]))


def as_written_before_blake3(tmp_path: Path, backup_id: str) -> None:
    """Rewrite an encrypted backup as monctl wrote them before encrypted objects were
    named by BLAKE3: every object under the sha256 of its bytes, no ``id_hash``."""
    import hashlib

    path = tmp_path / "repo" / backup_id / "manifest.json"
    text = path.read_text()
    for obj in stored_objects(tmp_path):
        old_id = hashlib.sha256(obj.read_bytes()).hexdigest()
        target = tmp_path / "repo" / object_key(old_id)
        target.parent.mkdir(parents=True, exist_ok=True)
        obj.rename(target)
        text = text.replace(obj.name, old_id)
    doc = json.loads(text)
    for service in doc["services"].values():
        for blob in [service.get("pack"), *service.get("files", [])]:
            if isinstance(blob, dict):
                assert blob.pop("id_hash", "blake3") == "blake3"
    doc["format_version"] = 2
    path.write_text(json.dumps(doc))


def test_encrypted_backups_with_sha256_ids_still_verify_restore_and_are_reused(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    """A repository written before BLAKE3 ids: keyless and keyed verify, restore, and a
    new backup reusing its objects (which keep their sha256 names in the new manifest)."""
    recipient, identities = new_key(tmp_path / "key.txt")
    expected = {name: dict(files) for name, files in rt.files.items()}
    old = repo.back_up(proj, rt, storage, recipients=(recipient,)).backup_id
    as_written_before_blake3(tmp_path, old)
    before = read_manifest(storage, old)
    blobs = [b for name in before.services for b in before.files(name).blobs()]
    assert blobs and all(b.ref.hash == "sha256" for b in blobs)

    assert verify.verify(storage, old).ok
    assert verify.verify(storage, old, deep=True, identities=identities).ok
    newer = repo.back_up(proj, rt, storage, recipients=(recipient,))
    m = read_manifest(storage, newer.backup_id)
    reused = [
        b
        for name in m.services
        for b in m.files(name).blobs()
        if b.ref.id in {old_blob.ref.id for old_blob in blobs}
    ]
    assert reused and all(b.ref.hash == "sha256" for b in reused)
    assert newer.to_json()["reused_objects"] == len({b.ref.id for b in reused})
    assert verify_all.verify_all(storage).ok
    assert verify.verify(storage, newer.backup_id, deep=True, identities=identities).ok

    # One flipped byte in an object named by sha256: still found without the key.
    victim = tmp_path / "repo" / object_key(max(blobs, key=lambda b: b.ref.stored).ref.id)
    good = victim.read_bytes()
    data = bytearray(good)
    data[len(data) // 2] ^= 0x01
    victim.write_bytes(bytes(data))
    assert not verify.verify(storage, old, check=False).ok
    victim.write_bytes(good)

    rt.files = {"tsdb": {}, "ledger": {}}
    done = restore.run(proj, rt, storage, old, (), confirm=lambda q: True, identities=identities)
    assert done.exit_code == ExitCode.OK, done.to_json()
    assert rt.files == expected


def test_encryption_without_blake3_installed_is_refused_before_anything_is_read(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import sys

    recipient, _ = new_key(tmp_path / "key.txt")
    monkeypatch.setitem(sys.modules, "blake3", None)  # import blake3 -> ImportError
    with pytest.raises(UsageError, match="blake3") as info:
        age.parse_recipients([recipient])
    assert "pip install" in (info.value.hint or "")


def test_verify_all_checks_an_object_again_when_a_manifest_names_it_otherwise(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    """verify --all checks each object once per run, but "once" is per description: a
    manifest claiming a BLAKE3-named object is a sha256 one must not inherit the result
    of the other manifest's (correct) check."""
    recipient, _ = new_key(tmp_path / "key.txt")
    first = repo.back_up(proj, rt, storage, recipients=(recipient,)).backup_id
    second = repo.back_up(proj, rt, storage, recipients=(recipient,)).backup_id
    path = tmp_path / "repo" / second / "manifest.json"
    doc = json.loads(path.read_text())
    for service in doc["services"].values():
        for blob in [service.get("pack"), *service.get("files", [])]:
            if isinstance(blob, dict):
                blob.pop("id_hash", None)  # the same objects, now said to be named by sha256
    doc["format_version"] = 2
    path.write_text(json.dumps(doc))

    alone = verify.verify(storage, second, check=False)
    assert not alone.ok
    assert {c.service for c in alone.checks if not c.ok} == {"tsdb", "ledger"}
    results = {
        b.backup_id: {c.service: c.ok for c in b.checks}
        for b in verify_all.verify_all(storage).backups
    }
    assert results == {
        first: {"tsdb": True, "ledger": True},
        second: {"tsdb": False, "ledger": False},  # as verify of it alone says
    }


def test_an_id_hash_other_than_blake3_is_refused_even_sha256(
    proj: Project, rt: FakeRuntime, storage: LocalStorage, tmp_path: Path
) -> None:
    """monctl never writes "sha256" (absent means it): a manifest that does was not
    written by monctl, and the format says so (docs/repository-format.md)."""
    recipient, _ = new_key(tmp_path / "key.txt")
    report = repo.back_up(proj, rt, storage, (repo.LEDGER,), recipients=(recipient,))
    path = tmp_path / "repo" / report.backup_id / "manifest.json"
    doc = json.loads(path.read_text())
    doc["services"]["ledger"]["pack"]["id_hash"] = "sha256"
    path.write_text(json.dumps(doc))
    with pytest.raises(IntegrityError, match="id_hash"):
        read_manifest(storage, report.backup_id)
