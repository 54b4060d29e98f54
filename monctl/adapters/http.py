"""HTTP to the stack's services (httpx).

``call`` is for one-off requests by operations (reload, snapshot, flush):
connection failures and timeouts become OperationFailed naming the service
and URL. Health probes use their own async client (monctl/ops/probes.py)
because there a refused connection is a result ("down"), not an error.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import httpx

from monctl.errors import OperationFailed
from monctl.secrets import redact

DEFAULT_TIMEOUT = 10.0


def call(
    method: str,
    url: str,
    *,
    what: str,
    timeout: float = DEFAULT_TIMEOUT,
    auth: tuple[str, str] | None = None,
    **kwargs: Any,
) -> httpx.Response:
    """Send one request; return the response whatever its status.

    Raise OperationFailed (saying ``what`` was being done) when no response came.
    """
    try:
        return httpx.request(method, url, timeout=timeout, auth=auth, **kwargs)
    except httpx.TimeoutException:
        raise OperationFailed(f"{what}: {url} did not answer within {timeout:.0f}s") from None
    except httpx.HTTPError as exc:
        raise OperationFailed(
            f"{what}: cannot reach {url} ({redact(str(exc)) or type(exc).__name__})",
            hint="is the service running? `monctl status` shows where it listens",
        ) from None


def body_excerpt(response: httpx.Response, limit: int = 300) -> str:
    """The start of a response body, secrets masked, for a message."""
    text = response.text.strip().replace("\n", " ")
    return redact(text[:limit] + ("…" if len(text) > limit else ""))


def _samples(text: str, name: str) -> Iterator[tuple[str, float]]:
    """(label text, value) of every sample of metric ``name`` in Prometheus text."""
    for line in text.splitlines():
        if not line.startswith(name):
            continue
        if "}" in line:
            head, _, rest = line.partition("}")
            metric, _, label_text = head.partition("{")
        else:
            metric, _, rest = line.partition(" ")
            label_text = ""
        if metric != name:
            continue
        fields = rest.split()  # value, then an optional timestamp
        try:
            yield label_text, float(fields[0])
        except (IndexError, ValueError):
            continue


def metric_value(text: str, name: str, labels: dict[str, str] | None = None) -> float | None:
    """The value of sample ``name`` (with ``labels`` among its labels) in Prometheus text."""
    for label_text, value in _samples(text, name):
        if not labels or all(f'{k}="{v}"' in label_text for k, v in labels.items()):
            return value
    return None


def metric_sum(text: str, name: str) -> float:
    """The sum of every sample of ``name`` (e.g. a counter over all its label sets)."""
    return sum(value for _, value in _samples(text, name))
