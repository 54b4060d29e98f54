"""A real OpenSSH server on 127.0.0.1 for ``DOCKER_HOST=ssh://...`` tests.

Debian's ``sshd`` runs on a free port with a throw-away host key, accepting one
throw-away client key for root; nothing of the machine's own ssh set-up is read or
changed. Clients find that key and the host key through a wrapper named ``ssh``
put first on PATH, which runs the real ``/usr/bin/ssh -F <test config>``: the
docker CLI, the Docker SDK and monctl all run ``ssh`` from PATH, as they would
with an operator's ``~/.ssh/config``.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from support import free_ports, require, require_binary


@contextmanager
def sshd(tmp: Path) -> Iterator[dict[str, str]]:
    """Start sshd; yield the environment (PATH, DOCKER_HOST) that makes monctl use it."""
    server = require_binary("/usr/sbin/sshd")
    client = require_binary("/usr/bin/ssh")
    keygen = require_binary("ssh-keygen")
    require(os.geteuid() == 0, "sshd needs root here")
    tmp.mkdir(parents=True, exist_ok=True)
    for name in ("host_key", "client_key"):
        subprocess.run([keygen, "-q", "-t", "ed25519", "-N", "", "-f", str(tmp / name)], check=True)
    shutil.copy(tmp / "client_key.pub", tmp / "authorized_keys")
    (port,) = free_ports(1)
    (tmp / "sshd_config").write_text(
        f"Port {port}\nListenAddress 127.0.0.1\nHostKey {tmp / 'host_key'}\n"
        f"AuthorizedKeysFile {tmp / 'authorized_keys'}\nPidFile {tmp / 'sshd.pid'}\n"
        "PasswordAuthentication no\nKbdInteractiveAuthentication no\n"
        "PermitRootLogin prohibit-password\nStrictModes no\nUsePAM no\n"
        "AllowTcpForwarding yes\n"
    )
    host_key = (tmp / "host_key.pub").read_text().split()
    (tmp / "known_hosts").write_text(f"[127.0.0.1]:{port} {host_key[0]} {host_key[1]}\n")
    # One connection carries them all (ControlMaster), as an operator's ~/.ssh/config often
    # has it: the Docker SDK and the docker CLI start an `ssh` per API connection, and each
    # new one's handshake made every command over ssh seconds slower (a minute and more
    # for tests/e2e/test_swarm.py's). The socket's path must stay short (sun_path).
    control = Path(tempfile.mkdtemp(prefix="monctl-ssh-"))
    (tmp / "ssh_config").write_text(
        f"Host *\n  IdentityFile {tmp / 'client_key'}\n  IdentitiesOnly yes\n"
        f"  UserKnownHostsFile {tmp / 'known_hosts'}\n  StrictHostKeyChecking yes\n"
        "  BatchMode yes\n"
        f"  ControlMaster auto\n  ControlPath {control}/%C\n  ControlPersist 30\n"
    )
    bin_dir = tmp / "bin"
    bin_dir.mkdir()
    wrapper = bin_dir / "ssh"
    wrapper.write_text(f'#!/bin/sh\nexec {client} -F {tmp / "ssh_config"} "$@"\n')
    wrapper.chmod(0o755)
    privsep = Path("/run/sshd")
    made_privsep = not privsep.exists()
    privsep.mkdir(mode=0o755, exist_ok=True)
    log = (tmp / "sshd.log").open("wb")
    process = subprocess.Popen(
        [server, "-D", "-e", "-f", str(tmp / "sshd_config")], stdout=log, stderr=log
    )
    try:
        deadline = time.monotonic() + 20
        while True:
            assert process.poll() is None, (tmp / "sshd.log").read_text()
            with socket.socket() as probe:
                if probe.connect_ex(("127.0.0.1", port)) == 0:
                    break
            assert time.monotonic() < deadline, "sshd did not listen"
            time.sleep(0.1)
        yield {
            "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "DOCKER_HOST": f"ssh://root@127.0.0.1:{port}",
        }
    finally:
        # The master connection first (it would outlive sshd's listener for ControlPersist).
        stop = [client, "-F", str(tmp / "ssh_config"), "-p", str(port), "-O", "exit"]
        subprocess.run([*stop, "root@127.0.0.1"], capture_output=True, timeout=10, check=False)
        shutil.rmtree(control, ignore_errors=True)
        process.terminate()
        process.wait(timeout=10)
        log.close()
        if made_privsep:
            shutil.rmtree(privsep, ignore_errors=True)
