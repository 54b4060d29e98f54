"""check_tar: what a restore may extract, and what it must refuse."""

from __future__ import annotations

import io
import tarfile
from collections.abc import Callable

import pytest
from support.backup_factory import add_dir, add_file, tar_bytes

from monctl.errors import IntegrityError
from monctl.repository.tar_safety import check_tar


def tar_with(*build: Callable[[tarfile.TarFile], None]) -> io.BytesIO:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w", format=tarfile.GNU_FORMAT) as tar:
        add_dir(tar, "grafana")
        add_file(tar, "grafana/grafana.db", b"SQLite format 3\0" + bytes(4096))
        for step in build:
            step(tar)
    buf.seek(0)
    return buf


def member(
    name: str, kind: bytes = tarfile.REGTYPE, link: str = ""
) -> Callable[[tarfile.TarFile], None]:
    def add(tar: tarfile.TarFile) -> None:
        info = tarfile.TarInfo(name)
        info.type, info.linkname = kind, link
        if kind == tarfile.REGTYPE:
            info.size = 3
            tar.addfile(info, io.BytesIO(b"abc"))
        else:
            tar.addfile(info)

    return add


def test_a_real_data_directory_passes_with_counts() -> None:
    raw = tar_bytes("prometheus", {"wal/1": b"a" * 10, "b/index": b"bb", "b/chunks/1": b"c"})
    check = check_tar(io.BytesIO(raw), "prometheus")
    assert (check.files, check.links, check.bytes) == (3, 1, 13)
    assert check.dirs == 4  # prometheus, wal, b, b/chunks
    assert check.members == check.files + check.dirs + check.links


def test_safe_links_inside_the_data_directory_pass() -> None:
    check = check_tar(
        tar_with(
            member("grafana/plugins/link", tarfile.SYMTYPE, "data/grafana.db"),
            member("grafana/hard", tarfile.LNKTYPE, "grafana/grafana.db"),
            member("./grafana/dot-prefixed"),
        ),
        "grafana",
    )
    assert check.links == 2 and check.files == 2


@pytest.mark.parametrize(
    ("build", "reason"),
    [
        (member("/etc/cron.d/evil"), "absolute path"),
        (member("grafana/../../etc/passwd"), "'..'"),
        (member("../outside"), "'..'"),
        (member("grafana/x", tarfile.SYMTYPE, "../../etc/shadow"), "links through '..'"),
        (member("grafana/x", tarfile.SYMTYPE, "/etc/shadow"), "absolute"),
        (member("grafana/sub/x", tarfile.SYMTYPE, "../../.."), "links through '..'"),
        (member("grafana/sub/x", tarfile.SYMTYPE, "../grafana.db"), "links through '..'"),
        (member("grafana/x", tarfile.LNKTYPE, "etc/passwd"), "links outside"),
        (member("grafana/x", tarfile.LNKTYPE, "/etc/passwd"), "absolute"),
        (member("grafana/null", tarfile.CHRTYPE), "device"),
        (member("grafana/sda", tarfile.BLKTYPE), "device"),
        (member("grafana/fifo", tarfile.FIFOTYPE), "special"),
        (member("prometheus/not-grafana"), "outside the data directory"),
    ],
)
def test_unsafe_members_are_refused_by_name(
    build: Callable[[tarfile.TarFile], None], reason: str
) -> None:
    with pytest.raises(IntegrityError) as err:
        check_tar(tar_with(build), "grafana")
    assert reason in err.value.message
    assert "archive member" in err.value.message  # names the member


def test_without_a_data_root_any_relative_path_is_allowed() -> None:
    assert check_tar(tar_with(member("elsewhere/file")), "").files == 2
    with pytest.raises(IntegrityError):
        check_tar(tar_with(member("x", tarfile.SYMTYPE, "../up")), "")


def test_truncated_plain_tar_is_refused() -> None:
    raw = tar_with(member("grafana/more")).getvalue()
    db_end = 512 + 512 + 4608  # two headers and the database's padded data
    # Mid-header, mid-data, exactly between members, and inside the end marker.
    for cut in (700, 1024 + 100, db_end, db_end + 512 + 512, len(raw) - 10240 + 4700):
        with pytest.raises(IntegrityError, match=r"truncated|malformed"):
            check_tar(io.BytesIO(raw[:cut]), "grafana")


def test_end_marker_rules() -> None:
    raw = tar_with(member("grafana/more")).getvalue()
    end = raw.rstrip(b"\0")
    body = len(end) + (-len(end)) % 512  # the members, padded to whole blocks
    # Go's archive/tar (Docker's archive API) ends with exactly two NUL blocks.
    assert check_tar(io.BytesIO(raw[:body] + bytes(1024)), "grafana").files == 2
    with pytest.raises(IntegrityError, match="end-of-archive"):
        check_tar(io.BytesIO(raw[:body] + bytes(512)), "grafana")
    damaged = raw[:body] + b"\x01" + raw[body + 1 :]  # a header that is not one
    with pytest.raises(IntegrityError):
        check_tar(io.BytesIO(damaged), "grafana")


def test_garbage_is_refused() -> None:
    with pytest.raises(IntegrityError):
        check_tar(io.BytesIO(b"\x01" * 5000), "grafana")


# -- links that climb in steps (each name harmless on its own) ----------------------------
def test_a_chain_of_symlinks_out_of_the_directory_is_refused() -> None:
    """b -> ., a -> b/.., c -> a/.. then a file under c/: each name alone stays inside."""
    chain = tar_with(
        member("grafana/b", tarfile.SYMTYPE, "."),
        member("grafana/a", tarfile.SYMTYPE, "b/.."),
        member("grafana/c", tarfile.SYMTYPE, "a/.."),
        member("grafana/c/escaped"),
    )
    with pytest.raises(IntegrityError, match=r"links through '\.\.'"):
        check_tar(chain, "grafana")


@pytest.mark.parametrize(
    "steps",
    [
        # the same chain in another order: the dangerous link comes first
        (("grafana/a", tarfile.SYMTYPE, "b/.."), ("grafana/b", tarfile.SYMTYPE, ".")),
        # a hard link through a chain of symlinks
        (
            ("grafana/b", tarfile.SYMTYPE, "."),
            ("grafana/up", tarfile.SYMTYPE, "b/../.."),
            ("grafana/stolen", tarfile.LNKTYPE, "grafana/up/etc/passwd"),
        ),
        # a symlink through .. written as "./.."
        (("grafana/x", tarfile.SYMTYPE, "./../../etc"),),
    ],
)
def test_every_order_and_kind_of_climbing_link_is_refused(
    steps: tuple[tuple[str, bytes, str], ...],
) -> None:
    with pytest.raises(IntegrityError, match=r"'\.\.'"):
        check_tar(tar_with(*(member(*s) for s in steps)), "grafana")


def test_links_that_only_descend_pass() -> None:
    check = check_tar(
        tar_with(
            member("grafana/self", tarfile.SYMTYPE, "."),
            member("grafana/sub/deeper", tarfile.SYMTYPE, "x/y"),
            member("grafana/same", tarfile.LNKTYPE, "grafana/grafana.db"),
        ),
        "grafana",
    )
    assert check.links == 3


def test_a_regular_file_named_dot_is_refused() -> None:
    with pytest.raises(IntegrityError, match="extraction directory itself"):
        check_tar(tar_with(member(".")), "grafana")
    with pytest.raises(IntegrityError, match="extraction directory itself"):
        check_tar(tar_with(member("./")), "")
