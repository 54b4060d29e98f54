"""`monctl -vv backup --to s3://…` of a real stack: botocore's debug log of the upload
(PUT, multipart, headers) is shown, and no secret is in it in any form — the AWS
secret key and session token, signatures, the stack's .env secrets, and a secret
of the environment that is also in every request's URL (the destination prefix).
The read side (list/verify/prune, refused credentials) is
tests/adapters/storage/test_debug_output.py."""

from __future__ import annotations

import json

import pytest
from support.debug_secrets import ENV_SECRET, SECRET_ACCESS_KEY, SESSION_TOKEN, leaks
from support.engine import Stack

pytestmark = pytest.mark.docker


def test_vv_backup_to_s3_shows_botocore_debug_but_no_secret(
    running_stack: Stack, moto_endpoint: str
) -> None:
    """On the shared stack: a backup pauses Alertmanager for its copy and resumes it."""
    import boto3

    env = {
        "AWS_ACCESS_KEY_ID": "AKIDMONCTLDEBUG",
        "AWS_SECRET_ACCESS_KEY": SECRET_ACCESS_KEY,
        "AWS_SESSION_TOKEN": SESSION_TOKEN,
        "AWS_DEFAULT_REGION": "us-east-1",
        "AWS_ENDPOINT_URL": moto_endpoint,
        "AWS_CONFIG_FILE": "/nonexistent",
        "AWS_SHARED_CREDENTIALS_FILE": "/nonexistent",
        "SMTP_PASSWORD": ENV_SECRET,  # a secret setting (the environment wins over .env)
    }
    s3 = boto3.client(
        "s3",
        endpoint_url=moto_endpoint,
        region_name="us-east-1",
        aws_access_key_id=env["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=SECRET_ACCESS_KEY,
    )
    s3.create_bucket(Bucket="debug-output")
    result = running_stack.monctl(
        "-vv", "backup", "--to", f"s3://debug-output/{ENV_SECRET}", "--service",
        "alertmanager", "--json", env=env, timeout=600,
    )  # fmt: skip
    assert result.code == 0, result.err[-3000:]
    assert json.loads(result.out)["ok"] is True
    keys = [o["Key"] for o in s3.list_objects_v2(Bucket="debug-output")["Contents"]]
    manifests = [k for k in keys if k.endswith("/manifest.json")]
    assert len(manifests) == 1, keys
    body = s3.get_object(Bucket="debug-output", Key=manifests[0])["Body"].read()
    assert list(json.loads(body)["services"]) == ["alertmanager"]

    shown = result.out + result.err
    assert "DEBUG botocore.endpoint" in shown and "PutObject" in shown
    assert "X-Amz-Security-Token" in shown and "Authorization" in shown
    assert not leaks(shown), leaks(shown)
    for name, value in running_stack.env.items():
        if "PASSWORD" in name and len(value) >= 4:
            assert value not in shown, name
