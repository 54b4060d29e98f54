"""The age adapter (monctl/adapters/age.py) against the real pyrage: recipients,
identity files, streams in both directions, and every way they can fail."""

from __future__ import annotations

import io
import os
import subprocess
import threading
from pathlib import Path

import pyrage  # the extra monctl[age]; part of monctl[test]
import pytest
from support.age_keys import write_identity

from monctl import redaction
from monctl.adapters import age, age_pipe
from monctl.adapters.age_native import x25519_public
from monctl.errors import IntegrityError, UsageError


@pytest.fixture
def key(tmp_path: Path) -> tuple[str, Path]:
    """An identity file as age-keygen writes it (comments included) and its recipient."""
    path = tmp_path / "identity.txt"
    return write_identity(path), path


def encrypt(
    data: bytes, recipients: tuple[str, ...], piece: int = 1 << 20, native: bool = False
) -> bytes:
    """Through pyrage's streaming path (its thread), or, ``native``, the in-line one
    that monctl uses for age1 recipients (``age_native``)."""
    out = io.BytesIO()
    enc: age.Encryptor | age.NativeEncryptor
    if native:
        enc = age.encryptor(recipients, out.write, "test object")
        assert isinstance(enc, age.NativeEncryptor)
    else:
        enc = age.Encryptor(recipients, out.write, "test object")
    for at in range(0, len(data), piece):
        enc.write(data[at : at + piece])
    enc.finish()
    return out.getvalue()


def decrypt(ct: bytes, identities: age.Identities) -> bytes:
    with age.decrypting(io.BytesIO(ct), len(ct), identities, "test object") as plain:
        return plain.read()


def test_recipients_are_checked_canonical_and_sorted(tmp_path: Path) -> None:
    a = str(pyrage.x25519.Identity.generate().to_public())
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "alice@host", "-f", tmp_path / "k"],
        check=True,
    )
    ssh_pub = (tmp_path / "k.pub").read_text().strip()
    got = age.parse_recipients([f"{a.upper()} , {ssh_pub}", a])
    assert got == tuple(sorted({a, " ".join(ssh_pub.split()[:2])}))
    assert not any("alice" in r for r in got)  # the comment is not part of the key
    with pytest.raises(UsageError, match="is not an age public key"):
        age.parse_recipients(["age1notakey"])
    with pytest.raises(UsageError, match="is not an age public key"):
        age.parse_recipients(["ssh-ed25519 AAAAbogus"])
    with pytest.raises(UsageError) as info:  # a secret key typed by mistake is not echoed whole
        age.parse_recipients([str(pyrage.x25519.Identity.generate())])
    assert len(info.value.message) < 120


@pytest.mark.parametrize("native", [False, True], ids=["pyrage", "native"])
@pytest.mark.parametrize("size", [0, 1, 65536, age.SMALL, age.SMALL + 1, 3 * age.SMALL + 12345])
def test_round_trip_small_and_streamed(key: tuple[str, Path], size: int, native: bool) -> None:
    recipient, path = key
    data = os.urandom(size)
    ct = encrypt(data, (recipient,), native=native)
    assert ct.startswith(age.MAGIC)
    assert size < 16 or data[:4096] not in ct  # (a byte or two may occur by chance)
    assert decrypt(ct, age.load_identities([path])) == data


def test_ssh_identity_decrypts(tmp_path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "k"], check=True
    )
    recipients = age.parse_recipients([(tmp_path / "k.pub").read_text()])
    identities = age.load_identities([tmp_path / "k"])
    assert identities.opaque and identities.may_open(["age1whatever"])
    data = os.urandom(age.SMALL * 2)
    assert decrypt(encrypt(data, recipients), identities) == data


def test_wrong_identity_is_named_as_such(key: tuple[str, Path], tmp_path: Path) -> None:
    recipient, _ = key
    other = tmp_path / "other.txt"
    other.write_text(str(pyrage.x25519.Identity.generate()) + "\n")
    wrong = age.load_identities([other])
    assert not wrong.may_open([recipient])
    for size in (10, age.SMALL * 2):
        with pytest.raises(age.NoMatchingIdentity, match="matches none of the keys"):
            decrypt(encrypt(os.urandom(size), (recipient,)), wrong)


@pytest.mark.parametrize("size", [1000, age.SMALL * 2])
def test_truncated_or_flipped_ciphertext_never_reads_as_the_end(
    key: tuple[str, Path], size: int
) -> None:
    recipient, path = key
    identities = age.load_identities([path])
    ct = encrypt(os.urandom(size), (recipient,))
    flipped = bytearray(ct)
    flipped[len(ct) // 2] ^= 1
    for bad in (ct[:-17], bytes(flipped), ct[: len(ct) // 2]):
        with pytest.raises(IntegrityError, match="does not authenticate"):
            decrypt(bad, identities)


def test_identity_files_are_checked_and_never_shown(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage"
    garbage.write_text("AGE-SECRET-KEY-1NOTREALLYAKEYATALL\n")
    with pytest.raises(IntegrityError) as info:
        age.load_identities([garbage])
    assert "NOTREALLY" not in info.value.message and str(garbage) in info.value.message
    with pytest.raises(IntegrityError, match="not a regular file"):
        age.load_identities([tmp_path])
    big = tmp_path / "big"
    big.write_bytes(b"#" * (age.MAX_IDENTITY_FILE + 1))
    with pytest.raises(IntegrityError, match="larger than"):
        age.load_identities([big])
    secret = pyrage.x25519.Identity.generate()
    good = tmp_path / "good"
    good.write_text(f"{secret}\n")
    identities = age.load_identities([good])
    assert str(secret) not in repr(identities)
    assert str(secret) not in redaction.redact(f"key={secret}")  # masked in logs from now on


def test_a_failing_destination_is_the_error_reported(key: tuple[str, Path]) -> None:
    recipient, _ = key

    def full(data: bytes) -> None:
        raise OSError(28, "No space left on device")

    enc = age.Encryptor((recipient,), full, "test object")
    with pytest.raises(OSError, match="No space left"):
        for _ in range(20):
            enc.write(os.urandom(1 << 20))
        enc.finish()


def test_abort_and_early_stop_leave_no_thread(key: tuple[str, Path]) -> None:
    recipient, path = key
    before = threading.active_count()
    enc = age.Encryptor((recipient,), io.BytesIO().write, "test object")
    enc.write(os.urandom(age.SMALL * 3))
    enc.abort()
    ct = encrypt(os.urandom(age.SMALL * 4), (recipient,))
    with age.decrypting(io.BytesIO(ct), len(ct), age.load_identities([path]), "x") as plain:
        assert len(plain.read(10)) == 10  # the consumer stops here
    assert threading.active_count() == before


def test_storage_failure_while_decrypting_is_the_error_reported(key: tuple[str, Path]) -> None:
    recipient, path = key
    ct = encrypt(os.urandom(age.SMALL * 2), (recipient,))

    class Dying(io.RawIOBase):
        def __init__(self) -> None:
            self.src = io.BytesIO(ct)

        def readable(self) -> bool:
            return True

        def read(self, n: int = -1) -> bytes:
            if self.src.tell() > len(ct) // 2:
                raise ConnectionResetError("storage went away")
            return self.src.read(n)

    with pytest.raises(ConnectionResetError, match="storage went away"):  # noqa: SIM117
        with age.decrypting(Dying(), len(ct), age.load_identities([path]), "x") as plain:  # type: ignore[arg-type]
            plain.read()


@pytest.mark.parametrize("size", [0, 1, 65535, 65536, 65537, 2 * 65536, 3 * 65536 + 5])
@pytest.mark.parametrize("piece", [1000, 65536, 100_000])
def test_the_native_path_writes_what_pyrage_reads_at_every_chunk_boundary(
    size: int, piece: int
) -> None:
    """age_native against the reference (pyrage = the age crate): every recipient opens
    it, through both of pyrage's decryptions; a missing last chunk is never an end."""
    idents = [pyrage.x25519.Identity.generate() for _ in range(2)]
    data = os.urandom(size)
    ct = encrypt(data, tuple(str(i.to_public()) for i in idents), piece=piece, native=True)
    for ident in idents:
        assert pyrage.decrypt(ct, [ident]) == data
    out = io.BytesIO()
    pyrage.decrypt_io(io.BytesIO(ct), out, [idents[0]])
    assert out.getvalue() == data
    assert size < 16 or data[:4096] not in ct
    if size > 65536:  # drop the flagged last chunk: what is left must not decrypt
        payload_end = len(ct) - (size - (size - 1) // 65536 * 65536) - 16
        with pytest.raises(pyrage.DecryptError):
            pyrage.decrypt(ct[:payload_end], [idents[0]])


def test_the_native_path_is_taken_for_age_keys_only(tmp_path: Path) -> None:
    subprocess.run(
        ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "k"], check=True
    )
    ssh = " ".join((tmp_path / "k.pub").read_text().split()[:2])
    a = str(pyrage.x25519.Identity.generate().to_public())
    assert isinstance(age.encryptor((a,), io.BytesIO().write, "x"), age.NativeEncryptor)
    assert isinstance(age.encryptor((a, ssh), io.BytesIO().write, "x"), age.Encryptor)


def test_x25519_public_checks_the_bech32_it_decodes() -> None:
    from monctl.adapters.age_native import x25519_public

    good = str(pyrage.x25519.Identity.generate().to_public())
    assert len(x25519_public(good)) == 32
    flipped = good[:-1] + ("q" if good[-1] != "q" else "p")
    for bad in (flipped, "age1", "bge1" + good[4:], good[:-2], good + "q"):
        with pytest.raises(ValueError):
            x25519_public(bad)


def test_an_ssh_identity_is_masked_in_logs_once_read(tmp_path: Path) -> None:
    keygen = ["ssh-keygen", "-q", "-t", "ed25519", "-N", ""]
    subprocess.run([*keygen, "-f", tmp_path / "k"], check=True)
    body = [line for line in (tmp_path / "k").read_text().splitlines() if "-----" not in line]
    age.load_identities([tmp_path / "k"])
    for line in body:
        assert line not in redaction.redact(f"debug: {line}")


def _bech32_age(data: bytes) -> str:
    """An age1 recipient string for ``data`` (BIP 173), to build keys pyrage accepts."""
    from monctl.adapters.age_native import _CHARSET, _polymod

    acc = bits = 0
    values = []
    for byte in data:
        acc = acc << 8 | byte
        bits += 8
        while bits >= 5:
            bits -= 5
            values.append(acc >> bits & 31)
    if bits:
        values.append(acc << (5 - bits) & 31)
    expanded = [ord(c) >> 5 for c in "age"] + [0] + [ord(c) & 31 for c in "age"]
    mod = _polymod(expanded + values + [0] * 6) ^ 1
    checksum = [(mod >> 5 * (5 - i)) & 31 for i in range(6)]
    return "age1" + "".join(_CHARSET[v] for v in values + checksum)


def test_asking_for_encryption_never_yields_a_plaintext_backup_or_a_key_shown() -> None:
    for empty in ([""], [" , "], [",", ""]):
        with pytest.raises(UsageError, match="no recipient given"):
            age.parse_recipients(empty)
    assert age.parse_recipients([]) == ()  # not asked: not encrypted
    secret = str(pyrage.x25519.Identity.generate())
    with pytest.raises(UsageError, match="private key") as info:
        age.parse_recipients([secret.lower()])
    assert secret[15:25].lower() not in info.value.message.lower()
    # A low-order point parses as Bech32 and pyrage takes it, but no encryption can
    # use it: refused before the backup starts, not on its first object.
    zero = _bech32_age(bytes(32))
    pyrage.x25519.Recipient.from_str(zero)
    with pytest.raises(UsageError, match="not a usable X25519"):
        age.parse_recipients([zero])
    good = str(pyrage.x25519.Identity.generate().to_public())
    assert _bech32_age(x25519_public(good)) == good  # the test's encoder is right


@pytest.mark.parametrize("kind", ["age1", "ssh"])
def test_an_encrypted_object_that_fails_leaves_no_thread(
    key: tuple[str, Path], tmp_path: Path, kind: str
) -> None:
    """age1 keys are encrypted in the caller's thread; SSH keys through pyrage's thread,
    which must end with the failed object."""
    from monctl.repository.objects import Encoder

    class Full:
        size = 0

        def write(self, data: object) -> None:
            raise OSError(28, "No space left on device")

        def write_all(self, pieces: object) -> None:
            raise OSError(28, "No space left on device")

    recipient, _ = key
    if kind == "ssh":
        subprocess.run(
            ["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", tmp_path / "k"], check=True
        )
        (recipient,) = age.parse_recipients([(tmp_path / "k.pub").read_text()])
    before = threading.active_count()
    pieces = [os.urandom(1 << 20) for _ in range(5)]  # past age.SMALL: pyrage's thread starts
    with pytest.raises(OSError, match="No space left"):
        Encoder("none", Full(), (recipient,)).write_whole(pieces, "0" * 64)
    assert threading.active_count() == before


def test_the_pipe_hands_over_what_a_producer_left_as_it_ended() -> None:
    """The producer puts its last piece and ends between the consumer's timeout and its
    look at whether the producer lives: the piece is read, not taken for an abort."""
    pipe = age_pipe.Pipe()

    def ended_just_now() -> bool:
        pipe._queue.put(b"last piece")
        return False

    assert pipe.get(ended_just_now) == b"last piece"
    assert pipe.get(lambda: False) is age_pipe.ABORT


def test_an_identity_others_can_read_is_warned_about(
    key: tuple[str, Path], caplog: pytest.LogCaptureFixture
) -> None:
    _, path = key
    path.chmod(0o600)
    age.load_identities([path])
    assert "can be read by other users" not in caplog.text
    path.chmod(0o644)
    age.load_identities([path])
    assert "can be read by other users (mode 0o644)" in caplog.text
    assert "AGE-SECRET-KEY" not in caplog.text.upper()
