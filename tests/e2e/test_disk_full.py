"""A backup whose disk fills, on a real engine with the destination on a small real tmpfs.

The most common way a nightly backup fails. Whether the disk fills in the middle of
an object or in the middle of the manifest, the run ends with exit 8, one error line
naming the destination and the cause (one JSON document with --json), nothing
half-written left, nothing paused, and the earlier backups intact and verifiable.
A run before that warns when less is free than the previous backup wrote.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from support.data import explain, fingerprint, inspect, no_paused, sh
from support.engine import Stack, docker
from support.engine_proxy import VolumeSizingProxy
from support.small_disk import fill, small_disk

from monctl.adapters.storage import MiB

pytestmark = pytest.mark.docker

BALLAST = "/var/lib/grafana/ballast.bin"


def _leftovers(dest: Path) -> list[str]:
    """What a failed run may not leave: partial files, leases, spools."""
    return sorted(
        p.relative_to(dest).as_posix()
        for p in dest.rglob("*")
        if ".partial-" in p.name or p.name.startswith(".lease-")
    )


def _manifests(dest: Path) -> list[str]:
    return sorted(p.parent.name for p in dest.glob("*/manifest.json"))


def _backup(stack: Stack, dest: Path, *args: str) -> dict:
    result = stack.monctl("backup", "--to", str(dest), "--service", "grafana", "--json", *args)
    assert result.code == 0, explain(result)
    return json.loads(result.out)


def _failed_backup(stack: Stack, dest: Path) -> tuple[dict, str]:
    """The JSON document of a backup that must fail with exit 8, and the stderr of the
    same run without --json (one error line, no traceback)."""
    argv = ["backup", "--to", str(dest), "--service", "grafana"]
    result = stack.monctl(*argv, "--json")
    assert result.code == 8, explain(result)
    doc = json.loads(result.out)  # one document, nothing else on stdout
    assert (doc["ok"], doc["exit_code"], doc["command"]) == (False, 8, "backup")
    assert "Traceback" not in result.err, result.err
    plain = stack.monctl(*argv)
    assert plain.code == 8, explain(plain)
    assert "Traceback" not in plain.err
    errors = [line for line in plain.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1, plain.err
    assert str(dest) in errors[0] and "no space left on device" in errors[0], plain.err
    return doc, plain.err


def test_disk_full_mid_object_warns_first_then_fails_cleanly(
    data_stack: Stack, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "disk", 24 * MiB) as disk:
        dest = disk / "bk"
        # 6 MiB that zstd cannot shrink: the previous backup writes at least that.
        sh(data_stack, "grafana", f"head -c {6 * MiB} /dev/urandom > {BALLAST}")
        try:
            first = _backup(data_stack, dest)
            assert first["written_bytes"] > 6 * MiB and first["warnings"] == []
            fill(disk, leave=3 * MiB)
            sh(data_stack, "grafana", f"head -c {6 * MiB} /dev/urandom > {BALLAST}")
            doc, err = _failed_backup(data_stack, dest)
        finally:
            sh(data_stack, "grafana", f"rm -f {BALLAST}")
        # Before it started: less free than the previous backup of grafana wrote.
        assert any(
            w.startswith("only ") and f"free at {dest}, less than the" in w for w in doc["warnings"]
        ), doc["warnings"]
        assert "warning: only" in err
        message = doc["error"]["message"]
        assert message.startswith(
            f"backup failed (grafana): cannot write an object in {dest}: no space left on device ("
        ), message
        assert " free); it needed roughly " in message, message
        assert "the previous backup of these services wrote" in message
        hint = doc["error"]["hint"]
        assert "prune" in hint and "--to" in hint, hint
        assert [s["status"] for s in doc["services"]] == ["failed"]
        # Nothing half-written, no backup recorded, nothing paused, the first intact.
        assert _leftovers(dest) == []
        assert _manifests(dest) == [first["id"]]
        assert no_paused(data_stack) == []
        verified = data_stack.monctl("backup", "verify", first["id"], "--from", str(dest))
        assert verified.code == 0, explain(verified)


def test_disk_full_mid_manifest_fails_cleanly(data_stack: Stack, tmp_path: Path) -> None:
    """Every object is in the repository already (nothing changed since the first
    backup): the manifest, written last, is what no longer fits. Many small files make
    it large enough to need more than the space left."""
    with small_disk(tmp_path / "disk", 24 * MiB) as disk:
        dest = disk / "bk"
        sh(
            data_stack,
            "grafana",
            "mkdir -p /var/lib/grafana/many && cd /var/lib/grafana/many && "
            "for i in $(seq 1 3000); do echo $i > file-with-a-long-name-$i.txt; done",
        )
        try:
            first = _backup(data_stack, dest)
            size = (dest / first["id"] / "manifest.json").stat().st_size
            assert size > 256 * 1024, size
            again = _backup(data_stack, dest)  # how much an unchanged backup writes
            fill(disk, leave=64 * 1024)
            doc, _ = _failed_backup(data_stack, dest)
        finally:
            sh(data_stack, "grafana", "rm -rf /var/lib/grafana/many")
        message = doc["error"]["message"]
        assert message.startswith("backup failed (manifest): cannot write "), (
            message,
            again["written_bytes"],
        )
        assert f"/manifest.json in {dest}: no space left on device (" in message, message
        assert _leftovers(dest) == []
        assert _manifests(dest) == sorted([first["id"], again["id"]])
        assert no_paused(data_stack) == []
        for backup_id in (first["id"], again["id"]):
            verified = data_stack.monctl("backup", "verify", backup_id, "--from", str(dest))
            assert verified.code == 0, explain(verified)


# ----------------------------------------------------- restore and drill: the engine's disk
#
# Their staging area is a volume on the engine's disk, which a test cannot fill (it is
# the machine's). Simulated as close to the real thing as can be: monctl talks to the
# engine through ``VolumeSizingProxy``, which passes everything through but creates
# the staging volume ("…-monctl-restore-…") on a 1 MiB tmpfs. The engine then really
# runs out of space extracting into it and answers as on a full disk.

STAGE = "-monctl-restore-"


def drill_leftovers(stack: Stack) -> list[str]:
    """Containers, volumes and networks of any throwaway copy of ``stack``."""
    found = []
    for kind in ("ps -a", "volume ls", "network ls"):
        label = f"label=org.monctl.drill={stack.project_name}"
        found += [
            f"{kind}: {x}" for x in docker(*kind.split(), "-q", "--filter", label).out.split()
        ]
    return found


def _staging_leftovers() -> list[str]:
    volumes = docker("volume", "ls", "-q").out.split()
    return [v for v in volumes if STAGE in v]


@pytest.fixture
def grafana_backup(data_stack: Stack, tmp_path: Path) -> Iterator[tuple[Path, str]]:
    """A backup of Grafana holding 4 MiB that zstd cannot shrink (more than the stage)."""
    sh(data_stack, "grafana", f"head -c {4 * MiB} /dev/urandom > {BALLAST}")
    try:
        dest = tmp_path / "bk"
        yield dest, _backup(data_stack, dest)["id"]
    finally:
        sh(data_stack, "grafana", f"rm -f {BALLAST}")


def test_restore_staging_disk_full_leaves_the_live_data_alone(
    data_stack: Stack, grafana_backup: tuple[Path, str]
) -> None:
    dest, backup_id = grafana_backup
    before = fingerprint(data_stack, "grafana")
    started = inspect(data_stack, "grafana", "{{.State.StartedAt}}")
    proxy = VolumeSizingProxy(STAGE, MiB)
    try:
        argv = ["restore", backup_id, "--from", str(dest), "--service", "grafana", "--yes"]
        result = data_stack.monctl(*argv, "--json", env={"DOCKER_HOST": proxy.url})
        plain = data_stack.monctl(*argv, env={"DOCKER_HOST": proxy.url})
    finally:
        proxy.close()
    assert len(proxy.sized) == 2, "no staging volume was made small: nothing was tested"
    assert result.code == 8, explain(result)
    doc = json.loads(result.out)
    assert (doc["ok"], doc["exit_code"]) == (False, 8)
    [service] = doc["services"]
    assert service["status"] == "failed" and service["exit_code"] == 8, service
    assert service["error"].startswith("the Docker engine cannot write into the staging volume ")
    assert service["error"].endswith(": no space left on device"), service
    assert plain.code == 8 and "Traceback" not in plain.err, explain(plain)
    errors = [line for line in plain.err.splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and "no space left on device" in errors[0], plain.err
    assert "docker system df" in plain.err
    # The stage is gone, the live volume untouched, the service never stopped.
    assert _staging_leftovers() == []
    assert fingerprint(data_stack, "grafana") == before
    assert inspect(data_stack, "grafana", "{{.State.StartedAt}}") == started
    assert no_paused(data_stack) == []


def test_drill_staging_disk_full_removes_the_throwaway_stack(
    data_stack: Stack, grafana_backup: tuple[Path, str]
) -> None:
    dest, backup_id = grafana_backup
    proxy = VolumeSizingProxy(STAGE, MiB)
    try:
        result = data_stack.monctl(
            "backup", "test", backup_id, "--from", str(dest), "--service", "grafana", "--json",
            env={"DOCKER_HOST": proxy.url}, timeout=600,
        )  # fmt: skip
    finally:
        proxy.close()
    assert proxy.sized, "no staging volume was made small: nothing was tested"
    assert result.code == 8, explain(result)
    doc = json.loads(result.out)
    assert (doc["ok"], doc["exit_code"], doc["removed"]) == (False, 8, True), doc
    [service] = doc["services"]
    assert service["restore"] == "failed", service
    assert "no space left on device" in service["error"], service
    assert drill_leftovers(data_stack) == []
    assert _staging_leftovers() == []
    assert no_paused(data_stack) == []
    verified = data_stack.monctl("backup", "verify", backup_id, "--from", str(dest))
    assert verified.code == 0, explain(verified)
