"""monctl up / status / logs / down against the real compose file on a real Docker engine.

The images are built locally by tests/images/build.sh: Prometheus, Alertmanager,
node-exporter and postgres-exporter are Debian's real binaries; Grafana, Loki, Promtail
and cAdvisor are stand-ins (tests/images/standin/standin.py). One full start-up only
(test_up_from_nothing_to_ready_then_down): the other tests fail before anything starts.
"""

from __future__ import annotations

import json
import re
import socket
import stat
from collections.abc import Iterator

import pytest
from support.engine import Result, Stack

from monctl import services

pytestmark = pytest.mark.docker

PASSWORD_VAR = "GRAFANA_ADMIN_PASSWORD"
HEALTH_VALUES = {"healthy", "unhealthy", "starting", "none", None}


def explain(stack: Stack, result: Result) -> str:
    """What to show when a monctl call did not do what the test expected."""
    ps = stack.compose("ps", "--all").out
    logs = stack.compose("logs", "--tail", "15").out
    return (
        f"exit {result.code}\n--- stdout\n{result.out}\n--- stderr\n{result.err}\n"
        f"--- compose ps\n{ps}\n--- compose logs (tail)\n{logs[-5000:]}"
    )


def assert_clean_error(result: Result, code: int) -> str:
    """Exit ``code``, an error message on stderr, no traceback; returns the error line."""
    assert result.code == code, f"expected exit {code}, got {result.code}\n{result.err}"
    assert "Traceback" not in result.err, result.err
    lines = [line for line in result.err.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:")]
    assert len(errors) == 1, f"expected one 'error:' line on stderr:\n{result.err}"
    return errors[0]


@pytest.fixture
def held_port(stack_dir: Stack) -> Iterator[int]:
    """Prometheus' host port of the test stack, held by a listening socket of this process."""
    port = stack_dir.port("prometheus")
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", port))
    sock.listen(1)
    try:
        yield port
    finally:
        sock.close()


def test_up_from_nothing_to_ready_then_down(stack_dir: Stack) -> None:
    # From nothing: no .env (monctl must create it), no application network, no containers.
    # The test's ports, images and names come from the process environment instead
    # (it wins over .env, in compose as in monctl); the Grafana password does not, so
    # the one monctl generates is the one used.
    (stack_dir.root / ".env").unlink()
    env = {k: v for k, v in stack_dir.overrides.items() if k != PASSWORD_VAR}
    assert not stack_dir.containers()

    up = stack_dir.monctl("up", "--timeout", "240", env=env, timeout=420)
    assert up.code == 0, explain(stack_dir, up)
    assert "Traceback" not in up.err

    env_file = stack_dir.root / ".env"
    assert env_file.is_file(), "monctl up did not create .env"
    assert stat.S_IMODE(env_file.stat().st_mode) == 0o600
    written = dict(
        re.findall(r"^([A-Z_][A-Z0-9_]*)=(.*)$", env_file.read_text(encoding="utf-8"), re.M)
    )
    password = written.get(PASSWORD_VAR, "")
    assert password not in ("", "admin", "__GENERATE__"), "Grafana password not generated"
    assert len(password) >= 16
    assert password not in up.out + up.err, "the generated password was printed"
    assert str(env_file) in up.err or ".env" in up.err, "up did not say where it wrote .env"

    running = stack_dir.containers(all_states=False)
    assert len(running) == len(services.SERVICES), explain(stack_dir, up)

    # status --json: exactly one JSON document on stdout, one item per catalogue service
    status = stack_dir.monctl("status", "--json", env=env)
    assert status.code == 0, explain(stack_dir, status)
    doc = json.loads(status.out)  # fails on anything but one JSON document
    assert doc["project"] == stack_dir.project_name
    by_name = {item["name"]: item for item in doc["services"]}
    assert list(by_name) == list(services.names())
    for service in services.SERVICES:
        item = by_name[service.name]
        assert item["state"] == "running", item
        assert item["health"] in HEALTH_VALUES, item
        assert item["health"] != "unhealthy", item
        assert isinstance(item["uptime_seconds"], int | float), item
        assert 0 <= item["uptime_seconds"] < 3600, item
        assert item["image"] == stack_dir.overrides[service.image_var], item
        assert f"http://127.0.0.1:{stack_dir.port(service.name)}" in item["urls"], item
    assert password not in status.out + status.err

    # logs passes through to compose
    logs = stack_dir.monctl("logs", "--tail", "5", "prometheus", env=env, timeout=60)
    assert logs.code == 0, logs.err
    assert "prometheus" in logs.out

    # down: no containers left, the data volumes stay
    down = stack_dir.monctl("down", env=env)
    assert down.code == 0, explain(stack_dir, down)
    assert stack_dir.containers() == [], "down left containers behind"
    volumes = stack_dir.volumes()
    for service in services.with_data():
        assert service.data is not None
        assert f"{stack_dir.project_name}_{service.data.volume}" in volumes, volumes

    # down --volumes asks first; with no terminal to answer that is a "no" (exit 130)
    refused = stack_dir.monctl("down", "--volumes", env=env)
    assert refused.code == 130, explain(stack_dir, refused)
    assert "Traceback" not in refused.err
    assert stack_dir.volumes() == volumes, "down --volumes deleted data without a yes"

    # down --volumes --yes: no volumes left
    wipe = stack_dir.monctl("down", "--volumes", "--yes", env=env)
    assert wipe.code == 0, explain(stack_dir, wipe)
    assert stack_dir.volumes() == [], "down --volumes --yes left volumes behind"
    assert stack_dir.containers() == []


def test_port_conflict_names_the_port(stack_dir: Stack, held_port: int) -> None:
    result = stack_dir.monctl("up", "--timeout", "60", timeout=240)
    line = assert_clean_error(result, 7)
    assert f"127.0.0.1:{held_port}" in line, line
    assert "prometheus" in line, line
    assert "already in use" in line, line
    running = stack_dir.compose("ps", "--services", "--status", "running").out.split()
    assert "prometheus" not in running, "prometheus runs although its port was taken"


def test_port_conflict_json_keeps_stdout_clean(stack_dir: Stack, held_port: int) -> None:
    result = stack_dir.monctl("up", "--json", "--timeout", "60", timeout=240)
    assert_clean_error(result, 7)
    doc = json.loads(result.out)  # exactly one JSON document, also on failure
    assert (doc["command"], doc["ok"], doc["exit_code"]) == ("up", False, 7)
    assert "already in use" in doc["error"]["message"]


@pytest.mark.parametrize(
    "args", [("up", "--timeout", "20"), ("status",), ("status", "--json"), ("down",)]
)
def test_docker_daemon_unreachable(stack_dir: Stack, args: tuple[str, ...]) -> None:
    env = {"DOCKER_HOST": "unix:///tmp/nonexistent-docker.sock"}
    result = stack_dir.monctl(*args, env=env, timeout=120)
    line = assert_clean_error(result, 5)
    assert re.search(r"docker", line, re.I), line
    if "--json" in args:  # exactly one document, also on failure
        doc = json.loads(result.out)
        assert (doc["command"], doc["ok"], doc["exit_code"]) == (args[0], False, 5)
        assert re.search(r"docker", doc["error"]["message"], re.I), doc
    assert not stack_dir.containers(), "a command started containers on the real engine"


def test_image_that_cannot_be_pulled(stack_dir: Stack) -> None:
    # An image that exists nowhere: compose tries to pull it and the registry is
    # out of reach (or refuses). Only node-exporter is started, so nothing else
    # in the stack matters for the message.
    env = {"NODE_EXPORTER_IMAGE": "monctl-test/no-such-image:missing"}
    result = stack_dir.monctl("up", "node-exporter", "--no-wait", env=env, timeout=240)
    line = assert_clean_error(result, 7)
    assert "could not be pulled" in line, line
    assert "hint:" in result.err and "_IMAGE" in result.err, result.err
    assert not stack_dir.containers(), "a container was left behind"
