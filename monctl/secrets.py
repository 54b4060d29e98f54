"""Keeping secrets out of output, logs and error messages.

Values of secret-looking ``.env`` variables are registered here when the
project is loaded; every path that prints something an outside program said
(subprocess output, HTTP bodies, exception text) goes through ``redact``.
"""

from __future__ import annotations

import re

# A variable is secret when its name says so. Checked on names, never on values.
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|WEBHOOK|ROUTING_KEY|API_KEY|_KEY$|DSN)")
_MASK = "****"
_known: set[str] = set()


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name.upper()))


def register(value: str) -> None:
    """Remember ``value`` as secret. Very short values are skipped: masking "a"
    everywhere would make output unreadable and hides nothing worth hiding."""
    if value and len(value) >= 4:
        _known.add(value)


def register_env(env: dict[str, str]) -> None:
    for name, value in env.items():
        if is_secret_name(name):
            register(value)


def redact(text: str) -> str:
    # Longest first, so a secret containing another is masked whole.
    for value in sorted(_known, key=len, reverse=True):
        if value in text:
            text = text.replace(value, _MASK)
    return text


def generate(length: int = 32) -> str:
    """A fresh random secret made of URL- and shell-safe characters."""
    import secrets  # the stdlib module (hashlib, hmac...): only .env creation needs it

    return secrets.token_urlsafe(length)[:length]


def forget_all() -> None:
    """For tests: start from an empty registry."""
    _known.clear()
