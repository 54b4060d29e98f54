"""Format-2 repositories for the unit tests, made by monctl's real backup pipeline.

Two fictional services are declared here (operations never name a service, so any
declaration works): ``tsdb`` keeps immutable units (directories named ``B<n>``,
listed by a ``find`` the fake runtime answers) like Prometheus' blocks, and
``ledger`` keeps a database that changes and a ``journal/`` of files written once,
like Loki's chunks (no listing: it is read whole). The runtime is
``support.fake_runtime`` (the outer edge: tar streams made from dicts), the
destination a real ``LocalStorage`` or S3 on moto.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from monctl.adapters.storage import Storage
from monctl.backup import create
from monctl.backup.reports import BackupReport
from monctl.project import COMPOSE_FILE, Project
from monctl.services.model import DataVolume, Layout, Pause, Probe, Service
from support.fake_runtime import FakeRuntime

LISTING = ("find", "{path}", "-mindepth", "1", "-exec", "stat", "-c", "%f %s %Y %n", "{}", "+")


def _service(name: str, port: int, path: str, layout: Layout) -> Service:
    return Service(
        name=name,
        title=name.title(),
        role="a fictional service of the repository tests",
        container_port=port,
        port_var=f"{name.upper()}_PORT",
        default_port=port,
        image_var=f"{name.upper()}_IMAGE",
        liveness=Probe("/healthz"),
        data=DataVolume(f"{name}_data", path, 4242, 4242, Pause(), layout),
    )


TSDB = _service(
    "tsdb",
    7071,
    "/data/tsdb",
    Layout(units=r"B[0-9]+", compressed=("*/chunks/*",), listing=LISTING),
)
LEDGER = _service("ledger", 7072, "/var/lib/ledger", Layout(objects=("journal/*",)))


def block(n: int, size: int = 300_000) -> dict[str, bytes]:
    """A unit's files: incompressible chunks, a compressible index, a small meta file."""
    return {
        f"B{n}/chunks/000001": os.urandom(size),
        f"B{n}/index": f"index of block {n} ".encode() * 2000,
        f"B{n}/meta.json": b'{"ulid": "B%d"}' % n,
    }


def project(root: Path) -> Project:
    (root / COMPOSE_FILE).parent.mkdir(parents=True, exist_ok=True)
    (root / COMPOSE_FILE).write_text("services: {}\n", encoding="utf-8")
    (root / ".env").write_text("", encoding="utf-8")
    return Project(root=root, name="repo-test")


def runtime() -> FakeRuntime:
    rt = FakeRuntime(urls={"tsdb": "http://127.0.0.1:9", "ledger": "http://127.0.0.1:9"})
    rt.files["tsdb"] = {**block(1), **block(2)}
    rt.files["ledger"] = {
        "ledger.db": b"row\n" * 50_000,
        "journal/0001": os.urandom(20_000),
        "journal/0002": os.urandom(5 * 1024 * 1024),  # beyond what is read into memory
    }
    rt.tools["find"] = lambda argv: rt.listing(TSDB if "/tsdb" in argv[1] else LEDGER)(argv)
    return rt


def back_up(
    proj: Project,
    rt: FakeRuntime,
    storage: Storage,
    services: tuple[Service, ...] = (TSDB, LEDGER),
    **kw: Any,
) -> BackupReport:
    """One ``monctl backup`` of ``services``; fails the test when it fails."""
    rt.reads.clear()
    report = create.run(proj, rt, storage, services, **kw)
    assert report.error is None, report.error
    return report


def stats(report: BackupReport, service: str) -> Any:
    return next(s.stats for s in report.services if s.service == service)
