"""A health report as JUnit XML, for CI systems that draw test results.

One ``testcase`` per check: each service's container, liveness and readiness,
each deep check, each watched target. A failed check carries a ``failure``
with its reason; a deep-check warning passes and keeps its note in
``system-out``. A watched target that is down is a failure of its own test
case (classname ``monctl.health.targets``), so CI shows it apart from the stack.
"""

from __future__ import annotations

import os
import tempfile
import xml.etree.ElementTree as ET
from pathlib import Path

from monctl.health.report import HealthReport
from monctl.redaction import redact
from monctl.text import inert

SUITE = "monctl health"


def _xml(text: str) -> str:
    """``text`` for an XML document: secrets masked, and every character XML 1.0
    cannot carry (ESC, BEL, NUL, lone surrogates, U+FFFE...) shown as an escape.
    Tabs and newlines could stay, but a report reads the same without them."""
    return inert(redact(text))


def _case(
    suite: ET.Element, classname: str, name: str, failure: str | None, note: str = ""
) -> None:
    case = ET.SubElement(suite, "testcase", classname=_xml(classname), name=_xml(name), time="0")
    if failure is not None:
        element = ET.SubElement(case, "failure", message=_xml(failure), type="unhealthy")
        element.text = _xml(failure)
    if note:
        ET.SubElement(case, "system-out").text = _xml(note)


def to_xml(report: HealthReport) -> ET.Element:
    """The JUnit ``testsuites`` element for ``report``."""
    suite = ET.Element(
        "testsuite", name=SUITE, timestamp=report.checked_at.isoformat(timespec="seconds")
    )
    for s in report.services:
        classname = f"monctl.health.{s.name}"
        if s.state != "unknown":
            running = s.state == "running" or s.state == "n/a"
            _case(suite, classname, "container", None if running else f"container {s.state}")
        failed = None if s.live else f"{s.status}: {s.detail}".rstrip(": ")
        _case(suite, classname, "liveness", failed, s.url or "")
        if s.has_readiness:
            failed = None if s.ok else f"{s.status}: {s.detail}".rstrip(": ")
            _case(suite, classname, "readiness", failed, s.detail if s.ok else "")
    for c in report.checks:
        failed = None if c.ok or c.severity == "warning" else c.detail
        note = c.detail if c.ok or c.severity == "warning" else ""
        _case(suite, f"monctl.health.{c.service}.deep", c.name, failed, note)
    for t in report.targets:
        name = f"{t.name} ({t.instance})" if t.instance else t.name
        failed = f"{name} down: {t.detail}" if t.state == "down" else None
        _case(suite, "monctl.health.targets", name, failed, t.detail if t.state != "down" else "")
    cases = suite.findall("testcase")
    suite.set("tests", str(len(cases)))
    suite.set("failures", str(sum(c.find("failure") is not None for c in cases)))
    suite.set("errors", "0")
    root = ET.Element("testsuites", name=SUITE)
    root.append(suite)
    return root


def write(report: HealthReport, path: Path) -> None:
    """Write the report to ``path`` atomically (a half-written file never appears)."""
    tree = ET.ElementTree(to_xml(report))
    ET.indent(tree)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "wb") as fh:
            tree.write(fh, encoding="utf-8", xml_declaration=True)
        os.chmod(tmp, 0o644)
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise
