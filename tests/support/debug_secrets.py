"""Secrets for the `-vv` tests, and every form in which a log line could carry one.

Each value holds the characters that change when a secret travels: "/" and "+"
(base64 in AWS keys and session tokens), "=", a space and a non-ASCII letter (a
password from .env). A debug log may show a secret raw, percent-encoded (in a URL
or a query string), as hex bytes (AWS's SignatureDoesNotMatch body lists the
canonical request byte by byte), in a bytes repr (botocore logs b'...') or
JSON-escaped: ``leaks`` looks for each form.
"""

from __future__ import annotations

import json
import re
import urllib.parse

SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY/monctl+TEST=key"
SESSION_TOKEN = "IQoJb3JpZ2luX2VjEJr//////////wEaCXVzLWVhc3QtMSJHMEUCIQD+monctl/test+token=="
ENV_SECRET = "Pa ss+wörd=monctl~x"  # a .env password
SECRETS = {
    "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
    "AWS_SESSION_TOKEN": SESSION_TOKEN,
    "a .env secret": ENV_SECRET,
}

# A SigV4 signature (64 hex digits) after "Signature=" (Authorization, presigned URLs)
# or on the line after botocore's "Signature:" debug line.
SIGNATURE = re.compile(r"Signature(?:=|:\s*b?'?)\s*[0-9a-f]{64}", re.IGNORECASE)


def forms(secret: str) -> set[str]:
    """The ways ``secret`` can appear in a log line."""
    percent = {
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret, safe="/"),
        urllib.parse.quote_plus(secret),
    }
    lower = {re.sub(r"%[0-9A-F]{2}", lambda m: m.group().lower(), p) for p in percent}
    raw = secret.encode()
    hex_bytes = " ".join(f"{b:02x}" for b in raw)
    return {secret, *percent, *lower, repr(raw)[2:-1], hex_bytes, json.dumps(secret)[1:-1]}


def leaks(text: str) -> list[str]:
    """Which secrets (and in which form) ``text`` shows; empty when it shows none."""
    found = [
        f"{name} as {form!r}"
        for name, secret in SECRETS.items()
        for form in forms(secret)
        if form in text
    ]
    found += [f"a signature: {m.group()[:30]}…" for m in SIGNATURE.finditer(text)]
    return found
