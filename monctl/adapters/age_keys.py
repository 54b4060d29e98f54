"""age keys for monctl: recipients (public, recorded in manifests), identities (secret,
never shown), and the errors age's answers become. The streams are in ``age.py``,
which re-exports everything here: callers import ``monctl.adapters.age`` only.

pyrage (the extra ``monctl[age]``) is imported on first use, never at import time.
"""

from __future__ import annotations

import logging
import stat
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from monctl.errors import IntegrityError, UsageError
from monctl.text import shown

log = logging.getLogger(__name__)

MAX_RECIPIENTS = 64
MAX_IDENTITY_FILE = 64 * 1024
_SSH_TYPES = ("ssh-ed25519", "ssh-rsa")
INSTALL_HINT = "install the extra: pip install 'monctl[age]'"
IDENTITY_HINT = (
    "give --identity FILE (or MONCTL_BACKUP_IDENTITY): the age identity, or SSH private "
    "key, whose public key the backup was encrypted to (`monctl backup list --json` shows them)"
)


def _pyrage() -> Any:
    try:
        import pyrage
    except ImportError:
        raise UsageError(
            "encryption needs pyrage, which is not installed", hint=INSTALL_HINT
        ) from None
    return pyrage


def blake3_hasher() -> Any:
    """A BLAKE3 hasher: what encrypted objects are named by (objects.py says why)."""
    try:
        from blake3 import blake3
    except ImportError:  # a dependency of monctl: only a broken install lacks it
        raise UsageError(
            "encrypted backups need blake3 (their objects are named by BLAKE3 hashes), "
            "which is not installed",
            hint="reinstall monctl, or: pip install 'blake3>=1.0,<2'",
        ) from None
    return blake3()


# --- recipients (public: recorded in the manifest) ----------------------------------------


def canonical_recipient(text: str, where: str = "recipient") -> str:
    """One recipient as monctl records it; UsageError when it is not one.

    ``age1…`` keys are lowercased (Bech32 is case-insensitive); SSH keys keep
    their type and key, not their comment (a comment is not part of the key,
    and often names a person).
    """
    pyrage = _pyrage()
    item = text.strip()
    if item.upper().startswith("AGE-SECRET-KEY-") or "PRIVATE KEY" in item.upper():
        # A secret key in the wrong place: refused without showing any of it.
        raise UsageError(
            f"{where}: that is a private key, not a public one (nothing of it is shown)",
            hint="give its public key: `age-keygen -y IDENTITY`, or the SSH key's .pub line",
        )
    try:
        if item.lower().startswith("age1"):
            item = item.lower()
            pyrage.x25519.Recipient.from_str(item)
            _usable_x25519(item, where)
            return item
        parts = item.split()
        if len(parts) >= 2 and parts[0] in _SSH_TYPES:
            item = f"{parts[0]} {parts[1]}"
            pyrage.ssh.Recipient.from_str(item)
            return item
    except pyrage.RecipientError:
        pass
    raise UsageError(
        f"{where}: '{shown(item)}' is not an age public key (age1…) or an SSH public key",
        hint="give the age1… line of `age-keygen -y IDENTITY`, or an ssh-ed25519/ssh-rsa "
        "public key (the .pub file's line)",
    )


def _usable_x25519(recipient: str, where: str) -> None:
    """Refuse a well-formed key no encryption can use (a low-order point: age refuses
    it too), before a backup starts rather than on its first object."""
    try:
        from monctl.adapters.age_native import check_x25519
    except ImportError:  # pragma: no cover - cryptography comes with the extra
        return
    try:
        check_x25519(recipient)
    except ImportError:  # pragma: no cover
        return
    except ValueError:
        raise UsageError(
            f"{where}: '{shown(recipient)}' is not a usable X25519 public key",
            hint="give the age1… line of `age-keygen -y IDENTITY`",
        ) from None


def parse_recipients(values: Iterable[str], where: str = "--encrypt-to") -> tuple[str, ...]:
    """Every recipient of ``values`` (each may hold several, comma-separated), sorted, once.
    Values given that name no recipient at all (an unset shell variable, a lone comma)
    are an error: asking for encryption never silently yields a plaintext backup."""
    found: set[str] = set()
    given = False
    for value in values:
        given = True
        for item in value.split(","):
            if item.strip():
                found.add(canonical_recipient(item, where))
    if given and not found:
        raise UsageError(
            f"{where}: no recipient given (an empty value)",
            hint="give an age1… or SSH public key; to back up unencrypted, leave the option out",
        )
    if len(found) > MAX_RECIPIENTS:
        raise UsageError(f"{where}: {len(found)} recipients; at most {MAX_RECIPIENTS}")
    if found:
        blake3_hasher()  # the extra is complete: refused before anything is read
    return tuple(sorted(found))


def _recipient_objects(recipients: Sequence[str]) -> list[Any]:
    pyrage = _pyrage()
    return [
        pyrage.x25519.Recipient.from_str(r)
        if r.startswith("age1")
        else pyrage.ssh.Recipient.from_str(r)
        for r in recipients
    ]


# --- identities (secret: never shown, never logged) --------------------------------------


@dataclass(frozen=True, repr=False)
class Identities:
    """Keys that may decrypt, read from ``sources``; ``publics`` are the age1 keys
    they answer to (an SSH identity's public key is not derived here: ``opaque``)."""

    keys: tuple[Any, ...]
    publics: frozenset[str]
    opaque: bool
    sources: tuple[str, ...]

    def __repr__(self) -> str:  # never the keys
        return f"Identities({len(self.keys)} from {', '.join(self.sources)})"

    def may_open(self, recipients: Iterable[str]) -> bool:
        """False only when certain: no identity can answer any of ``recipients``."""
        wanted = set(recipients)
        return self.opaque or bool(self.publics & wanted)


def _read_identity_file(path: Path) -> bytes:
    try:
        info = path.stat()
        if not stat.S_ISREG(info.st_mode):
            raise IntegrityError(f"identity {path} is not a regular file")
        if info.st_size > MAX_IDENTITY_FILE:
            raise IntegrityError(f"identity {path} is larger than an identity file can be")
        if info.st_mode & 0o077:  # ssh refuses such a key; age does not: a warning
            log.warning(
                "identity %s can be read by other users (mode %s): chmod 600 it",
                path,
                oct(stat.S_IMODE(info.st_mode)),
            )
        with path.open("rb") as f:
            return f.read(MAX_IDENTITY_FILE + 1)
    except OSError as e:
        raise IntegrityError(
            f"identity {path} cannot be read: {e.strerror or type(e).__name__}"
        ) from None


def load_identities(paths: Sequence[Path]) -> Identities:
    """Read age identity files (``age-keygen`` output, comments allowed) or OpenSSH
    private keys (unencrypted). IntegrityError (exit 10) when one holds no usable key;
    the message names the file, never its content."""
    pyrage = _pyrage()
    from monctl import redaction

    keys: list[Any] = []
    publics: set[str] = set()
    opaque = False
    for path in paths:
        data = _read_identity_file(path)
        bad = IntegrityError(
            f"identity {path} holds no usable age or SSH private key",
            hint="give the file age-keygen wrote (AGE-SECRET-KEY-1…), or an OpenSSH "
            "private key without a passphrase",
        )
        if b"PRIVATE KEY-----" in data:
            for line in data.decode("ascii", "replace").splitlines():
                if len(line.strip()) >= 20 and "-----" not in line:
                    redaction.register(line.strip())  # the key's body: masked in every log
            try:
                keys.append(pyrage.ssh.Identity.from_buffer(data))
            except pyrage.IdentityError:
                raise bad from None
            opaque = True
            continue
        try:
            text = data.decode("utf-8")
        except UnicodeDecodeError:
            raise bad from None
        lines = [line.strip() for line in text.splitlines()]
        found = [line for line in lines if line and not line.startswith("#")]
        if not found:
            raise bad
        for line in found:
            redaction.register(line)  # a secret from here on: masked in every log line
            try:
                key = pyrage.x25519.Identity.from_str(line)
            except pyrage.IdentityError:
                raise bad from None
            keys.append(key)
            publics.add(str(key.to_public()).lower())
    if not keys:
        raise IntegrityError("no identity given")
    return Identities(tuple(keys), frozenset(publics), opaque, tuple(str(p) for p in paths))


# --- errors -----------------------------------------------------------------------------------


class AgeError(IntegrityError):
    """What age said about an object: it names the object already (exit 10)."""


class MissingIdentity(AgeError):
    """Encrypted, and no identity given."""

    def __init__(self, message: str) -> None:
        super().__init__(message, hint=IDENTITY_HINT)


class NoMatchingIdentity(AgeError):
    """The identities given answer none of the recipients an object is encrypted to."""


def _translate(e: BaseException, what: str) -> BaseException:
    """pyrage's errors as monctl's: a wrong key, or ciphertext that does not authenticate."""
    pyrage = _pyrage()
    if isinstance(e, pyrage.DecryptError) and "No matching keys" in str(e):
        return NoMatchingIdentity(
            f"{what}: the identity given matches none of the keys it is encrypted to",
            hint=IDENTITY_HINT,
        )
    if isinstance(e, (pyrage.DecryptError, OSError)):
        return AgeError(f"{what} is corrupt: its encryption does not authenticate")
    if isinstance(e, pyrage.EncryptError):
        return AgeError(f"{what}: encryption failed")
    return e
