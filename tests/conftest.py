"""Fixtures every test gets. The helpers they use are the package tests/support.

Docker fixtures (a real engine, the real compose file, locally built images) are
in tests/e2e/conftest.py; they skip on a laptop without an engine and fail under
CI (``CI=true``): see ``support.require``.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from support import CURRENT

from monctl import redaction


@pytest.fixture(autouse=True)
def _current_test(request: pytest.FixtureRequest) -> Iterator[None]:
    """Let the prerequisite checks see the running test's markers."""
    token = CURRENT.set(request.node)
    yield
    CURRENT.reset(token)


@pytest.fixture(autouse=True)
def _no_secrets_from_other_tests(monkeypatch: pytest.MonkeyPatch) -> None:
    """Each test starts with an empty registry of secrets to mask."""
    monkeypatch.setattr(redaction, "_known", set())
