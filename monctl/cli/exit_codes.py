"""Exit-code documentation, generated from ``monctl.errors.ExitCode`` (defined there, once).

Each command lists the codes it can end with (declared with the command, in
``monctl/cli/commands.py``); its ``--help`` epilog and the tables of README.md
and docs/ are rendered from that list and the codes' meanings. A document holds
each table between ``<!-- exit-codes: NAME -->`` and ``<!-- /exit-codes -->``
(NAME is "all" or a command); a test fails when one differs from what is
generated here, and

    python -m monctl.cli.exit_codes README.md docs/*.md

rewrites them.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

from monctl.cli.commands import COMMAND_CODES
from monctl.errors import ExitCode as E

# Every command can also end with USAGE (2: click) and a signal (129, 130, 143).
_ALWAYS = (E.USAGE, E.HANGUP, E.INTERRUPTED, E.TERMINATED)


def codes_of(command: str) -> tuple[E, ...]:
    return tuple(sorted({*COMMAND_CODES[command], *_ALWAYS}))


def epilog(command: str) -> str:
    """The ``--help`` epilog of ``command``: its exit codes and their meanings."""
    lines = ["\b", "Exit codes:"]
    lines += [f"  {int(c):<3} {c.meaning}" for c in codes_of(command)]
    return "\n".join(lines)


def table(name: str) -> str:
    """The README table for ``name`` ("all" or a command)."""
    if name == "all":
        rows = ["| code | name | meaning |", "|---|---|---|"]
        rows += [f"| {int(c)} | `{c.name}` | {c.meaning} |" for c in E]
    else:
        rows = ["| code | meaning |", "|---|---|"]
        rows += [f"| {int(c)} | {c.meaning} |" for c in codes_of(name)]
    return "\n".join(rows)


_BLOCK = re.compile(r"(<!-- exit-codes: ([a-z ]+) -->\n)(.*?)(<!-- /exit-codes -->)", re.DOTALL)


def rewrite(text: str) -> str:
    """``text`` (the README) with every exit-code block regenerated."""
    return _BLOCK.sub(lambda m: f"{m.group(1)}{table(m.group(2))}\n{m.group(4)}", text)


def blocks(text: str) -> dict[str, str]:
    """The exit-code blocks of ``text``: name -> the table it holds now."""
    return {m.group(2): m.group(3).strip() for m in _BLOCK.finditer(text)}


if __name__ == "__main__":  # pragma: no cover
    for arg in sys.argv[1:]:
        path = Path(arg)
        path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
