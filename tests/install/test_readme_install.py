"""The README's install block and the scheduling recipes of docs/drills-and-heartbeats.md,
run as written on a fresh Debian 12.

A debootstrap minbase root (bookworm) gets only the prerequisites the README names
(``python3``, ``python3-venv``, and ``ca-certificates`` to reach PyPI); then the README's
first ``bash`` block runs verbatim in a copy of this checkout, as root in /opt/monitoring
(where the recipes expect the stack) and as an ordinary user in their home. Each cron
line of the recipes then runs under cron's environment (``env -i PATH=/usr/bin:/bin``) as
the user it names, after the recipes' one-time set-up block: it must find monctl, write
its log, and (the basic recipe) reach the heartbeat URL of ``.env``. Each systemd unit of
the recipes passes ``systemd-analyze verify`` and starts the monctl the install made.

Everything is read from README.md and docs/drills-and-heartbeats.md, so a change there that
breaks a recipe fails here.
Skipped on a workstation without root or debootstrap; under CI=true it fails instead.
"""

from __future__ import annotations

import re
import shlex
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import require
from support.debian_root import REPO, DebianRoot, fresh_root, install_host_ca
from support.ping_server import RecordingServer

pytestmark = pytest.mark.binaries

README = (REPO / "README.md").read_text(encoding="utf-8")
# the cron and systemd recipes, and their one-time set-up (moved out of the README: issue 18)
RECIPES = (REPO / "docs" / "drills-and-heartbeats.md").read_text(encoding="utf-8")
STACK = "/opt/monitoring"
MONCTL = f"{STACK}/.venv/bin/monctl"  # where the README's install block puts monctl


def blocks(lang: str) -> list[str]:
    return re.findall(rf"^```{lang}\n(.*?)^```", RECIPES, flags=re.S | re.M)


def first_block() -> str:
    """The README's first code block: the install."""
    found = re.search(r"^```(\w*)\n(.*?)^```", README, flags=re.S | re.M)
    assert found is not None and found.group(1) == "bash", "the README starts with a bash block"
    block = found.group(2)
    # It runs as root in the fresh root with the host's /dev and /sys: never CI's set-up
    # (that would start a second Docker engine on this machine) nor the stack.
    for word in (".ci/run", "monctl up", "dockerd"):
        assert word not in block, f"the README's first block is the install only, not {word}"
    return block


def setup_block() -> str:
    """The one-time set-up of the scheduled jobs (user, docker group, log directory)."""
    found = [b for b in blocks("sh") if b.startswith("# once, as root")]
    assert len(found) == 1, "the recipes have one '# once, as root' set-up block"
    return found[0]


def cron_lines() -> list[tuple[str, str]]:
    """(user, command) of every line of the cron recipes."""
    lines = []
    for block in blocks("cron"):
        for line in block.splitlines():
            if line.strip() and not line.lstrip().startswith("#"):
                fields = line.split(None, 6)
                assert len(fields) == 7, f"not a /etc/cron.d line: {line}"
                lines.append((fields[5], fields[6]))
    assert lines, "docs/drills-and-heartbeats.md has cron recipes"
    return lines


def units() -> dict[str, str]:
    """/etc/systemd/system/NAME -> text, for every unit of the recipes."""
    found = {}
    for block in blocks("ini"):
        head = block.splitlines()[0]
        if head.startswith("# /etc/systemd/system/"):
            found[head[2:]] = block
    assert any(name.endswith(".service") for name in found), (
        "docs/drills-and-heartbeats.md has systemd units"
    )
    return found


@pytest.fixture(scope="module")
def debian() -> Iterator[DebianRoot]:
    """A fresh Debian 12 with the README's prerequisites, and this checkout in /opt/monitoring."""
    with fresh_root() as root:
        root.run(
            "apt-get update -q && DEBIAN_FRONTEND=noninteractive apt-get install -y -q "
            "--no-install-recommends python3 python3-venv ca-certificates </dev/null",
            timeout=1200,
        )
        install_host_ca(root)
        root.copy_checkout(STACK)
        yield root


@pytest.fixture(scope="module")
def installed(debian: DebianRoot) -> DebianRoot:
    """The README's first block, run verbatim as root in /opt/monitoring."""
    debian.run(f"cd {STACK} && set -e\n{first_block()}", timeout=1200)
    return debian


def test_first_block_installs_monctl_as_root(installed: DebianRoot) -> None:
    # PEP 668: the fresh Debian refuses a system-wide `pip install .` (the old first line)
    refused = installed.run(f"cd {STACK} && python3 -m pip install . || pip install .", check=False)
    assert refused.returncode != 0
    done = installed.run(f"{MONCTL} --version")
    assert re.fullmatch(r"monctl, version \S+\n", done.stdout), done.stdout


def test_first_block_installs_monctl_as_a_user(debian: DebianRoot) -> None:
    debian.run("useradd --create-home --shell /bin/sh alice")
    debian.copy_checkout("/home/alice/monitoring")
    debian.run("chown -R alice: /home/alice")
    debian.run(f"cd ~/monitoring && set -e\n{first_block()}", user="alice", timeout=1200)
    done = debian.run("~/monitoring/.venv/bin/monctl --version", user="alice")
    assert done.stdout.startswith("monctl, version ")


def test_each_cron_line_runs_under_crons_environment(installed: DebianRoot) -> None:
    # What installing Docker's package does: the docker group exists.
    installed.run("getent group docker || groupadd --system docker")
    installed.run(f"set -e\n{setup_block()}")
    assert "docker" in installed.run("id -nG monitoring").stdout.split()
    with RecordingServer() as heartbeat:
        installed.write(
            f"{STACK}/.env",
            f"MONCTL_BACKUP_PING_URL={heartbeat.url}/ping/nightly\n"
            f"MONCTL_RESTORE_PING_URL={heartbeat.url}/ping/drill\n",
            0o600,
        )
        installed.run(f"chown monitoring: {STACK}/.env")
        for user, command in cron_lines():
            logs = re.findall(r">>\s*(\S+)", command)
            assert logs, f"a cron line keeps its output in a log file: {command}"
            home = installed.run(f"getent passwd {user} | cut -d: -f6").stdout.strip()
            cron_env = f"env -i PATH=/usr/bin:/bin HOME={home} LOGNAME={user} SHELL=/bin/sh"
            done = installed.run(f"{cron_env} sh -c {shlex.quote(command)}", user=user, check=False)
            # No engine in this root: monctl runs, and fails as it says (not 127, not 126).
            assert done.returncode not in (126, 127), (command, done.stderr)
            log = installed.path / logs[0].lstrip("/")
            text = log.read_text(encoding="utf-8")
            assert "error: " in text and "not found" not in text, text
            owner = installed.run(f"stat -c %U {logs[0]}").stdout.strip()
            assert owner == user
    # The basic recipe's heartbeat reached the service outside: a start, then a failure.
    assert "/ping/nightly/start" in heartbeat.paths()
    assert "/ping/nightly/fail" in heartbeat.paths()


def test_each_systemd_unit_verifies_and_starts_the_installed_monctl(
    installed: DebianRoot, tmp_path: Path
) -> None:
    import shutil

    analyze = shutil.which("systemd-analyze")
    require(analyze is not None, "systemd-analyze is not installed (Debian's systemd package)")
    found = units()
    for name, text in found.items():
        if name.endswith(".service"):
            exec_start = re.search(r"^ExecStart=(\S+)", text, flags=re.M)
            assert exec_start is not None and exec_start.group(1) == MONCTL, name
        (tmp_path / Path(name).name).write_text(text, encoding="utf-8")
    # The units are verified with the install's /opt/monitoring in place of this host's
    # (a private mount namespace: the host's /opt is not touched), so verify checks that
    # ExecStart names an executable that the install made.
    paths = " ".join(shlex.quote(str(tmp_path / Path(n).name)) for n in found)
    script = (
        f"mount -t tmpfs tmpfs /opt && mkdir /opt/monitoring && "
        f"mount --bind {installed.path}/opt/monitoring /opt/monitoring && "
        f"{analyze} verify {paths}"
    )
    done = subprocess.run(
        ["unshare", "--mount", "--propagation", "private", "sh", "-c", script],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    # And without the install, verify would have refused them (the check is real).
    bare = subprocess.run(
        [analyze, "verify", *(str(tmp_path / Path(n).name) for n in found)],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert bare.returncode != 0 and "not executable" in bare.stderr
