"""A fresh Debian 12 root file system (debootstrap minbase), for the tests that run
the README's install and scheduling recipes as an operator would on a new machine.

The debootstrap result is cached as a tarball under $MONCTL_TEST_CACHE (default
/var/cache/monctl-test, as tests/images/build.sh caches its own), keyed by suite and
variant; each test unpacks a fresh copy. Commands run in it with ``chroot`` inside a
private mount namespace (``unshare --mount``), so the /proc, /dev and /sys mounts
vanish with the command whatever happens. Needs root, debootstrap, zstd, unshare.

The only things taken from this machine are how it reaches the package registries:
the Debian mirror apt uses (as build.sh does), and pip's configuration and CA bundle
(a machine behind an inspecting proxy needs them; a fresh machine elsewhere does not).
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from support import require

SUITE = "bookworm"
CACHE = Path(os.environ.get("MONCTL_TEST_CACHE", "/var/cache/monctl-test"))
REPO = Path(__file__).resolve().parents[2]
# pip settings of this machine passed on (how it reaches PyPI); the wheel directory
# of the host (PIP_FIND_LINKS) is not: the fresh machine has none.
_PIP_ENV = ("PIP_DEFAULT_TIMEOUT", "PIP_INDEX_URL", "PIP_EXTRA_INDEX_URL", "PIP_CERT")
_PROXY_ENV = ("http_proxy", "https_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "NO_PROXY")


def require_prerequisites() -> None:
    require(os.geteuid() == 0, "a Debian root file system needs root (debootstrap, chroot)")
    for tool in ("debootstrap", "zstd", "unshare", "chroot", "tar"):
        require(shutil.which(tool) is not None, f"{tool} is not installed (see .ci/run)")


def _mirror() -> str:
    """The Debian mirror this machine's apt uses (tests/images/build.sh's debian_mirror)."""
    if os.environ.get("MONCTL_TEST_MIRROR"):
        return os.environ["MONCTL_TEST_MIRROR"]
    script = REPO / "tests" / "images" / "build.sh"
    text = script.read_text(encoding="utf-8")
    start = text.index("python3 - \"$SUITE\" <<'EOF'\n") + len("python3 - \"$SUITE\" <<'EOF'\n")
    body = text[start : text.index("\nEOF\n", start)]
    out = subprocess.run(
        ["python3", "-", SUITE], input=body, capture_output=True, text=True, check=True
    )
    return out.stdout.strip()


def cached_tarball() -> Path:
    """The minbase root of ``SUITE`` as a tarball, made once (flocked) and kept."""
    CACHE.mkdir(parents=True, exist_ok=True)
    tarball = CACHE / f"fresh-root-{SUITE}-minbase.tar.zst"
    with open(CACHE / "fresh-root.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        if tarball.is_file() and tarball.stat().st_size > 0:
            return tarball
        with tempfile.TemporaryDirectory(prefix="monctl-debootstrap-") as work:
            root = Path(work) / "root"
            done = subprocess.run(
                ["debootstrap", "--variant=minbase", SUITE, str(root), _mirror()],
                capture_output=True,
                text=True,
                timeout=1800,
            )
            if done.returncode != 0:
                pytest.fail(f"debootstrap failed:\n{done.stdout[-3000:]}\n{done.stderr[-3000:]}")
            # the packages debootstrap fetched are not part of a fresh machine's files
            for deb in (root / "var" / "cache" / "apt" / "archives").glob("*.deb"):
                deb.unlink()
            tmp = tarball.with_suffix(".tmp")
            subprocess.run(
                ["sh", "-c", 'tar --numeric-owner -C "$0" -c . | zstd -q -3 -o "$1"', root, tmp],
                check=True,
            )
            tmp.rename(tarball)
    return tarball


class DebianRoot:
    """A fresh, unpacked root file system; ``run`` executes a shell script inside it."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def run(
        self,
        script: str,
        *,
        user: str = "root",
        env: dict[str, str] | None = None,
        check: bool = True,
        timeout: float = 900,
    ) -> subprocess.CompletedProcess[str]:
        """Run ``script`` with sh as ``user`` (a login-like environment: HOME, USER,
        PATH of a Debian login shell) unless ``env`` gives the whole environment."""
        if env is None:
            home = "/root" if user == "root" else f"/home/{user}"
            path = "/usr/local/sbin:/usr/local/sbin:/usr/sbin:/usr/bin:/sbin:/bin"
            if user != "root":
                path = "/usr/local/bin:/usr/bin:/bin"
            env = {"HOME": home, "USER": user, "LOGNAME": user, "PATH": path, "LANG": "C.UTF-8"}
            env.update({k: v for k in (*_PIP_ENV, *_PROXY_ENV) if (v := os.environ.get(k))})
        # the host's tools by their paths: PATH below is the one inside the root
        mount, chroot = shutil.which("mount"), shutil.which("chroot")
        mounts = (
            f"{mount} -t proc proc {self.path}/proc && "
            f"{mount} --rbind /dev {self.path}/dev && {mount} --rbind /sys {self.path}/sys && "
            f'exec {chroot} --userspec={user}:{user} {self.path} /bin/sh -c "$0"'
        )
        done = subprocess.run(
            [
                str(shutil.which("unshare")),
                "--mount",
                "--propagation",
                "private",
                "sh",
                "-c",
                mounts,
                script,
            ],
            env=env,
            capture_output=True,
            text=True,
            timeout=timeout,
            stdin=subprocess.DEVNULL,
        )
        if check and done.returncode != 0:
            pytest.fail(
                f"in the Debian root as {user}, exit {done.returncode}:\n{script}\n"
                f"--- stdout\n{done.stdout[-4000:]}\n--- stderr\n{done.stderr[-4000:]}"
            )
        return done

    def write(self, path: str, text: str, mode: int = 0o644) -> None:
        target = self.path / path.lstrip("/")
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(text, encoding="utf-8")
        target.chmod(mode)

    def copy_checkout(self, dest: str) -> None:
        """The files git tracks in this checkout (as a fresh clone has them), at ``dest``."""
        target = self.path / dest.lstrip("/")
        target.mkdir(parents=True, exist_ok=True)
        files = subprocess.run(
            [
                "git",
                "-C",
                str(REPO),
                "ls-files",
                "-z",
                "--cached",
                "--others",
                "--exclude-standard",
            ],
            capture_output=True,
            check=True,
        ).stdout
        tar = subprocess.Popen(
            ["tar", "-C", str(REPO), "--null", "--ignore-failed-read", "-T", "-", "-c"],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
        )
        untar = subprocess.Popen(["tar", "-C", str(target), "-x"], stdin=tar.stdout)
        assert tar.stdin is not None and tar.stdout is not None
        tar.stdin.write(files)
        tar.stdin.close()
        tar.stdout.close()
        assert untar.wait() == 0 and tar.wait() == 0


def prepare_network(root: DebianRoot) -> None:
    """How this machine reaches the registries, given to the root: name resolution,
    and pip's configuration and CA bundle where this machine has them."""
    shutil.copy2("/etc/resolv.conf", root.path / "etc" / "resolv.conf")
    for conf in ("/etc/pip.conf",):
        if os.path.isfile(conf):
            shutil.copy2(conf, root.path / conf.lstrip("/"))


def install_host_ca(root: DebianRoot) -> None:
    """After ca-certificates is installed in the root: this machine's CA bundle (a
    superset of Debian's where an inspecting proxy adds its own CA)."""
    bundle = Path("/etc/ssl/certs/ca-certificates.crt")
    if bundle.is_file():
        shutil.copy2(bundle, root.path / "etc" / "ssl" / "certs" / "ca-certificates.crt")


@contextmanager
def fresh_root() -> Iterator[DebianRoot]:
    """A fresh Debian 12 minbase root, removed afterwards."""
    require_prerequisites()
    tarball = cached_tarball()
    base = Path(tempfile.mkdtemp(prefix="monctl-fresh-root-", dir=os.environ.get("TMPDIR")))
    try:
        subprocess.run(
            ["sh", "-c", 'zstd -q -dc "$0" | tar --numeric-owner -C "$1" -x', tarball, base],
            check=True,
        )
        root = DebianRoot(base)
        prepare_network(root)
        yield root
    finally:
        subprocess.run(["rm", "-rf", "--one-file-system", str(base)], check=False)
