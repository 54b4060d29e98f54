"""The direct restore's writer and swap (``restore_files``, ``restore_direct``,
``runtime.host_volume``) on real directories and a real repository made by the real
backup pipeline; the engine's archive API that reads the live data is the only stand-in
(``TreeRuntime``). The same restore runs against Docker in tests/e2e/test_restore_direct.py.

What is checked: the files written are exactly what the engine path extracts (names,
kinds, modes, owners, times, contents, links); a corrupt object, a full disk or a
signal while staging leave the live directory as it was and no stage; the swap leaves
the old data or the new, and always starts the service again.
"""

from __future__ import annotations

import dataclasses
import hashlib
import os
import signal
import stat
import subprocess
from pathlib import Path
from typing import Any

import pytest
from support import repo
from support.small_disk import small_disk
from support.tree_runtime import TreeRuntime

from monctl import signals
from monctl.adapters.storage.local import LocalStorage
from monctl.backup import create, restore_direct
from monctl.backup.restore_files import write
from monctl.backup.restore_stream import assembled
from monctl.errors import ExitCode, OperationFailed
from monctl.project import Project
from monctl.repository.manifest import Manifest, read_manifest
from monctl.repository.objects import object_key
from monctl.runtime.host_volume import HostVolume

ROOT = os.geteuid() == 0
pytestmark = pytest.mark.skipif(not ROOT, reason="owners can be set by root only")
LEDGER = repo.LEDGER
assert LEDGER.data is not None


def live_tree(root: Path) -> Path:
    """A data directory with what a volume may hold: modes, owners, links, times."""
    files = {
        "big.db": os.urandom(3 * 1024 * 1024 + 17),  # an object of its own
        "small.txt": b"small\n",
        "empty": b"",
        "journal/0001": os.urandom(70_000),  # stored as it is: copied by the kernel
        "journal/0002": b"compressible " * 200_000,  # compressed: decoded as it is written
        "deep/er/still/file.txt": b"deep",
    }
    for name, data in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(data)
    (root / "small.txt").chmod(0o600)
    (root / "journal/0001").chmod(0o444)
    (root / "empty-dir").mkdir(mode=0o700)
    (root / "empty-dir").chmod(0o700)
    (root / "current").symlink_to("journal/0001")
    (root / "dangling").symlink_to("nowhere/at/all")
    os.link(root / "journal/0001", root / "journal/0001.hardlink")
    os.chown(root / "small.txt", 472, 472)
    os.utime(root / "small.txt", (1_700_000_000, 1_700_000_000))
    os.utime(root / "empty-dir", (1_600_000_000, 1_600_000_000))
    return root


def describe(root: Path) -> dict[str, tuple[Any, ...]]:
    """Per path below ``root`` (and "." for itself): type, mode, owner, mtime, content
    or link target, and which names are one file."""
    found: dict[str, tuple[Any, ...]] = {}
    inodes: dict[int, str] = {}
    for path in [root, *sorted(root.rglob("*"))]:
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        what: Any = None
        if stat.S_ISREG(st.st_mode):
            what = hashlib.sha256(path.read_bytes()).hexdigest()
            first = inodes.setdefault(st.st_ino, rel)
            what = what if first == rel else ("same file as", first)
        elif stat.S_ISLNK(st.st_mode):
            what = os.readlink(path)
        mtime = None if rel == "." else int(st.st_mtime)  # the root: the restore's time
        found[rel] = (stat.S_IFMT(st.st_mode), stat.S_IMODE(st.st_mode), st.st_uid,
                      st.st_gid, mtime, what)  # fmt: skip
    return found


@pytest.fixture
def backup(tmp_path: Path) -> tuple[LocalStorage, Manifest]:
    proj: Project = repo.project(tmp_path / "stack")
    storage = LocalStorage(tmp_path / "repo")
    live = live_tree(tmp_path / "live")
    report = create.run(proj, TreeRuntime({"ledger": live}), storage, (LEDGER,))
    assert report.error is None, report.error
    return storage, read_manifest(storage, report.backup_id)


class Calls:
    def __init__(self) -> None:
        self.log: list[str] = []

    def volume(self, top: Path) -> HostVolume:
        data = top / "_data"
        data.mkdir(parents=True)
        (data / "live.txt").write_text("the live data")
        return HostVolume("ledger_data", data, lambda: self.log.append("stop"),
                          lambda: self.log.append("start"))  # fmt: skip


def leftovers(top: Path) -> list[str]:
    return sorted(p.name for p in top.iterdir() if p.name != "_data")


def staged_volume(
    backup: tuple[LocalStorage, Manifest], tmp_path: Path
) -> tuple[Calls, HostVolume, Path]:
    """A live volume (``Calls.volume``) with the backup staged beside it, ready to swap."""
    storage, manifest = backup
    calls = Calls()
    where = calls.volume(tmp_path / "vol")
    stages, _ = restore_direct.stage_all(storage, manifest, (LEDGER,), {"ledger": where},
                                         None, lambda n: None)  # fmt: skip
    return calls, where, stages["ledger"]


def test_the_files_written_are_what_the_engine_path_extracts(
    backup: tuple[LocalStorage, Manifest], tmp_path: Path
) -> None:
    storage, manifest = backup
    files = manifest.files("ledger")
    assert LEDGER.data is not None
    via_tar = tmp_path / "tar"
    via_tar.mkdir()
    stream = b"".join(assembled(storage, files, LEDGER.data))
    done = subprocess.run(["tar", "-x", "--numeric-owner", "--same-owner", "-p", "-C",
                           str(via_tar)], input=stream, capture_output=True)  # fmt: skip
    assert done.returncode == 0, done.stderr
    direct = tmp_path / "direct"
    direct.mkdir()
    write(storage, files, LEDGER.data, direct)
    want, got = describe(via_tar / "ledger"), describe(direct)
    assert got == want
    assert len(got) > 12 and got["empty-dir"][1:] == (0o700, 4242, 4242, 1_600_000_000, None)
    assert got["journal/0001.hardlink"][-1] == ("same file as", "journal/0001")
    assert got["."][1:4] == (0o755, 4242, 4242)  # the root: the image's user


def test_an_encrypted_backup_is_written_directly_with_its_key(tmp_path: Path) -> None:
    """Format 3 (age, BLAKE3 ids): every object decrypted and checked as it is written."""
    from support.age_keys import write_identity

    from monctl.adapters import age

    proj: Project = repo.project(tmp_path / "stack")
    storage = LocalStorage(tmp_path / "repo")
    live = live_tree(tmp_path / "live")
    recipient = write_identity(tmp_path / "backup.key")
    report = create.run(proj, TreeRuntime({"ledger": live}), storage, (LEDGER,),
                        recipients=(recipient,))  # fmt: skip
    assert report.error is None, report.error
    manifest = read_manifest(storage, report.backup_id)
    assert manifest.format_version == 3
    assert LEDGER.data is not None
    direct = tmp_path / "direct"
    direct.mkdir()
    keys = age.load_identities([tmp_path / "backup.key"])
    write(storage, manifest.files("ledger"), LEDGER.data, direct, keys)
    plain = tmp_path / "plain"
    plain.mkdir()
    backup = create.run(proj, TreeRuntime({"ledger": live}), storage, (LEDGER,))
    write(storage, read_manifest(storage, backup.backup_id).files("ledger"), LEDGER.data, plain)
    assert describe(direct) == describe(plain)
    calls = Calls()
    where = calls.volume(tmp_path / "vol")
    stages, checks = restore_direct.stage_all(storage, manifest, (LEDGER,), {"ledger": where},
                                              keys, lambda n: None)  # fmt: skip
    assert describe(stages["ledger"]) == describe(plain) and all(c.ok for c in checks)


def _corrupt(storage: LocalStorage, manifest: Manifest, codec: str) -> None:
    """Flip a byte of the largest object stored with ``codec``."""
    blobs = [b for b in manifest.files("ledger").blobs() if b.ref.codec == codec]
    blob = max(blobs, key=lambda b: b.ref.stored)
    path = Path(storage.root) / object_key(blob.ref.id)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only reading it finds it
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("codec", ["none", "zstd"])
def test_a_corrupt_object_found_mid_stream_removes_the_stage_and_touches_nothing(
    backup: tuple[LocalStorage, Manifest], tmp_path: Path, codec: str
) -> None:
    storage, manifest = backup
    _corrupt(storage, manifest, codec)
    calls = Calls()
    where = calls.volume(tmp_path / "vol")
    with pytest.raises(restore_direct.StagingFailed) as failed:
        restore_direct.stage_all(storage, manifest, (LEDGER,), {"ledger": where}, None,
                                 lambda n: None)  # fmt: skip
    assert failed.value.error.exit_code == ExitCode.INTEGRITY
    [check] = failed.value.checks
    assert not check.ok and check.error and check.service == "ledger"
    assert leftovers(tmp_path / "vol") == [], "the stage was left"
    assert [p.name for p in where.data.iterdir()] == ["live.txt"]
    assert calls.log == [], "the service was stopped"


def test_a_full_disk_while_staging_removes_the_stage_and_touches_nothing(
    backup: tuple[LocalStorage, Manifest], tmp_path: Path
) -> None:
    storage, manifest = backup
    calls = Calls()
    with small_disk(tmp_path / "vol", 1024 * 1024) as top:  # the backup holds > 3 MiB
        where = calls.volume(top)
        with pytest.raises(restore_direct.StagingFailed) as failed:
            restore_direct.stage_all(storage, manifest, (LEDGER,), {"ledger": where}, None,
                                     lambda n: None)  # fmt: skip
        assert failed.value.error.exit_code == ExitCode.STORAGE
        assert "No space left on device" in failed.value.error.message
        assert leftovers(top) == []
        assert (where.data / "live.txt").read_text() == "the live data"
    assert calls.log == []


def test_a_signal_while_staging_removes_the_stage(
    backup: tuple[LocalStorage, Manifest], tmp_path: Path
) -> None:
    storage, manifest = backup
    calls = Calls()
    where = calls.volume(tmp_path / "vol")

    def interrupted(n: int) -> None:
        raise signals.Terminated(15)

    with pytest.raises(signals.Terminated):
        restore_direct.stage_all(storage, manifest, (LEDGER,), {"ledger": where}, None,
                                 interrupted)  # fmt: skip
    assert leftovers(tmp_path / "vol") == []
    assert calls.log == []


def test_the_swap_puts_the_stage_in_place_and_removes_the_previous_data(
    backup: tuple[LocalStorage, Manifest], tmp_path: Path
) -> None:
    calls, where, stage = staged_volume(backup, tmp_path)
    staged = describe(stage)

    def ready() -> str:
        calls.log.append("ready?")
        # Until the service is ready on the new data, the previous data is kept.
        assert [p.startswith("_data.monctl-previous-") for p in leftovers(tmp_path / "vol")] == [
            True
        ]
        return "running, ready"

    assert restore_direct.swap(where, stage, ready) == ("running, ready", None)
    assert calls.log == ["stop", "start", "ready?"]
    assert describe(where.data) == staged
    assert leftovers(tmp_path / "vol") == []


def test_the_previous_data_is_kept_when_the_service_is_not_ready_on_the_new(
    backup: tuple[LocalStorage, Manifest], tmp_path: Path
) -> None:
    _, where, stage = staged_volume(backup, tmp_path)
    not_ready = "running, not ready after 180 s (down: connection refused)"
    state, kept = restore_direct.swap(where, stage, lambda: not_ready)
    assert state == not_ready and kept is not None
    assert (kept / "live.txt").read_text() == "the live data"
    assert leftovers(tmp_path / "vol") == [kept.name]
    # The next restore of the volume removes it (the live data is whole).
    again = where.new_stage()
    assert leftovers(tmp_path / "vol") == [again.name]


def test_a_swap_that_fails_leaves_the_old_data_and_starts_the_service(tmp_path: Path) -> None:
    calls = Calls()
    where = calls.volume(tmp_path / "vol")
    gone = tmp_path / "vol" / "_data.monctl-restore-gone"  # a stage that vanished
    with pytest.raises(OperationFailed, match="could not swap"):
        restore_direct.swap(where, gone, lambda: "running, ready")  # never asked
    assert calls.log == ["stop", "start"]
    assert (where.data / "live.txt").read_text() == "the live data"
    assert leftovers(tmp_path / "vol") == []


def test_a_stop_the_engine_refuses_leaves_the_old_data_and_starts_the_service(
    tmp_path: Path,
) -> None:
    calls = Calls()
    where = calls.volume(tmp_path / "vol")
    stage = where.new_stage()

    def stop() -> None:
        calls.log.append("stop")
        raise OperationFailed("Docker refused to stop the container")

    with pytest.raises(OperationFailed, match="refused to stop"):
        restore_direct.swap(dataclasses.replace(where, stop=stop), stage, lambda: "never")
    assert calls.log == ["stop", "start"]
    assert (where.data / "live.txt").read_text() == "the live data"
    assert leftovers(tmp_path / "vol") == []


def test_a_signal_during_the_swap_is_held_until_the_service_runs_on_the_new_data(
    backup: tuple[LocalStorage, Manifest], tmp_path: Path
) -> None:
    calls, where, stage = staged_volume(backup, tmp_path)
    staged = describe(stage)

    def stop() -> None:
        calls.log.append("stop")
        os.kill(os.getpid(), signal.SIGTERM)  # between the stop and the renames

    previous = {s: signal.getsignal(s) for s in (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)}
    signals.install()
    try:
        with pytest.raises(signals.Terminated):
            restore_direct.swap(dataclasses.replace(where, stop=stop), stage,
                                lambda: calls.log.append("ready?") or "ready")  # fmt: skip
    finally:
        signals.reset()
        for signum, handler in previous.items():
            signal.signal(signum, handler)
    assert calls.log == ["stop", "start"]  # started again, then stopped: no wait
    assert describe(where.data) == staged, "not the new data, whole"
    assert leftovers(tmp_path / "vol") == [], "the previous data was left"
