"""Archives built to exhaust memory: huge claimed headers, and members by the hundred thousand.

``tarfile`` reads a GNU long name or a PAX header whole, whatever size it claims,
and keeps every member it read: a small archive could drive memory to gigabytes.
monctl's reader (``backup/tar_stream.py``) bounds each header and keeps nothing,
so verification stays small whatever the archive holds. Memory is measured with
tracemalloc (what Python allocates), not time: nothing here is a timed assertion.
"""

from __future__ import annotations

import io
import os
import subprocess
import sys
import tarfile
import tracemalloc
from pathlib import Path

import pytest

from monctl.errors import IntegrityError
from monctl.repository.tar_safety import check_tar
from monctl.repository.tar_stream import MAX_NAME, MAX_PAX

REPO = Path(__file__).resolve().parents[2]


def header(name: str, kind: bytes, size: int) -> bytes:
    info = tarfile.TarInfo(name)
    info.type, info.size = kind, size
    return info.tobuf(tarfile.USTAR_FORMAT)


def test_a_gnu_long_name_claiming_hundreds_of_megabytes_is_refused_at_once() -> None:
    claim = 500 * 1024 * 1024
    stream = io.BytesIO(header("././@LongLink", tarfile.GNUTYPE_LONGNAME, claim) + b"x" * 4096)
    tracemalloc.start()
    try:
        with pytest.raises(IntegrityError, match=f"{claim}-byte name"):
            check_tar(stream, "")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 1024 * 1024, f"{peak} bytes allocated to refuse a header"
    assert stream.tell() < 8192  # it did not read on into the claimed name


def test_a_pax_header_claiming_hundreds_of_megabytes_is_refused_at_once() -> None:
    stream = io.BytesIO(header("pax", tarfile.XHDTYPE, 300 * 1024 * 1024) + b"1" * 2048)
    with pytest.raises(IntegrityError, match="PAX header"):
        check_tar(stream, "")


def test_bounds_let_real_long_names_through() -> None:
    buf = io.BytesIO()
    long_name = "prometheus/" + "d" * 200 + "/" + "f" * 250
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        info = tarfile.TarInfo(long_name)
        info.size = 3
        tar.addfile(info, io.BytesIO(b"abc"))
    pax_buf = io.BytesIO()
    with tarfile.open(fileobj=pax_buf, mode="w", format=tarfile.PAX_FORMAT) as pax:
        info = tarfile.TarInfo("prometheus/" + "p" * 300)
        info.pax_headers = {"comment": "c" * 1000}
        pax.addfile(info)
    assert check_tar(io.BytesIO(buf.getvalue()), "prometheus").files == 1
    assert check_tar(io.BytesIO(pax_buf.getvalue()), "prometheus").files == 1
    assert len(long_name) < MAX_NAME and MAX_PAX >= 4096


def test_a_name_longer_than_the_bound_in_a_pax_record_is_refused() -> None:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.PAX_FORMAT) as tar:
        tar.addfile(tarfile.TarInfo("x/" + "n" * (MAX_NAME + 10)))
    with pytest.raises(IntegrityError, match="longer than"):
        check_tar(io.BytesIO(buf.getvalue()), "")


def test_memory_does_not_grow_with_the_member_count() -> None:
    """150,000 members (tarfile would keep 150,000 TarInfo objects): the RSS of the
    whole verifying process stays under the issue's ~100 MB."""
    code = (
        "import io\n"
        "from support.backup_factory import GeneratedTar\n"
        "from monctl.repository.tar_safety import check_tar\n"
        "check = check_tar(io.BufferedReader(GeneratedTar(150_000), 1 << 20), 'loki')\n"
        # VmHWM, not ru_maxrss: the kernel carries ru_maxrss over from the forking
        # parent (pytest's own size) across exec; VmHWM is this program's alone.
        "hwm = [l for l in open('/proc/self/status') if l.startswith('VmHWM:')][0]\n"
        "print(check.files, hwm.split()[1])\n"
    )
    # A clean environment: the memory measured is the parser's, not what a variable
    # another test left behind (a debug allocator, tracemalloc) adds to the process.
    env = {
        "PATH": os.environ.get("PATH", ""),
        "PYTHONPATH": os.pathsep.join([str(REPO / "tests"), str(REPO)]),
    }
    done = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, env=env, check=False
    )
    assert done.returncode == 0, done.stderr
    files, rss_kib = map(int, done.stdout.split())
    assert files == 150_000
    assert rss_kib < 100 * 1024, f"{rss_kib / 1024:.0f} MiB resident for 150,000 members"
