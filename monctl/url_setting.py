"""Checking a URL read from a setting (a heartbeat's, a notification's) when the command
starts, so a malformed one stops it there (ConfigError, exit 6) instead of failing in a
worker thread at the end of a night's backup.

The message names the setting and what is wrong, never the URL: it may hold a token.
"""

from __future__ import annotations

from urllib.parse import urlsplit


def problem(url: str, *, host_required: bool = True) -> str | None:
    """What makes ``url`` unusable, said without quoting it; None when nothing does."""
    if any(c.isspace() or not c.isprintable() for c in url):
        return "it holds a space or a control character"
    try:
        parts = urlsplit(url)
        port = parts.port  # ValueError when it is not a number from 0 to 65535
    except ValueError:
        return "it is not a well-formed URL (a port that is not a number, or a bracket unclosed?)"
    if port == 0:
        return "its port is 0"
    host = parts.hostname or ""
    if host_required and not host:
        return "it names no host"
    try:
        host.encode("idna")
    except UnicodeError:
        return "its host name is not a valid one"
    return None
