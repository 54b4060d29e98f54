"""The application the stack watches: the Residency Scheduler's backend and database.

These are not services of the stack: when they are down, monctl reports
"watched target down" (its own exit code), not a broken stack. They are
matched against Prometheus' scrape targets by job name; the database itself
is seen through postgres-exporter's ``pg_up``. Every other scrape job is
named after the stack service it scrapes.
"""

from __future__ import annotations

WATCHED_JOBS: tuple[str, ...] = ("backend", "backend-export")

# The application's Docker network (its compose project creates it); the stack
# joins it to reach backend:8000 and db:5432.
NETWORK_VAR = "APP_NETWORK_NAME"
DEFAULT_NETWORK = "residency-scheduler_app-network"
