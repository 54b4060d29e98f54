"""A disk that really fills: a tmpfs of a given size mounted for one test (root only).

``small_disk`` mounts it and ALWAYS unmounts it (lazily, so a file left open by a
failed test cannot keep it); ``fill`` writes a ballast file that leaves only so many
bytes free on it. Without root (a workstation) the tests that need it are skipped,
and fail under CI (``support.require``).
"""

from __future__ import annotations

import contextlib
import os
import subprocess
from collections.abc import Iterator
from pathlib import Path

from support import require


@contextlib.contextmanager
def small_disk(path: Path, size: int) -> Iterator[Path]:
    """A tmpfs of ``size`` bytes at ``path`` for the block; unmounted afterwards."""
    path.mkdir(parents=True, exist_ok=True)
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size},mode=0755", "tmpfs", str(path)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    require(mounted.returncode == 0, f"cannot mount a tmpfs (root needed): {mounted.stderr}")
    try:
        yield path
    finally:
        subprocess.run(["umount", "-l", str(path)], capture_output=True, check=False)


def free(path: Path) -> int:
    st = os.statvfs(path)
    return st.f_bavail * st.f_frsize


def fill(path: Path, leave: int, name: str = "ballast") -> Path:
    """Write ``path/name`` so that about ``leave`` bytes stay free on ``path``'s disk."""
    ballast = path / name
    want = free(path) - leave
    with open(ballast, "ab") as f:
        block = b"\0" * (1 << 20)
        while want > 0:
            f.write(block[: min(want, len(block))])
            want -= len(block)
    return ballast
