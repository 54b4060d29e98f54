"""``host_volume``: when a volume's directory on this host may be written or read directly.

The engine's own answers (``docker info``) decide whether it remaps users; the
direct paths themselves run against the real engine in tests/e2e/test_restore_direct.py
and tests/e2e/test_backup_host_read.py.
"""

from __future__ import annotations

import pytest

from monctl.runtime.host_volume import remaps_users

# What `docker info` answers (SecurityOptions), as Docker 20-27 print it.
PLAIN = ["name=apparmor", "name=seccomp,profile=builtin", "name=cgroupns"]
REMAPPED = ["name=apparmor", "name=seccomp,profile=builtin", "name=userns"]


@pytest.mark.parametrize(
    ("options", "remapped"),
    [(PLAIN, False), (REMAPPED, True), (None, True), ("name=userns", True), ([], False)],
    ids=["plain", "userns-remap", "not told", "not a list", "none"],
)
def test_an_engine_that_remaps_users_is_never_written_directly(
    options: object, remapped: bool
) -> None:
    info = {} if options is None else {"SecurityOptions": options}
    assert remaps_users(info) is remapped
