"""Compose failures become the right MonctlError (texts are real compose/docker output)."""

from __future__ import annotations

import socket

from monctl.adapters import compose_cli as compose
from monctl.adapters import ports
from monctl.errors import ConfigError, DockerUnavailable, PortInUse, StartFailed


def test_port_already_allocated_names_the_port() -> None:
    text = (
        "Error response from daemon: driver failed programming external connectivity on endpoint "
        "monitoring-prometheus-1 (abc): Bind for 127.0.0.1:9090 failed: port is already allocated"
    )
    error = compose._start_error(text)
    assert isinstance(error, PortInUse)
    assert error.port == 9090
    assert "127.0.0.1:9090" in error.message


def test_address_in_use_names_the_port() -> None:
    text = (
        "Error response from daemon: failed to set up container networking: driver failed "
        "programming external connectivity on endpoint x: failed to bind host port for "
        "127.0.0.1:3001:172.18.0.2:3000/tcp: listen tcp4 127.0.0.1:3001: "
        "bind: address already in use"
    )
    error = compose._start_error(text)
    assert isinstance(error, PortInUse) and error.port == 3001


def test_pull_failure_is_a_start_failure_with_a_hint() -> None:
    text = (
        'prometheus Error Get "https://registry-1.docker.io/v2/": dial tcp: lookup '
        "registry-1.docker.io: no such host\nError response from daemon: Get "
        '"https://registry-1.docker.io/v2/": dial tcp: lookup registry-1.docker.io: no such host'
    )
    error = compose._start_error(text)
    assert isinstance(error, StartFailed) and not isinstance(error, PortInUse)
    assert "could not be pulled" in error.message
    assert "_IMAGE" in (error.hint or "")


def test_daemon_down_and_missing_variable() -> None:
    daemon = compose._start_error(
        "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. "
        "Is the docker daemon running?"
    )
    assert isinstance(daemon, DockerUnavailable)
    missing = compose._start_error(
        "error while interpolating services.grafana.environment.GF_SECURITY_ADMIN_PASSWORD: "
        "required variable GRAFANA_ADMIN_PASSWORD is missing a value"
    )
    assert isinstance(missing, ConfigError)


def test_who_listens_finds_this_process() -> None:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        port = sock.getsockname()[1]
        assert not ports.is_free("127.0.0.1", port)
        owner = ports.who_listens(port)
        assert owner is not None and "python" in owner
    assert ports.is_free("127.0.0.1", port)
