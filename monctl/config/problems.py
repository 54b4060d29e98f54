"""Configuration problems: where a file is wrong, and how to read that out of the tools.

``Problem`` (file, line, message) is what ``monctl validate`` and
``monctl reload`` report for a broken file, whether a tool found it
(promtool, amtool: ``parse_problems`` reads their output) or a host-side
check did (``monctl.services.grafana``). Kept apart from both so that neither has to
import the other to speak about a file and a line.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any


@dataclass(frozen=True)
class Problem:
    """One thing wrong, where the tool (or the host check) said it is."""

    file: str | None  # relative to the project root
    line: int | None
    message: str

    def describe(self) -> str:
        where = f"{self.file}:{self.line}" if self.file and self.line else self.file
        return f"{where}: {self.message}" if where else self.message

    def to_json(self) -> dict[str, Any]:
        return {"file": self.file, "line": self.line, "message": self.message}


def relative_name(path: Path, root: Path) -> str:
    """``path`` as shown to the user: relative to the project root when inside it."""
    try:
        return path.relative_to(root).as_posix()
    except ValueError:
        return str(path)


def line_of(text: str, key: str, value: str) -> int | None:
    """The first line where ``key: value`` appears (JSON or YAML spelling)."""
    pattern = re.compile(rf"""["']?{re.escape(key)}["']?\s*:\s*["']?{re.escape(value)}["']?""")
    for number, line in enumerate(text.splitlines(), start=1):
        if pattern.search(line):
            return number
    return None


# promtool check rules: "file: 5:15: group ..."
_LOCATED = re.compile(r"^\s*(?P<file>[^\s:]+): (?P<line>\d+):\d+: (?P<msg>.+)$")
# promtool check config: "FAILED: parsing YAML file X: ... line N: ..."
_YAML_FILE = re.compile(r"parsing YAML file (?P<file>[^\s:]+): (?P<msg>.+)$")
# amtool: "Checking 'X'  FAILED: msg", then indented "line N: msg" lines
_AMTOOL = re.compile(r"^Checking '(?P<file>[^']+)'\s+FAILED: (?P<msg>.*)$")
_LINE_N = re.compile(r"\bline (?P<line>\d+)\b:?\s*(?P<msg>.*)$")
# Loki and Promtail (Go's yaml.v3, through their config loader):
# "failed parsing config: X: yaml: line N: msg" / "Unable to parse config: X: yaml: ...",
# or "X: yaml: unmarshal errors:" followed by indented "line N: msg" lines.
_YAML_V3 = re.compile(r"(?:^|: )(?P<file>[^\s:]+): yaml: (?P<msg>.*)$")
# ... each ending in the loader's advice, which is not part of the problem.
_EXPAND_ENV = re.compile(r"\.? Use `-config\.expand-env=true` flag.*$")


def parse_problems(output: str, host_path: Callable[[str], str]) -> tuple[Problem, ...]:
    """The problems in promtool/amtool output that name a file (and a line when given)."""
    problems: list[Problem] = []
    current: str | None = None  # amtool's file, for its indented "line N:" follow-ups
    for raw in output.splitlines():
        raw = _EXPAND_ENV.sub("", raw)
        located = _LOCATED.match(raw)
        yaml_file = _YAML_FILE.search(raw)
        amtool = _AMTOOL.match(raw.strip())
        yaml_v3 = _YAML_V3.search(raw)
        if located:
            problems.append(
                Problem(host_path(located["file"]), int(located["line"]), located["msg"].strip())
            )
            current = None
        elif yaml_file:
            line = _LINE_N.search(yaml_file["msg"])
            number = int(line["line"]) if line else None
            problems.append(Problem(host_path(yaml_file["file"]), number, yaml_file["msg"].strip()))
            current = None
        elif yaml_v3:
            current = host_path(yaml_v3["file"])
            message = yaml_v3["msg"].strip()
            if message and not message.endswith(":"):
                line = _LINE_N.match(message)
                number = int(line["line"]) if line else None
                problems.append(Problem(current, number, line["msg"] if line else message))
        elif amtool:
            current = host_path(amtool["file"])
            message = amtool["msg"].strip()
            if message and not message.endswith(":"):
                line = _LINE_N.search(message)
                problems.append(Problem(current, int(line["line"]) if line else None, message))
        elif current and raw.startswith((" ", "\t")) and _LINE_N.search(raw):
            line = _LINE_N.search(raw)
            assert line is not None
            problems.append(Problem(current, int(line["line"]), line["msg"].strip()))
    # promtool repeats a broken rule file's error once per test file that loads it
    return tuple(dict.fromkeys(problems))


def summary_of(output: str) -> str:
    """A one-line gist of a failed tool run that named no file: its FAILED/error lines."""
    lines = [line.strip() for line in output.splitlines() if "FAILED" in line or "error" in line]
    return "; ".join(lines[:5]) or output.strip().splitlines()[-1]
