"""`monctl backup export` through the real CLI, on repositories made by the real backup
pipeline (format 2, plain and encrypted) and by ``backup_factory`` (format 1).

The live data is a real directory tree (files of several modes and owners, symlinks,
hard links, empty files and directories, long and non-ASCII names); the engine's
archive API that reads it is the only stand-in (``TreeRuntime``, the outer edge: it
tars the directory as Docker does). Every export is extracted by the system's GNU
tar as root (``--numeric-owner --same-owner -p``) and compared with that tree.
"""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import io
import json
import os
import stat
import subprocess
import sys
import tarfile
from pathlib import Path
from typing import Any

import pytest
import zstandard
from support import repo
from support.age_keys import write_identity
from support.backup_factory import make_backup
from support.small_disk import small_disk
from support.tree_runtime import TreeRuntime

from monctl.adapters.storage.local import LocalStorage
from monctl.backup import create
from monctl.errors import ExitCode
from monctl.project import Project
from monctl.repository.manifest import read_manifest
from monctl.repository.objects import object_key

ROOT = os.geteuid() == 0
needs_root = pytest.mark.skipif(not ROOT, reason="owners can be set and kept by root only")

# Stand-ins under the names of two declared services (the CLI checks --service
# against the declarations): a database read whole, and files written once.
GRAFANA = dataclasses.replace(
    repo.LEDGER,
    name="grafana",
    data=dataclasses.replace(repo.LEDGER.data, path="/var/lib/grafana"),  # type: ignore[arg-type]
)
LOKI = dataclasses.replace(
    repo.LEDGER,
    name="loki",
    data=dataclasses.replace(repo.LEDGER.data, path="/loki"),  # type: ignore[arg-type]
)
LONG = "deep/" + "/".join(["a-rather-long-directory-name-of-forty-chars"] * 4) + "/file.txt"


def live_tree(root: Path, seed: int) -> Path:
    """A data directory with everything a volume may hold."""
    root.mkdir(parents=True)
    files = {
        "grafana.db": os.urandom(3 * 1024 * 1024 + 17),  # an object of its own
        "small.txt": b"small %d\n" % seed,
        "empty": b"",
        "plugins/p1/plugin.json": b'{"id": "p1"}',
        "journal/0001": os.urandom(70_000),
        "café/naïve ünïcode.txt": b"non-ASCII names",
        LONG: b"a name longer than ustar's 100 bytes",
    }
    for name, data in files.items():
        path = root / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_bytes(data)
    (root / "small.txt").chmod(0o600)
    (root / "plugins/p1/plugin.json").chmod(0o640)
    (root / "journal/0001").chmod(0o444)
    (root / "empty-dir").mkdir(mode=0o700)
    (root / "empty-dir").chmod(0o700)
    (root / "current").symlink_to("journal/0001")
    (root / "dangling").symlink_to("nowhere/at/all")
    os.link(root / "journal/0001", root / "journal/0001.hardlink")
    if ROOT:
        os.chown(root / "small.txt", 472, 472)
        os.chown(root / "plugins", 1234, 5678)
        os.lchown(root / "current", 472, 0)
        for path in root.rglob("*"):
            if path.name != "small.txt" and path.parts[-1] != "plugins" and not path.is_symlink():
                os.chown(path, 10001, 10001)
    os.utime(root / "small.txt", (1_700_000_000, 1_700_000_000))
    os.utime(root / "empty-dir", (1_600_000_000, 1_600_000_000))
    return root


def describe(root: Path) -> dict[str, tuple[Any, ...]]:
    """Everything a restore must give back, per path below ``root``: type, mode, owner,
    mtime, content (sha256) or link target, and which names are one file (hard links)."""
    found: dict[str, tuple[Any, ...]] = {}
    inodes: dict[int, str] = {}
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root).as_posix()
        st = path.lstat()
        kind = stat.S_IFMT(st.st_mode)
        what: Any = None
        if stat.S_ISREG(st.st_mode):
            what = hashlib.sha256(path.read_bytes()).hexdigest()
            first = inodes.setdefault(st.st_ino, rel)
            if first != rel:
                what = ("same file as", first)
        elif stat.S_ISLNK(st.st_mode):
            what = os.readlink(path)
        found[rel] = (kind, stat.S_IMODE(st.st_mode), st.st_uid, st.st_gid, int(st.st_mtime), what)
    return found


def untar(archive: Path | bytes, into: Path, *extra: str) -> None:
    into.mkdir(parents=True, exist_ok=True)
    args = ["tar", "-x", "--numeric-owner", "--same-owner", "-p", "-C", str(into), *extra]
    if isinstance(archive, bytes):
        done = subprocess.run([*args, "-f", "-"], input=archive, capture_output=True)
    else:
        done = subprocess.run([*args, "-f", str(archive)], capture_output=True)
    assert done.returncode == 0, done.stderr.decode()


def monctl(
    proj: Project, *args: str, cwd: Path | None = None
) -> subprocess.CompletedProcess[bytes]:
    return subprocess.run(
        [sys.executable, "-m", "monctl", "--project-dir", str(proj.root), *args],
        capture_output=True,
        cwd=cwd or proj.root,
        timeout=300,
        env={**os.environ, "NO_COLOR": "1"},
    )


@pytest.fixture
def trees(tmp_path: Path) -> dict[str, Path]:
    return {
        "grafana": live_tree(tmp_path / "live" / "grafana", 1),
        "loki": live_tree(tmp_path / "live" / "loki", 2),
    }


@pytest.fixture
def proj(tmp_path: Path) -> Project:
    return repo.project(tmp_path / "stack")


@pytest.fixture
def storage(tmp_path: Path) -> LocalStorage:
    return LocalStorage(tmp_path / "repo")


def back_up(proj: Project, trees: dict[str, Path], storage: LocalStorage, **kw: Any) -> str:
    report = create.run(proj, TreeRuntime(trees), storage, (GRAFANA, LOKI), **kw)
    assert report.error is None, report.error
    return report.backup_id


def assert_same(exported: Path, live: Path) -> None:
    got, want = describe(exported), describe(live)
    assert got == want
    assert len(want) > 15 and want["empty-dir"][4] == 1_600_000_000  # the tree is all there


@needs_root
@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
def test_an_export_extracted_by_tar_gives_back_the_live_data_exactly(
    proj: Project, trees: dict[str, Path], storage: LocalStorage, tmp_path: Path, encrypted: bool
) -> None:
    kw: dict[str, Any] = {}
    key: tuple[str, ...] = ()
    if encrypted:
        kw["recipients"] = (write_identity(tmp_path / "backup.key"),)
        key = ("--identity", str(tmp_path / "backup.key"))
    backup_id = back_up(proj, trees, storage, **kw)
    out = tmp_path / "export.tar"

    done = monctl(proj, "backup", "export", backup_id, "--from", str(storage.root),
                  "--output", str(out), "--json", *key)  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    doc = json.loads(done.stdout)
    assert doc["ok"] is True and doc["output"] == str(out) and doc["id"] == backup_id
    assert doc["bytes"] == out.stat().st_size == doc["tar_bytes"]
    regular = sum(
        1 for t in trees.values() for p in t.rglob("*") if p.is_file() and not p.is_symlink()
    )
    # A hard link is a second name of a file, not a file of its own.
    assert doc["files"] == regular - 2
    assert [s["service"] for s in doc["services"]] == ["grafana", "loki"]
    assert {s["hardlinks"] for s in doc["services"]} == {1}
    assert stat.S_IMODE(out.stat().st_mode) == 0o600  # it holds the plaintext
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".part")]

    with tarfile.open(out) as tar:  # POSIX: ustar headers (pax where needed)
        first = tar.next()
        assert first is not None and first.name == "grafana" and first.isdir()
        assert any(m.name == f"grafana/{LONG}" for m in tar.getmembers())
    raw = out.read_bytes()
    assert raw[257:265] == b"ustar\x0000"  # POSIX ustar magic and version, not GNU's

    untar(out, tmp_path / "x")
    assert sorted(p.name for p in (tmp_path / "x").iterdir()) == ["grafana", "loki"]
    for name, live in trees.items():
        assert_same(tmp_path / "x" / name, live)


@needs_root
def test_the_readme_recovery_path_fills_a_data_directory_from_the_export(
    proj: Project, trees: dict[str, Path], storage: LocalStorage, tmp_path: Path
) -> None:
    """As docs/backup-and-restore.md shows it: export one service, `tar -x` it into
    the (empty) volume's directory with the top directory stripped."""
    backup_id = back_up(proj, trees, storage)
    out = tmp_path / "grafana.tar"
    done = monctl(proj, "backup", "export", "latest", "--from", str(storage.root),
                  "--service", "grafana", "-o", str(out))  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert f"backup {backup_id} exported to {out}" in done.stdout.decode()
    with tarfile.open(out) as tar:
        assert {m.name.split("/")[0] for m in tar.getmembers()} == {"grafana"}
    volume = tmp_path / "volume" / "_data"
    untar(out, volume, "--strip-components=1", "grafana")
    assert_same(volume, trees["grafana"])


@needs_root
@pytest.mark.parametrize("suffix", [".tar.zst", ".tar.gz"])
def test_an_output_named_zst_or_gz_is_compressed(
    proj: Project, trees: dict[str, Path], storage: LocalStorage, tmp_path: Path, suffix: str
) -> None:
    back_up(proj, trees, storage)
    out = tmp_path / f"export{suffix}"
    done = monctl(proj, "backup", "export", "latest", "--from", str(storage.root),
                  "-o", str(out), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    doc = json.loads(done.stdout)
    packed = out.read_bytes()
    if suffix == ".tar.zst":
        assert doc["compression"] == "zstd"
        plain = zstandard.ZstdDecompressor().stream_reader(packed).read()
        tool = ["zstd", "-d", "-c", str(out)]
    else:
        assert doc["compression"] == "gzip"
        plain = gzip.decompress(packed)
        tool = ["gzip", "-d", "-c", str(out)]
    assert doc["bytes"] == len(packed) < doc["tar_bytes"] == len(plain)
    assert subprocess.run(tool, capture_output=True, check=True).stdout == plain
    untar(plain, tmp_path / "x")
    assert_same(tmp_path / "x" / "loki", trees["loki"])


@needs_root
def test_dash_writes_the_tar_to_stdout_and_the_summary_to_stderr(
    proj: Project, trees: dict[str, Path], storage: LocalStorage, tmp_path: Path
) -> None:
    backup_id = back_up(proj, trees, storage)
    done = monctl(proj, "backup", "export", backup_id, "--from", str(storage.root),
                  "--service", "loki", "--output", "-")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    assert f"backup {backup_id} exported to stdout" in done.stderr.decode()
    untar(done.stdout, tmp_path / "x")
    assert [p.name for p in (tmp_path / "x").iterdir()] == ["loki"]
    assert_same(tmp_path / "x" / "loki", trees["loki"])
    # --json would share stdout with the tar: refused before anything is read.
    both = monctl(proj, "backup", "export", backup_id, "--from", str(storage.root),
                  "-o", "-", "--json")  # fmt: skip
    assert both.returncode == ExitCode.USAGE and json.loads(both.stdout)["ok"] is False


def damage(storage: LocalStorage, backup_id: str, service: str, path: str) -> None:
    """Flip a byte in the middle of the object that holds ``path`` (its size unchanged)."""
    entry = next(
        e for e in read_manifest(storage, backup_id).files(service).files if e.path == path
    )
    blob = entry.blob or read_manifest(storage, backup_id).files(service).pack
    assert blob is not None
    target = storage.root / object_key(blob.ref.id)
    data = bytearray(target.read_bytes())
    data[len(data) // 2] ^= 0xFF
    target.chmod(0o644)
    target.write_bytes(bytes(data))


@pytest.mark.parametrize("encrypted", [False, True], ids=["plain", "encrypted"])
@pytest.mark.parametrize("path", ["grafana.db", "small.txt"], ids=["object", "pack"])
def test_a_damaged_object_exits_10_and_leaves_no_output_file(
    proj: Project,
    trees: dict[str, Path],
    storage: LocalStorage,
    tmp_path: Path,
    encrypted: bool,
    path: str,
) -> None:
    kw: dict[str, Any] = {}
    key: tuple[str, ...] = ()
    if encrypted:
        kw["recipients"] = (write_identity(tmp_path / "backup.key"),)
        key = ("--identity", str(tmp_path / "backup.key"))
    backup_id = back_up(proj, trees, storage, **kw)
    damage(storage, backup_id, "loki", path)
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    out = out_dir / "export.tar.zst"

    done = monctl(proj, "backup", "export", backup_id, "--from", str(storage.root),
                  "-o", str(out), "--json", *key)  # fmt: skip
    assert done.returncode == ExitCode.INTEGRITY, done.stderr.decode()
    doc = json.loads(done.stdout)
    assert doc["ok"] is False and doc["error"]["message"].startswith("loki: ")
    assert list(out_dir.iterdir()) == []  # neither the file nor its temporary name

    # To stdout: the stream is cut before the damaged file's last bytes; tar says so.
    piped = monctl(proj, "backup", "export", backup_id, "--from", str(storage.root),
                   "-o", "-", *key)  # fmt: skip
    assert piped.returncode == ExitCode.INTEGRITY
    assert "Traceback" not in piped.stderr.decode()
    assert piped.stdout.startswith(b"grafana/")  # what passed its checks, then cut
    for args in (["-t"], ["-x", "-C", str(tmp_path / "cut")]):
        (tmp_path / "cut").mkdir(exist_ok=True)
        listed = subprocess.run(["tar", *args, "-f", "-"], input=piped.stdout, capture_output=True)
        assert listed.returncode == 2, listed  # tar fails on it, not only monctl's exit code
    if path == "grafana.db" and not encrypted:  # checked at its end: not its last bytes
        assert (tmp_path / "cut/loki/grafana.db").stat().st_size < (
            trees["loki"] / path
        ).stat().st_size
    # Grafana, intact, is exported alone.
    alone = monctl(proj, "backup", "export", backup_id, "--from", str(storage.root),
                   "--service", "grafana", "-o", str(out), *key)  # fmt: skip
    assert alone.returncode == 0, alone.stderr.decode()


def test_a_missing_object_is_found_before_any_output_is_opened(
    proj: Project, trees: dict[str, Path], storage: LocalStorage, tmp_path: Path
) -> None:
    backup_id = back_up(proj, trees, storage)
    blob = read_manifest(storage, backup_id).files("grafana").pack
    assert blob is not None
    (storage.root / object_key(blob.ref.id)).unlink()
    out = tmp_path / "export.tar"
    done = monctl(proj, "backup", "export", backup_id, "--from", str(storage.root), "-o", str(out))
    assert done.returncode == ExitCode.INTEGRITY
    assert "is missing" in done.stderr.decode() and "nothing was exported" in done.stderr.decode()
    assert not out.exists()
    # No lease is left behind: prune may delete it once the export is over.
    assert not [p for p in (storage.root / backup_id).iterdir() if p.name.startswith(".lease-")]


def test_an_encrypted_backup_without_its_key_exits_10_and_writes_nothing(
    proj: Project, trees: dict[str, Path], storage: LocalStorage, tmp_path: Path
) -> None:
    backup_id = back_up(proj, trees, storage, recipients=(write_identity(tmp_path / "k"),))
    write_identity(tmp_path / "other")
    out = tmp_path / "export.tar"
    for extra, says in (
        ((), "no identity was given"),
        (("--identity", str(tmp_path / "other")), "matches none"),
    ):
        done = monctl(proj, "backup", "export", backup_id, "--from", str(storage.root),
                      "-o", str(out), *extra)  # fmt: skip
        assert done.returncode == ExitCode.INTEGRITY and says in done.stderr.decode()
        assert not out.exists()


def test_a_format_1_backup_exports_its_archives_checked(tmp_path: Path) -> None:
    proj = repo.project(tmp_path / "stack")
    storage = LocalStorage(tmp_path / "repo")
    make_backup(storage, "20261101T020000Z", ("prometheus", "grafana"))
    newest = make_backup(storage, "20261102T020000Z", ("prometheus", "grafana"))
    out = tmp_path / "flat.tar"
    done = monctl(proj, "backup", "export", "latest", "--from", str(storage.root),
                  "-o", str(out), "--json")  # fmt: skip
    assert done.returncode == 0, done.stderr.decode()
    doc = json.loads(done.stdout)
    assert doc["id"] == newest.backup_id and doc["files"] == 8
    untar(out, tmp_path / "x")
    with tarfile.open(
        fileobj=io.BytesIO(_archive_tar(storage, newest.backup_id, "grafana"))
    ) as src:
        for member in src.getmembers():
            got = tmp_path / "x" / member.name
            if member.isfile():
                assert got.read_bytes() == src.extractfile(member).read()  # type: ignore[union-attr]
            elif member.issym():
                assert os.readlink(got) == member.linkname
    # Without --output: monctl-ID.tar in the current directory; -q: nothing on stdout.
    default = monctl(proj, "backup", "export", "latest", "--from", str(storage.root), "-q")
    assert default.returncode == 0 and default.stdout == b"", default.stderr.decode()
    assert (proj.root / f"monctl-{newest.backup_id}.tar").read_bytes() == out.read_bytes()
    # A damaged archive: exit 10, no file.
    key = storage.root / newest.key_of("grafana")
    data = bytearray(key.read_bytes())
    data[len(data) // 2] ^= 0xFF
    key.write_bytes(bytes(data))
    out.unlink()
    done = monctl(
        proj, "backup", "export", newest.backup_id, "--from", str(storage.root), "-o", str(out)
    )
    assert done.returncode == ExitCode.INTEGRITY, done.stderr.decode()
    assert not out.exists() and not list(tmp_path.glob(".flat.tar.*"))


def _archive_tar(storage: LocalStorage, backup_id: str, service: str) -> bytes:
    manifest = read_manifest(storage, backup_id)
    raw = (storage.root / manifest.key_of(service)).read_bytes()
    return zstandard.ZstdDecompressor().stream_reader(raw).read()


def test_usage_errors_name_the_problem(
    proj: Project, storage: LocalStorage, tmp_path: Path
) -> None:
    make_backup(storage, "20261102T020000Z", ("grafana",))
    for args, says in (
        (("not-an-id",), "is not a backup id"),
        (("20261102T020000Z", "-o", str(tmp_path)), "names a directory"),
        (("20261102T020000Z", "--service", "nginx"), "is not one of"),
    ):
        done = monctl(proj, "backup", "export", *args, "--from", str(storage.root))
        assert done.returncode == ExitCode.USAGE and says in done.stderr.decode(), done.stderr
    missing = monctl(proj, "backup", "export", "20261102T020000Z", "--from", str(storage.root),
                     "--service", "loki")  # fmt: skip
    assert (
        missing.returncode == ExitCode.STORAGE
        and "holds no archive for loki" in missing.stderr.decode()
    )
    none = monctl(proj, "backup", "export", "20250101T000000Z", "--from", str(storage.root))
    assert none.returncode == ExitCode.STORAGE


def test_an_unwritable_output_is_a_storage_error(
    proj: Project, trees: dict[str, Path], storage: LocalStorage, tmp_path: Path
) -> None:
    """The output cannot be made: exit 8 (the destination's code), not a traceback."""
    back_up(proj, trees, storage)
    done = monctl(proj, "backup", "export", "latest", "--from", str(storage.root),
                  "-o", str(tmp_path / "no" / "such" / "dir.tar"))  # fmt: skip
    assert done.returncode == ExitCode.STORAGE and "cannot create" in done.stderr.decode()


def test_a_backup_being_exported_is_leased_so_prune_keeps_it(tmp_path: Path) -> None:
    """The export holds the lease verify holds: a prune meanwhile (here while the
    export waits for its reader) keeps the backup; once it is over, prune deletes it."""
    proj = repo.project(tmp_path / "stack")
    storage = LocalStorage(tmp_path / "repo")
    make_backup(storage, "20261101T020000Z", ("prometheus", "grafana"))
    make_backup(storage, "20261102T020000Z", ("prometheus",))
    prune = ("backup", "prune", "--keep-last", "1", "--from", str(storage.root), "--json")
    old = storage.root / "20261101T020000Z"
    export = subprocess.Popen(
        [sys.executable, "-m", "monctl", "--project-dir", str(proj.root), "backup", "export",
         old.name, "--from", str(storage.root), "-o", "-"],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=proj.root,
    )  # fmt: skip
    try:
        assert export.stdout is not None
        head = export.stdout.read(4096)  # it is running; the rest waits in the pipe
        assert head.startswith(b"prometheus/")
        leases = [p for p in old.iterdir() if p.name.startswith(".lease-")]
        assert len(leases) == 1 and json.loads(leases[0].read_text())["operation"] == "export"
        during = monctl(proj, *prune)
        assert during.returncode == 0, during.stderr.decode()
        assert (old / "manifest.json").exists(), "pruned while it was exported"
        rest = export.stdout.read()
    finally:
        if export.poll() is None:
            export.kill()
        export.wait(timeout=60)
    assert export.returncode == 0, export.stderr.read().decode() if export.stderr else ""
    with tarfile.open(fileobj=io.BytesIO(head + rest)) as tar:
        assert {m.name.split("/")[0] for m in tar.getmembers()} == {"prometheus", "grafana"}
    assert not [p for p in old.iterdir() if p.name.startswith(".lease-")]
    after = monctl(proj, *prune)
    assert after.returncode == 0 and not (old / "manifest.json").exists()


@needs_root
def test_a_full_disk_is_exit_8_and_leaves_no_partial_file(
    proj: Project, trees: dict[str, Path], storage: LocalStorage, tmp_path: Path
) -> None:
    with small_disk(tmp_path / "full", 1 << 20) as full:
        back_up(proj, trees, storage)
        done = monctl(proj, "backup", "export", "latest", "--from", str(storage.root),
                      "-o", str(full / "export.tar"), "--json")  # fmt: skip
        assert done.returncode == ExitCode.STORAGE, done.stderr.decode()
        doc = json.loads(done.stdout)
        assert "no space left on device" in doc["error"]["message"].lower()
        assert "free space" in doc["error"]["hint"]
        assert list(full.iterdir()) == []
