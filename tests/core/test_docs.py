"""The docs an operator reads first say nothing false that a test can check (issue 19,
item 12): every repository path the README and bench/README name exists, and
`bench/backup_bench.py --quick` runs without pytest and says clearly when Docker is
missing."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
# Paths an operator's stack or a backup has, not this repository.
NOT_IN_THE_REPO = (".monctl/", "2026")
_PATH = re.compile(
    r"`([A-Za-z0-9_.][A-Za-z0-9_./-]*/[A-Za-z0-9_.-]+\.(?:py|md|sh|yml|yaml|json|toml|tmpl))`"
)


@pytest.mark.parametrize("doc", ["README.md", "bench/README.md", "docs/architecture.md"])
def test_every_repository_path_a_doc_names_exists(doc: str) -> None:
    text = (REPO / doc).read_text(encoding="utf-8")
    named = {p for p in _PATH.findall(text) if not p.startswith(NOT_IN_THE_REPO)}
    assert named, f"{doc} names no path: the check would check nothing"
    # a module may be named inside the package (`backup/drill.py`), as architecture.md does
    missing = sorted(p for p in named if not any((d / p).exists() for d in (REPO, REPO / "monctl")))
    assert not missing, f"{doc} names files that do not exist: {missing}"


def test_the_readme_states_no_test_counts() -> None:
    # Counts go stale with every test added; the README says what runs, not how many.
    text = (REPO / "README.md").read_text(encoding="utf-8")
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
