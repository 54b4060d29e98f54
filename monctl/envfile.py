"""Reading a ``.env`` file: the rules, in one place, in linear time.

The rules (a subset of what docker compose reads, so both read a file alike):

- one ``KEY=VALUE`` per line; ``KEY`` is letters, digits and ``_``, not
  starting with a digit; spaces around ``=`` are ignored; ``export KEY=VALUE``
  is accepted; a later line wins over an earlier one;
- blank lines and lines starting with ``#`` are comments;
- an unquoted value runs to the end of the line, without surrounding spaces; a
  ``#`` after a space or tab starts a comment (``abc#def`` keeps its ``#``);
- ``'single quotes'`` keep everything between them literally;
- ``"double quotes"`` understand ``\\"``, ``\\\\``, ``\\n``, ``\\r`` and ``\\t``
  (any other backslash stays as it is);
- a quoted value ends on its own line; after the closing quote only spaces and
  a ``# comment`` may follow;
- ``${VAR}`` is not expanded: values are literal;
- the file is UTF-8 (a UTF-8 byte-order mark is skipped, as most tools do);
  UTF-16/32, bytes that are not UTF-8, a directory and files over 1 MiB are refused.

Every refusal is a ConfigError naming the line, never its content (it may hold
a secret). Each line is scanned once, left to right: no regular expression
here can backtrack, so a long value costs time in proportion to its length.
"""

from __future__ import annotations

import math
import re
from pathlib import Path

from monctl.errors import ConfigError

MAX_BYTES = 1024 * 1024  # a .env is a few kilobytes; anything this big is not one

_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_COMMENT = re.compile(r"[ \t]#")  # an inline comment of an unquoted value
_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", '"': '"', "\\": "\\"}
_BOMS_WE_REFUSE = (b"\xff\xfe", b"\xfe\xff", b"\x00\x00\xfe\xff")


def _refuse(source: str, number: int, what: str, hint: str) -> ConfigError:
    return ConfigError(f"{source} line {number} {what}", hint=hint)


def _quoted(text: str, source: str, number: int) -> tuple[str, str]:
    """The value of a quoted ``text`` (starting at its quote) and what follows it."""
    quote = text[0]
    unterminated = _refuse(
        source,
        number,
        "has an unterminated quote",
        f"close the {quote} on the same line (a quoted value cannot span lines)",
    )
    if quote == "'":
        end = text.find("'", 1)
        if end < 0:
            raise unterminated
        return text[1:end], text[end + 1 :]
    out: list[str] = []
    i = 1
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text):
            nxt = text[i + 1]
            out.append(_ESCAPES.get(nxt, "\\" + nxt))
            i += 2
            continue
        if ch == '"':
            return "".join(out), text[i + 1 :]
        out.append(ch)
        i += 1
    raise unterminated


def _value(text: str, source: str, number: int) -> str:
    if text[:1] in ("'", '"'):
        value, rest = _quoted(text, source, number)
        rest = rest.strip()
        if rest and not rest.startswith("#"):
            raise _refuse(
                source,
                number,
                "has text after the closing quote",
                "quote the whole value, or start a comment with ' #'",
            )
        return value
    comment = _COMMENT.search(text)
    return (text[: comment.start()] if comment else text).rstrip()


def parse_env(text: str, source: str = ".env") -> dict[str, str]:
    """The variables ``text`` sets, by the rules above; ConfigError naming a bad line."""
    env: dict[str, str] = {}
    for number, raw in enumerate(text.split("\n"), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("export") and line[6:7] in (" ", "\t"):
            line = line[7:].lstrip()
        name = _NAME.match(line)
        rest = line[name.end() :].lstrip() if name else ""
        if name is None or not rest.startswith("="):
            raise _refuse(
                source,
                number,
                "is not KEY=VALUE",
                "fix or remove that line (names are letters, digits and _; comments start with #)",
            )
        env[name.group()] = _value(rest[1:].lstrip(), source, number)
    return env


def read_env_text(path: Path, source: str = ".env") -> str:
    """The text of the env file ``path``, checked: size, kind and encoding."""
    if path.is_dir():
        raise ConfigError(
            f"{path} is a directory, not a {source} file",
            hint=f"remove it; `monctl up` creates {source} from .env.example",
        )
    try:
        with path.open("rb") as fh:
            data = fh.read(MAX_BYTES + 1)
    except OSError as exc:
        raise ConfigError(
            f"cannot read {path}: {exc.strerror or type(exc).__name__}",
            hint="check the file's permissions",
        ) from None
    if len(data) > MAX_BYTES:
        raise ConfigError(
            f"{source} is larger than {MAX_BYTES // 1024} KiB: not a settings file",
            hint="a .env holds NAME=VALUE lines; restore it from .env.example",
        )
    if data.startswith(_BOMS_WE_REFUSE) or b"\x00" in data:
        raise ConfigError(
            f"{source} is UTF-16 or UTF-32 (it holds NUL bytes); monctl and docker compose "
            "read UTF-8",
            hint=f"save it as UTF-8, e.g. `iconv -f UTF-16 -t UTF-8 {source} > {source}.new` "
            f"and move {source}.new over it",
        )
    data = data.removeprefix(b"\xef\xbb\xbf")  # a UTF-8 byte-order mark: accepted, skipped
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError as exc:
        number = data.count(b"\n", 0, exc.start) + 1
        raise _refuse(
            source, number, "is not UTF-8", f"save {source} as UTF-8 (e.g. with iconv)"
        ) from None


def read_env(path: Path, source: str = ".env") -> dict[str, str]:
    """The variables of the env file ``path`` (ConfigError when it cannot be read)."""
    return parse_env(read_env_text(path, source), source)


def seconds(var: str, raw: str, default: float, maximum: float) -> float:
    """A setting that is a number of seconds: ``default`` when blank, else more than 0
    and at most ``maximum`` (ConfigError naming ``var`` otherwise; nan and inf too)."""
    raw = raw.strip()
    if not raw:
        return default
    try:
        value = float(raw)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 < value <= maximum):
        raise ConfigError(
            f"{var}={raw[:40]!r} is not a number of seconds (more than 0, at most {maximum:g})",
            hint=f"e.g. {var}={default:g}",
        )
    return value
