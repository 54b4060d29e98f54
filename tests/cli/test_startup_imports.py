"""What monctl's own process keeps from loading (``cli.main``): optional imports of its
libraries that it never uses, each costing start-up time in every command."""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys

import pytest

# After main() ran (as `python -m monctl` runs it), the Docker SDK is imported as a
# command talking to the engine imports it; what was loaded is printed.
PROBE = """
import sys
from monctl.cli import main
try:
    main(["--version"])
except SystemExit:
    pass
import docker, httpx, json
names = ("paramiko", "invoke", "trio", "pygments")
print(json.dumps(sorted(m for m in names if sys.modules.get(m))))
"""


def loaded(docker_host: str | None) -> list[str]:
    env = {k: v for k, v in os.environ.items() if k != "DOCKER_HOST"}
    if docker_host is not None:
        env["DOCKER_HOST"] = docker_host
    out = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True,
                         env=env, check=True).stdout  # fmt: skip
    return list(json.loads(out.strip().splitlines()[-1]))


@pytest.mark.skipif(importlib.util.find_spec("paramiko") is None, reason="no paramiko here")
def test_paramiko_is_left_unloaded_unless_docker_host_is_ssh() -> None:
    assert loaded(None) == []
    assert loaded("unix:///var/run/docker.sock") == []
    assert "paramiko" in loaded("ssh://operator@engine.example")  # its transport needs it
