"""The services of the stack: each declared once, in its own module.

``monctl/services/<name>.py`` holds everything monctl knows about one service
(ports, probes and how their answers are read, deep checks, how its
configuration is validated and reloaded, where its data lives and how it is
copied, which secrets it takes); ``model.py`` is the shape of a declaration and
``answers.py`` the vocabulary of probe answers. Every operation iterates over
``SERVICES`` (read at call time, so a test can add a service) and never names
one. Adding a service to the stack is one module here, one line below, and
its entry in the compose file.
"""

from __future__ import annotations

from monctl.errors import UsageError
from monctl.services import alertmanager, exporters, grafana, loki, prometheus, promtail
from monctl.services.model import Service

SERVICES: list[Service] = [
    prometheus.SERVICE,
    alertmanager.SERVICE,
    grafana.SERVICE,
    loki.SERVICE,
    promtail.SERVICE,
    exporters.NODE_EXPORTER,
    exporters.CADVISOR,
    exporters.POSTGRES_EXPORTER,
]


def names() -> tuple[str, ...]:
    return tuple(s.name for s in SERVICES)


def get(name: str) -> Service:
    """The service called ``name``; UsageError naming the known ones."""
    for service in SERVICES:
        if service.name == name:
            return service
    raise UsageError(f"unknown service {name!r}", hint=f"known services: {', '.join(names())}")


def select(wanted: tuple[str, ...] | list[str]) -> tuple[Service, ...]:
    """The services named (all of them when none are), in declaration order."""
    if not wanted:
        return tuple(SERVICES)
    chosen = {get(n).name for n in wanted}
    return tuple(s for s in SERVICES if s.name in chosen)


def with_data() -> tuple[Service, ...]:
    """The services that keep data (what a backup holds)."""
    return tuple(s for s in SERVICES if s.data is not None)
