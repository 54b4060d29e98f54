"""Per-service documentation tables, generated from the declarations in ``monctl.services``.

The facts about a service (its port, image setting, probes, how it is reloaded,
where its data lives and how it is copied) are declared once, in
``monctl/services/<name>.py``; the tables of README.md and docs/ are rendered
from those declarations, as the exit-code tables are from ``ExitCode``
(``monctl.cli.exit_codes``). A document holds each table between
``<!-- service-table: NAME -->`` and ``<!-- /service-table -->`` (NAME is one of
``TABLES``); a test fails when one differs from what is generated here, and

    python -m monctl.cli.service_tables README.md docs/*.md

rewrites them. Only documentation reads this module: no command imports it.
"""

from __future__ import annotations

import re
import sys
from collections.abc import Callable, Sequence
from pathlib import Path

from monctl import services
from monctl.services.answers import status_200
from monctl.services.model import (
    HostCheck,
    HttpReload,
    NoReload,
    Probe,
    ProvisioningReload,
    RestartReload,
    Service,
    Snapshot,
    ToolCheck,
)


def _where(fn: Callable[..., object]) -> str:
    """A function of a declaration as a newcomer finds it: ``prometheus.read_ready``."""
    return f"`{fn.__module__.rsplit('.', 1)[-1]}.{fn.__name__}`"


def _probe(probe: Probe | None) -> str:
    if probe is None:
        return "—"
    if probe.read is status_200:
        return f"`GET {probe.path}` answers 200"
    return f"`GET {probe.path}`, read by {_where(probe.read)}"


def _tool(check: ToolCheck) -> str:
    return " ".join((check.program, *check.argv[1:]))


def _gates(service: Service) -> str:
    """The checks ``reload`` runs (and must pass) before it touches the service."""
    tools = list(dict.fromkeys(_tool(c) for c in service.tool_checks if c.gates_reload))
    hosts = [c.name for c in service.checks if isinstance(c, HostCheck)]
    parts = [f"`{t}` inside the running container" for t in tools]
    if hosts:
        parts.append(f"{' and '.join(hosts)} checked on the host")
    return "; ".join(parts) if parts else "—"


def _reload_how(service: Service) -> str:
    kind = service.reload
    if isinstance(kind, HttpReload):
        how = f"`POST {kind.path}`"
        if kind.missing_restarts:
            how += " (a 404: runtime reload is off, restarted instead)"
        if kind.off_status is not None:
            how += f" (a {kind.off_status}: {kind.off_reason})"
        return how
    if isinstance(kind, ProvisioningReload):
        path = kind.path.replace("{part}", "{" + ",".join(kind.parts) + "}")
        return f"`POST {path}` as `{kind.user_var}`/`{kind.password_var}` from `.env`"
    if isinstance(kind, RestartReload):
        return f"restart ({kind.why})"
    assert isinstance(kind, NoReload)
    return f"nothing to reload ({kind.why})"


def _reload_confirmed(service: Service) -> str:
    kind = service.reload
    if isinstance(kind, HttpReload):
        if kind.confirm is None:
            return "the answer"
        said = f"`{kind.confirm.ok}` = 1 and a newer `{kind.confirm.timestamp}`"
        if kind.confirm.hash:
            said += f"; a changed `{kind.confirm.hash}` says the file changed"
        return said
    if isinstance(kind, ProvisioningReload):
        return "each part's answer"
    if isinstance(kind, RestartReload):
        return f"readiness ({_probe(service.readiness or service.liveness)})"
    return "—"


def _copy(service: Service) -> str:
    assert service.data is not None
    copy = service.data.copy
    if isinstance(copy, Snapshot):
        return f"a snapshot (`POST {copy.create}`), read, then deleted"
    if copy.flush:
        return f"`POST {copy.flush}`, then paused for the length of the copy"
    return "paused for the length of the copy"


def _incremental(service: Service) -> str:
    assert service.data is not None
    layout = service.data.layout
    said = []
    if layout.units:
        said.append(f"units named `{layout.units}` stored once")
    if layout.objects:
        said.append(f"{', '.join(f'`{g}`' for g in layout.objects)} stored once")
    if layout.listing:
        said.append("listed inside the container: an unchanged unit is not read again")
    else:
        said.append("read whole")
    if layout.compressed:
        said.append(f"{', '.join(f'`{g}`' for g in layout.compressed)} not compressed again")
    return "; ".join(said)


def _rows(head: tuple[str, ...], rows: Sequence[tuple[str, ...]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    lines += ["| " + " | ".join(row) + " |" for row in rows]
    return "\n".join(lines)


def _services() -> str:
    head = ("service", "URL (default)", "port", "image", "what it does", "data", "on Swarm")
    rows = [
        (
            s.title,
            f"http://localhost:{s.default_port}",
            f"`{s.port_var}`",
            f"`{s.image_var}`",
            s.role,
            f"`{s.data.volume}` → `{s.data.path}`" if s.data else "—",
            "every node" if s.placement == "every-node" else "one task",
        )
        for s in services.SERVICES
    ]
    return _rows(head, rows)


def _probes() -> str:
    head = ("service", "liveness", "readiness", "deep checks", "credentials")
    rows = [
        (
            s.title,
            _probe(s.liveness),
            _probe(s.readiness),
            _where(s.deep) if s.deep else "—",
            "the stack's (`monctl` / `MONITORING_AUTH_PASSWORD`)" if s.basic_auth else "—",
        )
        for s in services.SERVICES
    ]
    return _rows(head, rows)


def _reload() -> str:
    head = ("service", "checked first by", "how", "confirmed by")
    rows = [(s.title, _gates(s), _reload_how(s), _reload_confirmed(s)) for s in services.SERVICES]
    return _rows(head, rows)


def _data() -> str:
    head = ("service", "volume → path", "owner", "consistent copy", "incremental", "drill")
    rows = [
        (
            s.title,
            f"`{s.data.volume}` → `{s.data.path}`",
            f"{s.data.uid}:{s.data.gid}",
            _copy(s),
            _incremental(s),
            f"{_where(s.drill.check)}" if s.drill else "—",
        )
        for s in services.with_data()
        if s.data is not None
    ]
    return _rows(head, rows)


TABLES: dict[str, Callable[[], str]] = {
    "services": _services,
    "probes": _probes,
    "reload": _reload,
    "data": _data,
}


def table(name: str) -> str:
    """The table called ``name``, from the declarations as they are now."""
    return TABLES[name]()


_BLOCK = re.compile(
    r"(<!-- service-table: ([a-z]+) -->\n)(.*?)(<!-- /service-table -->)", re.DOTALL
)


def rewrite(text: str) -> str:
    """``text`` with every service table regenerated."""
    return _BLOCK.sub(lambda m: f"{m.group(1)}{table(m.group(2))}\n{m.group(4)}", text)


def blocks(text: str) -> list[tuple[str, str]]:
    """The service tables of ``text``: (name, the table it holds now), in order."""
    return [(m.group(2), m.group(3).strip()) for m in _BLOCK.finditer(text)]


if __name__ == "__main__":  # pragma: no cover
    for arg in sys.argv[1:]:
        path = Path(arg)
        path.write_text(rewrite(path.read_text(encoding="utf-8")), encoding="utf-8")
