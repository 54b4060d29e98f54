"""What goes wrong talking to the Docker engine, said once: the daemon out of reach,
an SDK or connection failure (``docker_errors``), the engine's disk refusing a write.

Every Docker adapter (``docker.py``, ``docker_api.py``, ``swarm.py``, ``compose_cli.py``)
and the runtimes translate failures through here, so "cannot reach the Docker daemon"
reads the same whoever noticed it.
"""

from __future__ import annotations

import contextlib
import errno
import os
from collections.abc import Iterator

from monctl.errors import DockerUnavailable, OperationFailed, StorageError


def daemon_error(denied: bool) -> DockerUnavailable:
    """The one wording of "monctl cannot talk to Docker", whoever noticed it
    (the SDK, the engine API in docker_api.py, or compose's own output)."""
    if denied:
        return DockerUnavailable(
            "permission denied talking to the Docker daemon",
            hint="add your user to the 'docker' group (then log in again), or run with sudo",
        )
    # Named as the docker CLI names it: where monctl looked, so a wrong DOCKER_HOST shows.
    from monctl.redaction import redact

    host = os.environ.get("DOCKER_HOST")
    address = redact(host) if host else "unix:///var/run/docker.sock"
    return DockerUnavailable(
        f"cannot reach the Docker daemon at {address} (is it running?)",
        hint="start Docker there, or correct DOCKER_HOST"
        if host
        else "start Docker (e.g. `sudo systemctl start docker`), or set DOCKER_HOST "
        "to the engine's address",
    )


def translate_error(exc: BaseException) -> DockerUnavailable:
    """A connection failure (SDK, requests or httpx) as the daemon error it means."""
    return daemon_error("Permission denied" in str(exc) or isinstance(exc, PermissionError))


@contextlib.contextmanager
def docker_errors(action: str) -> Iterator[None]:
    """Turn Docker SDK and connection failures inside the block into MonctlErrors."""
    import docker.errors
    import requests.exceptions

    from monctl.redaction import redact

    try:
        yield
    except docker.errors.APIError as exc:
        raise OperationFailed(f"{action}: {redact(str(exc.explanation or exc))}") from None
    except (docker.errors.DockerException, requests.exceptions.ConnectionError) as exc:
        raise translate_error(exc) from None


# What the engine's disk says when it refuses a write (Go prints the OS's words), and
# what the operator can do about it.
_ENGINE_DISK = {
    errno.ENOSPC: "free space on the disk where Docker keeps its volumes (`docker system df` "
    "shows what uses it), then run again",
    errno.EDQUOT: "raise the quota of the disk where Docker keeps its volumes, then run again",
    errno.EROFS: "the disk where Docker keeps its volumes is read-only: check it (dmesg)",
    errno.EIO: "the disk where Docker keeps its volumes failed: check it (dmesg)",
}


def engine_write_error(explanation: str, where: str) -> StorageError | None:
    """The engine's answer when its disk refused a write into ``where`` (a volume) as
    the StorageError it is (exit 8); None when the answer is about something else."""
    said = explanation.lower()
    for code, hint in _ENGINE_DISK.items():
        cause = os.strerror(code).lower()
        if cause in said:
            return StorageError(f"the Docker engine cannot write into {where}: {cause}", hint=hint)
    return None
