"""Monitoring hooks: what the outside hears of a backup, restore or drill.

One module per kind, each behind the same small interface (``Hook``: start,
success, failure, and ``skipped`` for a run refused because another holds the
lock), as borgmatic's ``hooks/monitoring/``:

- ``heartbeat.py``: pings to a dead-man's switch (healthchecks.io, Uptime Kuma,
  Cronitor), over ``monctl/adapters/http.py``;
- ``notify.py``: notifications through Apprise (the extra ``monctl[notify]``);
- ``textfile.py``: metrics for node-exporter's textfile collector, written by the
  backup and the drill from their per-service outcomes.

``announce.py`` is the one place a run is announced: ``Announcer`` runs the start
before the verb and the end after it, and each hook decides what to send. A new
kind of hook is one module here and one line in ``Announcer.hooks``. Nothing in
this package changes an exit code.
"""

from __future__ import annotations

from typing import Protocol


class Hook(Protocol):
    """A monitoring hook: told of a run's start and end; never raises, never fails it."""

    def start(self, text: str) -> None:
        """A run starts (``text``: what it is about to do)."""

    def success(self, title: str, body: str) -> None:
        """A run ended with exit code 0 (``title``: one line; ``body``: the summary)."""

    def failure(self, title: str, body: str) -> None:
        """A run failed or raised."""

    def skipped(self, text: str) -> None:
        """A run was refused because another holds the lock: neither opened nor failed."""
