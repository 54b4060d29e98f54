"""Keeping secrets out of output, logs and error messages (and generating new ones).

Values of secret-looking ``.env`` variables are registered here when the
project is loaded; every path that prints something an outside program said
(subprocess output, HTTP bodies, exception text) goes through ``redact``.
"""

from __future__ import annotations

import json
import logging
import re
from urllib.parse import quote, quote_plus

# A variable is secret when its name says so. Checked on names, never on values.
_SECRET_NAME = re.compile(r"(PASSWORD|PASSWD|SECRET|TOKEN|WEBHOOK|ROUTING_KEY|API_KEY|_KEY$|DSN)")
_MASK = "****"
_known: set[str] = set()


def is_secret_name(name: str) -> bool:
    return bool(_SECRET_NAME.search(name.upper()))


def register(value: str) -> None:
    """Remember ``value`` as secret, in every spelling a log line may carry it. Very
    short values are skipped: masking "a" everywhere would make output unreadable
    and hides nothing worth hiding."""
    if value and len(value) >= 4:
        _known.update(spellings(value))


def spellings(value: str) -> set[str]:
    """``value`` as it appears raw, percent-encoded (a URL, a query string; either
    case of hex), as a bytes repr (botocore logs headers and bodies as b'...'), as
    space-separated hex bytes (S3's SignatureDoesNotMatch body lists the canonical
    request so) and JSON-escaped."""
    percent = {quote(value, safe=""), quote(value, safe="/"), quote_plus(value)}
    percent |= {_PERCENT.sub(lambda m: m.group().lower(), p) for p in percent}
    raw = value.encode("utf-8", "surrogateescape")
    return {
        value,
        *percent,
        repr(raw)[2:-1],
        " ".join(f"{b:02x}" for b in raw),
        json.dumps(value)[1:-1],
    }


_PERCENT = re.compile(r"%[0-9A-F]{2}")


def register_env(env: dict[str, str]) -> None:
    for name, value in env.items():
        if is_secret_name(name):
            register(value)


# Parts of a URL shorter than this are route words ("api", "push", "ping"),
# not tokens: masking them everywhere would hide nothing and garble output.
_URL_PART_MIN = 8


def register_url(url: str) -> None:
    """Remember a URL that carries secrets (a ping UUID, a webhook token, a password):
    the whole URL, its password, and every long path segment and query value."""
    from urllib.parse import parse_qsl, urlsplit

    register(url.strip())
    try:
        parts = urlsplit(url.strip())
        password = parts.password
    except ValueError:  # not even a URL: the whole text is registered above
        return
    register(password or "")
    for segment in parts.path.split("/"):
        if len(segment) >= _URL_PART_MIN:
            register(segment)
    for _, value in parse_qsl(parts.query, keep_blank_values=False):
        if len(value) >= _URL_PART_MIN:
            register(value)
    if parts.netloc and parts.path.strip("/"):
        register(parts.netloc + parts.path)  # the URL as some libraries print it, no scheme


# Secrets by their shape, for what libraries log (botocore's debug log prints
# request headers and presigned URLs): the value after each of these names.
# An Authorization value runs to its quote or the line's end ("AWS4-HMAC-SHA256
# Credential=..., Signature=..."); the others end at a quote, space, & , or }.
_SHAPES = re.compile(
    r"""(?ix)
    (?:
      (authorization) (['"]?\s*[:=]\s*b?['"]?) ([^'"\n]+)
    | ( x-amz-security-token | x-amz-signature | x-amz-credential | signature
      | aws_secret_access_key | secret_?access_?key | aws_session_token | session_?token
      | password | passwd | token )
      (['"]?\s*[:=]\s*b?['"]?) ([^'"\s&,}]+)
    )
    """
)


# The same in XML error bodies (S3 names the signature it received).
_XML_SHAPES = re.compile(
    r"(?i)(<(?:SignatureProvided|SecretAccessKey|SessionToken|Signature)>)([^<]+)"
)


def _mask(match: re.Match[str]) -> str:
    name, sep = match.group(1) or match.group(4), match.group(2) or match.group(5)
    return f"{name}{sep}{_MASK}"


_order: tuple[set[str] | None, int, tuple[str, ...]] = (None, 0, ())


def _longest_first() -> tuple[str, ...]:
    """The secrets, longest first (a secret containing another is masked whole); sorted
    again only when one was registered, not on every line (redact runs per chunk)."""
    global _order
    source, size, ordered = _order
    if source is not _known or size != len(_known):
        ordered = tuple(sorted(_known, key=len, reverse=True))
        _order = (_known, len(_known), ordered)
    return ordered


def redact(text: str) -> str:
    """``text`` with every registered secret, and every value of a secret-shaped
    field (Authorization, session tokens, signatures), masked."""
    for value in _longest_first():
        if value in text:
            text = text.replace(value, _MASK)
    if any(word in text.lower() for word in _HINTS):
        text = _SHAPES.sub(_mask, text)
        text = _XML_SHAPES.sub(lambda m: f"{m.group(1)}{_MASK}", text)
    return text


_HINTS = ("authorization", "token", "signature", "secret", "credential", "passw")


class _RedactingFilter(logging.Filter):
    """Masks secrets in every record a handler emits, whichever library logged it, and
    escapes control characters (a logged member name or server answer is outside text)."""

    def filter(self, record: logging.LogRecord) -> bool:
        from monctl.text import inert

        try:
            message = record.getMessage()
        except Exception:  # a library's broken format string: keep the raw text
            message = str(record.msg)
        record.msg = inert(redact(message))
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            text = logging.Formatter().formatException(record.exc_info)
            record.exc_text = inert(redact(text))
            record.exc_info = None
        if record.stack_info:
            record.stack_info = inert(redact(record.stack_info))
        return True


def install_log_filter() -> None:
    """Put the redacting filter on every handler of the root logger (idempotent)."""
    for handler in logging.getLogger().handlers:
        if not any(isinstance(f, _RedactingFilter) for f in handler.filters):
            handler.addFilter(_RedactingFilter())


def generate(length: int = 32) -> str:
    """A fresh random secret made of URL- and shell-safe characters."""
    import secrets  # the stdlib module (hashlib, hmac...): only .env creation needs it

    return secrets.token_urlsafe(length)[:length]
