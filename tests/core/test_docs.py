"""The docs an operator reads first say nothing false that a test can check (issue 19,
item 12; issue 18): every repository path and every relative link README.md, bench/README.md
and docs/ name exists, and `bench/backup_bench.py --quick` runs without pytest and says
clearly when Docker is missing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DOCS = [
    "README.md",
    "bench/README.md",
    *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md")),
]
# Paths an operator's stack or a backup has, not this repository (`sub/x.json`: a key
# under a destination that is no backup's, in repository-format.md).
NOT_IN_THE_REPO = (".monctl/", "2026", "sub/")
_PATH = re.compile(
    r"`([A-Za-z0-9_.][A-Za-z0-9_./-]*/[A-Za-z0-9_.-]+\.(?:py|md|sh|yml|yaml|json|toml|tmpl))`"
)
# Any path under a top-level directory of the repository, files and directories alike
# (`tests/stack`, `monctl/services/`, `config/prometheus/rules/*.yml`).
_ROOTED = re.compile(r"`((?:monctl|tests|docs|bench|compose|config|\.ci)/[^`\s]*)`")
_TEMPLATE = set("<>{}…$")  # `config/grafana/dashboards/<uid>.json` names a kind of file
_LINK = re.compile(r"(?<!!)\[[^\]]*\]\(([^)\s]+)\)")
_FENCE = re.compile(r"^```.*?^```", flags=re.S | re.M)


def named_paths(text: str) -> set[str]:
    """The repository paths a document names in backticks (templates left out)."""
    named = {p for p in _PATH.findall(text) if not p.startswith(NOT_IN_THE_REPO)}
    named |= set(_ROOTED.findall(text))
    return {p for p in named if not _TEMPLATE & set(p)}


def defines(source: str, name: str) -> bool:
    """Whether a Python source defines ``name`` (a function, a class or a module-level name)."""
    pattern = rf"^\s*(?:async def|def|class) {re.escape(name)}\b|^{re.escape(name)}\s*[:=]"
    return re.search(pattern, source, flags=re.M) is not None


def missing_paths(text: str) -> list[str]:
    def exists(path: str) -> bool:
        path, *inside = path.split("::")  # `tests/e2e/test_x.py::test_y`: the test too
        # a module may be named inside the package (`backup/drill.py`), as architecture.md does
        for base in (REPO, REPO / "monctl"):
            if inside:
                return (base / path).is_file() and all(
                    defines((base / path).read_text(encoding="utf-8"), n) for n in inside
                )
            if any(c in path for c in "*?["):
                if any(base.glob(path)):
                    return True
            elif (base / path).exists():
                return True
        return False

    return sorted(p for p in named_paths(text) if not exists(p))


def slug(heading: str) -> str:
    """GitHub's anchor for a heading: lower case, punctuation dropped, spaces to hyphens."""
    text = re.sub(r"[^\w\- ]", "", heading.strip().lower())
    return text.replace(" ", "-")


def anchors(text: str) -> set[str]:
    prose = _FENCE.sub("", text)
    return {slug(m) for m in re.findall(r"^#+ (.+)$", prose, flags=re.M)}


def broken_links(doc: Path, root: Path = REPO) -> list[str]:
    """The relative links of ``doc`` whose file (in ``root``), or whose heading (#anchor),
    does not exist."""
    text = doc.read_text(encoding="utf-8")
    broken = []
    for target in _LINK.findall(_FENCE.sub("", text)):
        if re.match(r"[a-z][a-z0-9+.-]*:", target):  # https:, mailto: ...
            continue
        path, _, anchor = target.partition("#")
        file = (doc.parent / path).resolve() if path else doc
        outside = not file.exists() or root not in (file, *file.parents)
        if outside or (anchor and file.suffix == ".md" and anchor not in anchors(file.read_text())):
            broken.append(target)
    return broken


@pytest.mark.parametrize("doc", DOCS)
def test_every_repository_path_a_doc_names_exists(doc: str) -> None:
    text = (REPO / doc).read_text(encoding="utf-8")
    if doc in ("README.md", "bench/README.md", "docs/architecture.md"):
        assert named_paths(text), f"{doc} names no path: the check would check nothing"
    missing = missing_paths(text)
    assert not missing, f"{doc} names files that do not exist: {missing}"


@pytest.mark.parametrize("doc", DOCS)
def test_every_relative_link_of_a_doc_exists(doc: str) -> None:
    broken = broken_links(REPO / doc)
    assert not broken, f"{doc} links to what does not exist: {broken}"


def test_the_checks_find_a_missing_path_and_a_broken_link(tmp_path: Path) -> None:
    # The two checks above must be able to fail: a path, a file link and an anchor that
    # do not exist are each found; ones that exist are not.
    text = (
        "`monctl/services/model.py` `monctl/no_such.py` `tests/stack` `tests/nothing/`\n"
        "`config/prometheus/rules/*.yml` `config/nothing/*.yml` `backup/no_such.py`\n"
        "`monctl/services/model.py::Service` `monctl/services/model.py::Nothing`\n"
    )
    assert missing_paths(text) == [
        "backup/no_such.py",
        "config/nothing/*.yml",
        "monctl/no_such.py",
        "monctl/services/model.py::Nothing",
        "tests/nothing/",
    ]
    doc = tmp_path / "doc.md"
    (tmp_path / "other.md").write_text("# Other\n\n## Nightly, with cron\n")
    doc.write_text(
        "# Top\n[a](other.md) [b](other.md#nightly-with-cron) [c](other.md#nope)\n"
        "[d](missing.md) [e](#top) [f](#gone) [g](https://example.org/x)\n"
        "```\n[h](in-a-code-block.md)\n```\n"
    )
    assert broken_links(doc, root=tmp_path) == ["other.md#nope", "missing.md", "#gone"]


@pytest.mark.parametrize("doc", ["README.md", "docs/testing.md"])
def test_the_docs_state_no_test_counts(doc: str) -> None:
    # Counts go stale with every test added; the docs say what runs, not how many.
    text = (REPO / doc).read_text(encoding="utf-8")
    assert not re.search(r"~?\d[\d,]* tests\b", text)


def test_backup_bench_without_pytest_says_docker_is_missing(tmp_path: Path) -> None:
    # As in a clean install (no test extra): pytest cannot be imported at all.
    runner = (
        "import runpy, sys\n"
        "sys.modules['pytest'] = None\n"
        "sys.argv = ['bench/backup_bench.py', '--quick']\n"
        "runpy.run_path('bench/backup_bench.py', run_name='__main__')\n"
    )
    fake_bin = tmp_path / "bin"  # promtool and time present, so the engine is what is missing
    fake_bin.mkdir()
    for tool in ("promtool",):
        (fake_bin / tool).write_text("#!/bin/sh\nexit 0\n")
        (fake_bin / tool).chmod(0o755)
    env = {
        **os.environ,
        "DOCKER_HOST": f"unix://{tmp_path}/no-engine.sock",
        "PATH": f"{fake_bin}:{os.environ.get('PATH', '')}",
    }
    done = subprocess.run(
        [sys.executable, "-c", runner],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode != 0
    assert "Traceback" not in done.stderr, done.stderr
    assert "backup_bench: needs a running Docker engine" in done.stderr, done.stderr
