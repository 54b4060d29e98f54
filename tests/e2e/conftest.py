"""Fixtures of the end-to-end tests: the real compose file on a real Docker engine.

The images come from tests/images/build.sh (Grafana, Loki, Promtail and cAdvisor
are stand-ins). Without an engine or the images these tests are skipped on a
laptop, but fail under CI (``CI=true``): see ``support.require``.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from support import require
from support.data import DATA_SERVICES
from support.engine import Stack, engine_problem, load_test_images, make_stack

# The stack's own wait (`monctl up --timeout`) for the session stack.
UP_TIMEOUT = int(os.environ.get("MONCTL_TEST_UP_TIMEOUT", "240"))


@pytest.fixture(scope="session")
def docker_engine() -> dict[str, str]:
    """A working Docker engine, compose v2 and the locally built test images.
    Returns the image settings (VAR -> image) from tests/images/images.env."""
    problem = engine_problem()
    require(problem is None, problem or "")
    return load_test_images()


@pytest.fixture
def stack_dir(docker_engine: dict[str, str], tmp_path: Path) -> Iterator[Stack]:
    """A fresh copy of the stack in a temp dir, not started. Teardown always removes the
    project's containers, volumes and networks (with `docker compose down -v` directly)."""
    stack = make_stack(tmp_path / "stack")
    try:
        yield stack
    finally:
        stack.teardown()


def _started(stack: Stack, *services: str) -> Stack:
    result = stack.monctl("up", *services, "--timeout", str(UP_TIMEOUT), timeout=UP_TIMEOUT + 120)
    if result.code != 0:
        logs = stack.compose("logs", "--tail", "30").out
        stack.teardown()
        pytest.fail(
            f"`monctl up` of a session stack exited {result.code}\n"
            f"stdout:\n{result.out}\nstderr:\n{result.err}\ncompose logs:\n{logs[-4000:]}",
            pytrace=False,
        )
    return stack


@pytest.fixture(scope="session")
def running_stack(
    docker_engine: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """One stack started once with `monctl up` for the whole session (health, reload
    tests share it); torn down at the end. Tests must leave it running and ready."""
    stack = _started(make_stack(tmp_path_factory.mktemp("running") / "stack"))
    try:
        yield stack
    finally:
        stack.teardown()


@pytest.fixture(scope="session")
def data_stack(
    docker_engine: dict[str, str], tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Stack]:
    """The backup/restore tests' own stack of the four services that keep data
    (they wipe volumes: never the shared running_stack)."""
    stack = _started(make_stack(tmp_path_factory.mktemp("backup") / "stack"), *DATA_SERVICES)
    try:
        yield stack
    finally:
        stack.teardown()
