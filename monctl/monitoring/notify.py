"""Notifications through Apprise (the optional extra ``monctl[notify]``).

``MONCTL_NOTIFY_URLS`` holds one or more Apprise URLs (Slack, email, ntfy, Teams,
a JSON webhook ...), separated by spaces, newlines or commas. They are notified
when a backup, restore or drill fails, and also on success when
``MONCTL_NOTIFY_ON=always`` (default ``failure``). Every URL is sent to in its own
thread, and the whole round is bounded by ``MONCTL_NOTIFY_TIMEOUT`` seconds
(default 30): Apprise's own call deadline, and a join on the threads as a second
bound. A notification that fails never fails the operation: it is reported.

Apprise is imported only when ``MONCTL_NOTIFY_URLS`` is set; without the extra
the variable is refused with a message saying how to install it. The URLs carry
tokens and passwords: they are registered with ``monctl.redaction`` and shown
only as "<scheme> #<n>"; Apprise's logger is kept at INFO or above even with
``-vv`` (its DEBUG lines print the URLs it posts to).
"""

from __future__ import annotations

import logging
import re
import threading
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from monctl import redaction, url_setting
from monctl.envfile import seconds
from monctl.errors import ConfigError, UsageError

if TYPE_CHECKING:  # pragma: no cover
    from monctl.project import Project

URLS_VAR = "MONCTL_NOTIFY_URLS"
ON_VAR = "MONCTL_NOTIFY_ON"
TIMEOUT_VAR = "MONCTL_NOTIFY_TIMEOUT"
DEFAULT_TIMEOUT = 30.0
When = Literal["failure", "always"]

# A new URL starts at "scheme://" after a separator; a comma inside a URL
# (mailto://...?to=a@x,b@y) is not followed by one.
_SPLIT = re.compile(r"[\s,]+(?=[A-Za-z][A-Za-z0-9+.-]*://)")
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.-]*)://")


def split_urls(text: str) -> list[str]:
    return [u.strip().strip(",") for u in _SPLIT.split(text.strip()) if u.strip().strip(",")]


def label(url: str, index: int) -> str:
    """How a URL may be shown: its scheme and its place in the list, nothing else."""
    match = _SCHEME.match(url)
    return f"{match.group(1) if match else '?'} #{index}"


@dataclass(frozen=True)
class Sent:
    """What became of one notification URL."""

    target: str  # label(): "slack #1"
    ok: bool
    detail: str = ""

    def to_json(self) -> dict[str, object]:
        return {"target": self.target, "ok": self.ok, "detail": self.detail}


def _apprise() -> Any:
    try:
        import apprise
    except ImportError:
        raise UsageError(
            f"{URLS_VAR} is set, but notifications need the optional extra `notify` "
            "(Apprise), which is not installed",
            hint="pip install 'monctl[notify]', or unset MONCTL_NOTIFY_URLS",
        ) from None
    # Apprise's DEBUG and TRACE lines carry the URLs it posts to (tokens included).
    apprise_log = logging.getLogger("apprise")
    if apprise_log.getEffectiveLevel() < logging.INFO:
        apprise_log.setLevel(logging.INFO)
    return apprise


class Notifier:
    def __init__(self, urls: list[str], when: When, timeout: float) -> None:
        self.urls = urls
        self.when = when
        self.timeout = timeout
        self.sent: list[Sent] = []  # what the end of the run sent

    @classmethod
    def from_project(cls, project: Project) -> Notifier | None:
        """The notifier configured in the environment or ``.env``; None when
        MONCTL_NOTIFY_URLS is unset. Raise UsageError when Apprise is missing,
        ConfigError for a URL Apprise does not understand or a bad setting."""
        raw = project.setting(URLS_VAR, "")
        urls = split_urls(raw)
        if not urls:
            return None
        for url in urls:
            redaction.register_url(url)
        when = project.setting(ON_VAR, "failure").strip().lower() or "failure"
        if when not in ("failure", "always"):
            raise ConfigError(f"{ON_VAR}={when!r} is not 'failure' or 'always'")
        timeout = _timeout(project)
        apprise = _apprise()
        for n, url in enumerate(urls, 1):
            # Apprise accepts a port of 99999 or a control character, and fails only
            # when it sends: checked here, when the command starts.
            why = url_setting.problem(url, host_required=False)
            if why is not None:
                raise ConfigError(f"{URLS_VAR}: entry {label(url, n)} is not usable: {why}")
        for n, url in enumerate(urls, 1):
            if not apprise.Apprise().add(url):
                raise ConfigError(
                    f"{URLS_VAR}: entry {label(url, n)} is not a URL Apprise understands",
                    hint="see https://github.com/caronc/apprise/wiki for the URL of each service"
                    " (the value is not shown: it may hold a token)",
                )
        return cls(urls, "always" if when == "always" else "failure", timeout)

    def wants(self, failed: bool) -> bool:
        return failed or self.when == "always"

    # -- the monitoring hook (monctl.monitoring.Hook) ------------------------------------
    def start(self, text: str) -> None:
        """Nothing: a notification is about how a run ended."""

    def success(self, title: str, body: str) -> None:
        if self.wants(failed=False):
            self.sent = self.send(title, body, failed=False)

    def failure(self, title: str, body: str) -> None:
        self.sent = self.send(title, body, failed=True)

    def skipped(self, text: str) -> None:
        """Nothing: the run that holds the lock notifies for the night."""

    def send(self, title: str, body: str, failed: bool) -> list[Sent]:
        """Notify every URL at once; return each one's outcome (never raises)."""
        apprise = _apprise()
        kind = apprise.NotifyType.FAILURE if failed else apprise.NotifyType.SUCCESS
        title, body = redaction.redact(title), redaction.redact(body)
        results: dict[int, Sent] = {}

        def one(n: int, url: str) -> None:
            results[n] = _notify_one(apprise, url, label(url, n), title, body, kind, self.timeout)

        threads = [
            threading.Thread(target=one, args=(n, url), daemon=True, name=f"monctl-notify-{n}")
            for n, url in enumerate(self.urls, 1)
        ]
        deadline = time.monotonic() + self.timeout + 1.0  # Apprise's own deadline comes first
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(max(0.0, deadline - time.monotonic()))
        return [
            results.get(n, Sent(label(url, n), False, f"no answer within {self.timeout:g} s"))
            for n, url in enumerate(self.urls, 1)
        ]


def _notify_one(
    apprise: Any, url: str, target: str, title: str, body: str, kind: Any, timeout: float
) -> Sent:
    try:
        sender = apprise.Apprise()
        sender.add(url)
        result = sender.notify(body=body, title=title, notify_type=kind, timeout=timeout)
        try:
            ok = bool(result)
            status = getattr(getattr(result, "status", None), "name", "")
        finally:
            close = getattr(result, "close", None)
            if callable(close):
                close()
    except Exception as exc:  # a plugin's bug must not end the backup's report
        return Sent(target, False, redaction.redact(f"{type(exc).__name__}: {exc}")[:200])
    return Sent(target, ok, "sent" if ok else (status.lower() or "failed"))


def _timeout(project: Project) -> float:
    return seconds(TIMEOUT_VAR, project.setting(TIMEOUT_VAR), DEFAULT_TIMEOUT, 600)
