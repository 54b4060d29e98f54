from __future__ import annotations

import pytest

from monctl import secrets


@pytest.fixture(autouse=True)
def clean_registry() -> None:
    secrets.forget_all()


def test_secret_names_are_recognised_by_name_only() -> None:
    for name in (
        "GRAFANA_ADMIN_PASSWORD",
        "SLACK_WEBHOOK_URL",
        "PAGERDUTY_ROUTING_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "SMTP_PASSWORD",
    ):
        assert secrets.is_secret_name(name), name
    for name in ("PROMETHEUS_PORT", "GRAFANA_ADMIN_USER", "APP_NETWORK_NAME"):
        assert not secrets.is_secret_name(name), name


def test_register_env_masks_values_of_secret_variables_only() -> None:
    secrets.register_env({"GRAFANA_ADMIN_PASSWORD": "hunter2hunter2", "PROMETHEUS_PORT": "9090"})
    text = "login admin:hunter2hunter2 on port 9090"
    assert secrets.redact(text) == "login admin:**** on port 9090"


def test_longer_secret_is_masked_whole() -> None:
    secrets.register("abcd")
    secrets.register("abcdefgh")
    assert secrets.redact("x abcdefgh y") == "x **** y"


def test_generate_gives_distinct_strong_values() -> None:
    values = {secrets.generate() for _ in range(50)}
    assert len(values) == 50
    assert all(len(v) == 32 for v in values)
