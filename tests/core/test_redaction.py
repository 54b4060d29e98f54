"""Secrets are recognised by their variable's name, masked wherever they appear,
and secret-shaped values in library logs (Authorization, tokens, signatures) too."""

from __future__ import annotations

import logging

import pytest

from monctl import redaction


def test_secret_names_are_recognised_by_name_only() -> None:
    for name in (
        "GRAFANA_ADMIN_PASSWORD",
        "SLACK_WEBHOOK_URL",
        "PAGERDUTY_ROUTING_KEY",
        "AWS_SECRET_ACCESS_KEY",
        "SMTP_PASSWORD",
    ):
        assert redaction.is_secret_name(name), name
    for name in ("PROMETHEUS_PORT", "GRAFANA_ADMIN_USER", "APP_NETWORK_NAME"):
        assert not redaction.is_secret_name(name), name


def test_register_env_masks_values_of_secret_variables_only() -> None:
    redaction.register_env({"GRAFANA_ADMIN_PASSWORD": "hunter2hunter2", "PROMETHEUS_PORT": "9090"})
    text = "login admin:hunter2hunter2 on port 9090"
    assert redaction.redact(text) == "login admin:**** on port 9090"


def test_longer_secret_is_masked_whole() -> None:
    redaction.register("abcd")
    redaction.register("abcdefgh")
    assert redaction.redact("x abcdefgh y") == "x **** y"


def test_generate_gives_distinct_strong_values() -> None:
    values = {redaction.generate() for _ in range(50)}
    assert len(values) == 50
    assert all(len(v) == 32 for v in values)


@pytest.mark.parametrize(
    ("line", "secret"),
    [
        ("{'X-Amz-Security-Token': b'FwoGZXIvYXdzEBYaDKpQ'}", "FwoGZXIvYXdzEBYaDKpQ"),
        (
            "'Authorization': b'AWS4-HMAC-SHA256 Credential=AKIAX/2026/s3, Signature=9f3b2c'",
            "9f3b2c",
        ),
        ("https://b.s3.amazonaws.com/k?X-Amz-Signature=0a1b2c3d&X-Amz-Expires=60", "0a1b2c3d"),
        ("aws_secret_access_key = wJalrXUtnFEMI/K7MDENG", "wJalrXUtnFEMI/K7MDENG"),
        ('"SessionToken": "IQoJb3JpZ2luX2VjEJr"', "IQoJb3JpZ2luX2VjEJr"),
    ],
)
def test_secret_shaped_values_are_masked(line: str, secret: str) -> None:
    masked = redaction.redact(line)
    assert secret not in masked and "****" in masked


def test_every_log_line_is_redacted(caplog: pytest.LogCaptureFixture) -> None:
    """What any library logs through the root handlers passes the filter."""
    redaction.register("env-secret-value")
    handler = logging.StreamHandler()
    root = logging.getLogger()
    root.addHandler(handler)
    try:
        redaction.install_log_filter()
        record = logging.LogRecord(
            "botocore.endpoint", logging.DEBUG, __file__, 1,
            "Sending %s with %s", ("env-secret-value", "{'Authorization': b'AWS4 abc'}"), None,
        )  # fmt: skip
        for f in handler.filters:
            assert f.filter(record)
        assert "env-secret-value" not in record.getMessage()
        assert "AWS4 abc" not in record.getMessage()
    finally:
        root.removeHandler(handler)


def test_a_secret_is_masked_in_every_form_a_log_line_carries_it() -> None:
    """Raw, percent-encoded (URLs, query strings), as hex bytes (AWS's
    SignatureDoesNotMatch body spells the canonical request out byte by byte) and
    JSON-escaped: one registered secret, every spelling masked."""
    from support.debug_secrets import ENV_SECRET, SESSION_TOKEN, forms

    redaction.register(ENV_SECRET)
    redaction.register(SESSION_TOKEN)
    for secret in (ENV_SECRET, SESSION_TOKEN):
        for form in forms(secret):
            masked = redaction.redact(f"GET /bucket/{form}/manifest.json 200")
            assert form not in masked and "****" in masked, form


def test_an_aws_signature_error_body_is_masked() -> None:
    """What real S3 answers to a bad signature (botocore logs it at -vv)."""
    from support.debug_secrets import SESSION_TOKEN, leaks

    redaction.register(SESSION_TOKEN)
    canonical = f"GET\n/b\n\nhost:s3.amazonaws.com\nx-amz-security-token:{SESSION_TOKEN}\n"
    body = (
        "b'<Error><Code>SignatureDoesNotMatch</Code><AWSAccessKeyId>ASIAX</AWSAccessKeyId>"
        f"<SignatureProvided>{'ab' * 32}</SignatureProvided>"
        f"<CanonicalRequest>{canonical}</CanonicalRequest>"
        f"<CanonicalRequestBytes>{' '.join(f'{b:02x}' for b in canonical.encode())}"
        "</CanonicalRequestBytes></Error>'"
    )
    masked = redaction.redact(body)
    assert not leaks(masked), leaks(masked)
    assert "ab" * 32 not in masked
