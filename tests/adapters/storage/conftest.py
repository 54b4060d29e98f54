"""A real S3 endpoint for the storage tests: moto in server mode on 127.0.0.1, over HTTP.

boto3 reaches it through AWS_ENDPOINT_URL, as an operator's MinIO would be reached.
``FaultProxy`` sits between boto3 and moto so a test can cut the connection in the
middle of an upload (refusing every connection, like an endpoint gone down) and
count the connection attempts the retries make.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from support.storage_proxy import FaultProxy

from monctl.adapters.storage import MiB, S3Options
from monctl.adapters.storage.s3 import S3Storage

# S3 (and moto) refuse multipart parts below 5 MiB, except the last one.
TEST_PART = 5 * MiB
FAST = {"attempts": 3, "backoff": 0.01, "backoff_max": 0.05, "connect_timeout": 2.0}


@pytest.fixture
def aws_env(monkeypatch: pytest.MonkeyPatch, moto_endpoint: str) -> str:
    """Test credentials in the environment (and nothing from the host's ~/.aws)."""
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "AKIDMONCTLTEST")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "monctl-test-secret-key-0123456789")
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_CONFIG_FILE", "/nonexistent")
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", "/nonexistent")
    monkeypatch.delenv("AWS_PROFILE", raising=False)
    monkeypatch.delenv("AWS_ENDPOINT_URL_S3", raising=False)
    monkeypatch.setenv("AWS_ENDPOINT_URL", moto_endpoint)
    return moto_endpoint


@pytest.fixture
def raw_s3(aws_env: str) -> Any:
    """A plain boto3 client on moto: the test's own view of the bucket."""
    import boto3

    return boto3.client("s3", endpoint_url=aws_env, region_name="us-east-1")


@pytest.fixture
def bucket(raw_s3: Any) -> str:
    name = f"monctl-test-{secrets.token_hex(4)}"
    raw_s3.create_bucket(Bucket=name)
    return name


@pytest.fixture
def proxy(moto_endpoint: str) -> Iterator[FaultProxy]:
    host, port = moto_endpoint.removeprefix("http://").split(":")
    p = FaultProxy((host, int(port)))
    yield p
    p.close()


@pytest.fixture
def make_s3(bucket: str) -> Callable[..., S3Storage]:
    """``make_s3(prefix="backups", endpoint_url=None, **options)``: an S3Storage on
    the test bucket with fast retries and 5 MiB parts."""

    def make(prefix: str = "backups", **kw: Any) -> S3Storage:
        opts = {**FAST, "min_part_size": TEST_PART, **kw}
        return S3Storage(bucket, prefix, S3Options(**opts))

    return make


@pytest.fixture
def uploads(raw_s3: Any, bucket: str) -> Callable[[], list[dict[str, Any]]]:
    """``uploads()``: the bucket's unfinished multipart uploads, as S3 itself lists them."""
    return lambda: list(raw_s3.list_multipart_uploads(Bucket=bucket).get("Uploads", []))
