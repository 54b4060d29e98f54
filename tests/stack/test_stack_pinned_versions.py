"""The tests run the pinned upstream versions: the images tests/images/build.sh builds from the
programs' Go modules (tests/images/go/) hold exactly the release the compose file pins, and the
host-side tools (promtool, amtool) are those same releases, not Debian's older packages."""

from __future__ import annotations

import re
import subprocess

import pytest
from support import REPO, require, require_binary
from support.engine import docker, engine_problem, load_test_images

COMPOSE = REPO / "compose" / "docker-compose.monitoring.yml"

# image variable -> (the binary in the image, its version flag). Built from Go modules here;
# the others stay stand-ins or Debian's (tests/images/standin/UPSTREAM.md says why).
BUILT = {
    "PROMETHEUS_IMAGE": ("/bin/prometheus", "--version"),
    "ALERTMANAGER_IMAGE": ("/bin/alertmanager", "--version"),
    "NODE_EXPORTER_IMAGE": ("/bin/node_exporter", "--version"),
    "LOKI_IMAGE": ("/usr/bin/loki", "-version"),
}


def pinned_version(var: str) -> str:
    """The version the compose file pins for ``var`` (its default image's tag, without 'v')."""
    text = COMPOSE.read_text(encoding="utf-8")
    m = re.search(r"\$\{" + var + r":-[^}:]+:v?([0-9][^}]*)\}", text)
    assert m, f"{var} has no pinned default image in {COMPOSE}"
    return m.group(1)


@pytest.mark.docker
@pytest.mark.parametrize("var", sorted(BUILT))
def test_test_image_is_the_pinned_release(var: str) -> None:
    problem = engine_problem()
    require(problem is None, problem or "")
    image = load_test_images()[var]
    want = pinned_version(var)
    label = docker(
        "image", "inspect", "-f",
        '{{ index .Config.Labels "org.opencontainers.image.version" }}|'
        '{{ index .Config.Labels "org.monctl.test.standin" }}', image,
    )  # fmt: skip
    assert label.code == 0, label.err
    assert label.out.strip() == f"{want}|false", (image, label.out)
    binary, flag = BUILT[var]
    out = docker("run", "--rm", "--network", "none", "--entrypoint", binary, image, flag)
    assert out.code == 0, out.err
    # prometheus/common's version banner: "<name>, version 3.15.0 (branch: ..., revision: ...)"
    assert re.search(rf"version {re.escape(want)}\b", out.out + out.err), out.out + out.err


@pytest.mark.binaries
@pytest.mark.parametrize(
    ("tool", "var"), [("promtool", "PROMETHEUS_IMAGE"), ("amtool", "ALERTMANAGER_IMAGE")]
)
def test_host_tools_are_the_pinned_release(tool: str, var: str) -> None:
    path = require_binary(tool)
    result = subprocess.run(
        [path, "--version"], capture_output=True, text=True, timeout=60, check=False
    )
    assert result.returncode == 0, result.stderr
    want = pinned_version(var)
    assert re.search(rf"version {re.escape(want)}\b", result.stdout + result.stderr), (
        f"{path} is not {tool} {want}: {result.stdout}{result.stderr}"
    )
