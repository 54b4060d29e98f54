"""The one JSON reader for documents read from a destination (manifests, leases, retired
records): strict where Python's ``json`` is lenient.

A destination is written by whoever has write access to it, so its JSON is hostile until
checked. Python keeps the LAST of two equal keys (``{"path": "../x", "path": "a"}``) where
another reader may keep the first, and it accepts ``NaN``, ``Infinity`` and ``-Infinity``,
which are not JSON at all and break every bound a number is checked against. Both are
refused here, with a ValueError like any other malformed document.
"""

from __future__ import annotations

from typing import Any


class DuplicateKey(ValueError):
    """An object of the document names the same key twice."""


def _pairs(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    doc = dict(pairs)
    if len(doc) != len(pairs):
        seen: set[str] = set()
        for key, _ in pairs:
            if key in seen:
                raise DuplicateKey(f"the key {key[:60]!r} appears twice in one object")
            seen.add(key)
    return doc


def _constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON number")


def loads(data: str | bytes | bytearray) -> Any:
    """``json.loads``, refusing duplicate keys and NaN/Infinity (ValueError; RecursionError
    for absurd nesting, UnicodeDecodeError (a ValueError) for bytes that are not UTF-8)."""
    import json

    return json.loads(data, object_pairs_hook=_pairs, parse_constant=_constant)
