"""Text for people, shared by every layer: outside text made inert, sizes in words.

Pure functions with no imports, so an adapter can quote a value back in a message
(``shown``) or say how much space is missing (``human_size``) without importing
the presentation (``monctl.cli.output``, which re-exports them for the renderers).
"""

from __future__ import annotations


def shown(value: str, limit: int = 40) -> str:
    """Outside text as quoted back in a message: inert, and shortened when long."""
    return inert(value if len(value) <= limit else value[:limit] + "…")


def inert(text: str) -> str:
    """``text`` with control characters (ESC, CR, BEL, C1 ...) and undecodable
    bytes shown as escapes; newlines stay (a line break in a cell is not an attack)."""
    if all(ch.isprintable() or ch == "\n" for ch in text):
        return text
    shown = []
    for ch in text:
        code = ord(ch)
        if ch.isprintable() or ch == "\n":
            shown.append(ch)
        elif 0xDC80 <= code <= 0xDCFF:  # a byte that was not UTF-8 (surrogateescape)
            shown.append(f"\\x{code - 0xDC00:02x}")
        elif code < 0x100:
            shown.append(f"\\x{code:02x}")
        else:
            shown.append(f"\\u{code:04x}")
    return "".join(shown)


def human_size(n: int) -> str:
    """``n`` bytes for a person: "512 B", "1.5 MiB"."""
    size = float(n)
    for unit in ("B", "KiB", "MiB", "GiB", "TiB"):
        if size < 1024 or unit == "TiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{n} B"  # unreachable; keeps mypy's return analysis simple
