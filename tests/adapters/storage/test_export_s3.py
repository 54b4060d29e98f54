"""`monctl backup export --from s3://…` through the CLI, on moto behind a proxy that can cut
the endpoint: a complete export; the endpoint gone in the middle (exit 8) or SIGTERM while
it retries (exit 143) leave no output file, nor its temporary name."""

from __future__ import annotations

import dataclasses
import os
import signal
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from pathlib import Path

import pytest
from support import repo
from support.storage_proxy import FaultProxy
from support.tree_runtime import TreeRuntime

from monctl.adapters.storage.s3 import S3Storage
from monctl.backup import create
from monctl.errors import ExitCode

LOKI = dataclasses.replace(
    repo.LEDGER,
    name="loki",
    data=dataclasses.replace(repo.LEDGER.data, path="/loki"),  # type: ignore[arg-type]
)
MiB = 1024 * 1024


def backed_up(tmp_path: Path, storage: S3Storage) -> str:
    live = tmp_path / "live"
    for i in range(24):  # 48 MiB in 2 MiB objects: long enough to cut it midway
        path = live / "journal" / f"{i:04d}"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(os.urandom(2 * MiB))
    (live / "ledger.db").write_bytes(b"row\n" * 1000)
    proj = repo.project(tmp_path / "stack")
    report = create.run(proj, TreeRuntime({"loki": live}), storage, (LOKI,))
    assert report.error is None, report.error
    return report.backup_id


def start(
    tmp_path: Path, url: str, bucket: str, backup_id: str, out: Path, budget: str
) -> subprocess.Popen[bytes]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MONCTL_")}
    env.update(AWS_ENDPOINT_URL=url, MONCTL_S3_TIMEOUT=budget, MONCTL_S3_CONNECT_TIMEOUT="1",
               MONCTL_S3_READ_TIMEOUT="1", NO_COLOR="1")  # fmt: skip
    return subprocess.Popen(
        [sys.executable, "-m", "monctl", "--project-dir", str(tmp_path / "stack"), "backup",
         "export", backup_id, "--from", f"s3://{bucket}/backups", "-o", str(out)],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env,
    )  # fmt: skip


def partial(out: Path, timeout: float = 60) -> Path:
    """The export's temporary file, once bytes have reached it."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        parts = [p for p in out.parent.glob(f".{out.name}.*.part") if p.stat().st_size]
        if parts:
            return parts[0]
        time.sleep(0.005)
    raise AssertionError("the export never started writing")


def test_an_export_from_s3_is_complete(
    make_s3: Callable[..., S3Storage], bucket: str, tmp_path: Path, moto_endpoint: str
) -> None:
    backup_id = backed_up(tmp_path, make_s3())
    out = tmp_path / "out" / "loki.tar"
    out.parent.mkdir()
    export = start(tmp_path, moto_endpoint, bucket, backup_id, out, "30")
    _, err = export.communicate(timeout=120)
    assert export.returncode == 0, err.decode()
    with tarfile.open(out) as tar:
        assert len([m for m in tar.getmembers() if m.isfile()]) == 25
    assert list(out.parent.iterdir()) == [out]


@pytest.mark.parametrize("how", ["endpoint down", "SIGTERM"])
def test_an_export_cut_short_leaves_no_file(
    make_s3: Callable[..., S3Storage],
    bucket: str,
    proxy: FaultProxy,
    tmp_path: Path,
    how: str,
) -> None:
    backup_id = backed_up(tmp_path, make_s3())
    out = tmp_path / "out" / "loki.tar.zst"
    out.parent.mkdir()
    export = start(
        tmp_path, proxy.url, bucket, backup_id, out, "3" if how == "endpoint down" else "60"
    )
    try:
        partial(out)
        proxy.cut()
        if how == "SIGTERM":
            time.sleep(0.5)  # in the middle of its retries
            export.send_signal(signal.SIGTERM)
        _, err = export.communicate(timeout=120)
    finally:
        if export.poll() is None:
            export.kill()
    expected = ExitCode.STORAGE if how == "endpoint down" else ExitCode.TERMINATED
    assert export.returncode == expected, err.decode()
    assert "Traceback" not in err.decode()
    says = "cannot reach S3" if how == "endpoint down" else "stopped by SIGTERM"
    assert says in err.decode()
    assert list(out.parent.iterdir()) == []
