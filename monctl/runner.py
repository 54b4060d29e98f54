"""The one place monctl runs other programs.

Every subprocess is an argument list (never a shell string) with a timeout;
the command line is logged with secrets masked. Failures to start a program
and timeouts become MonctlErrors naming the program and what to do.
"""

from __future__ import annotations

import logging
import subprocess
from collections.abc import Sequence

from monctl.errors import MonctlError, OperationFailed
from monctl.redaction import redact

log = logging.getLogger(__name__)

DEFAULT_TIMEOUT = 60.0


def run(
    argv: Sequence[str],
    *,
    timeout: float = DEFAULT_TIMEOUT,
    capture: bool = True,
    input: str | None = None,
    env: dict[str, str] | None = None,
    missing: MonctlError | None = None,
) -> subprocess.CompletedProcess[str]:
    """Run ``argv`` and return the completed process (whatever its exit status).

    Raise ``missing`` (or OperationFailed) when the program does not exist, and
    OperationFailed when it outlives ``timeout`` seconds.
    """
    argv = [str(a) for a in argv]
    log.debug("run: %s", redact(" ".join(argv)))
    try:
        return subprocess.run(
            argv,
            capture_output=capture,
            text=True,
            timeout=timeout,
            input=input,
            env=env,
            check=False,
        )
    except FileNotFoundError:
        raise missing or OperationFailed(f"{argv[0]} is not installed or not on PATH") from None
    except subprocess.TimeoutExpired:
        raise OperationFailed(
            f"{argv[0]} did not finish within {timeout:.0f}s",
            hint="run it with a longer --timeout, or check what it is waiting for",
        ) from None
