"""``monctl health``: every service's container, liveness, readiness and deep checks, at once.

Given a project and the services to check, ``check`` returns a ``HealthReport``;
``wait`` repeats it until the stack is ready or a timeout passes (``monctl up``
uses the same code). Nothing here raises for an unhealthy stack: the report
says what is wrong, and its ``exit_code`` says how bad it is:

- ``OK`` (0): every service healthy, every watched target up;
- ``UNHEALTHY`` (3): a stack service is down, not ready or unhealthy, or a deep
  check of the stack failed (a stack scrape target down, a rule failing, a
  reload failed); with ``strict`` also when a watched target is down;
- ``TARGETS_DOWN`` (4): the stack is fine but something it watches (the
  backend's scrape jobs, the database behind postgres-exporter) is down;
  ``ignore_targets`` turns this into 0.

Docker being unreachable is not an error here: container state is "unknown"
and the endpoints come from ``MONCTL_<SERVICE>_URL`` or ``.env``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal

from monctl.catalogue import Service
from monctl.errors import ExitCode, MonctlError
from monctl.ops.endpoints import Endpoint, discover, try_docker
from monctl.ops.probes import (
    DEEP_CHECKS,
    Check,
    DeepResult,
    Fetched,
    Target,
    Verdict,
    fetch,
    interpret,
)
from monctl.output import styled

if TYPE_CHECKING:  # pragma: no cover
    import httpx

    from monctl.adapters.docker import ContainerInfo
    from monctl.output import Output
    from monctl.project import Project

Status = Literal["healthy", "degraded", "not ready", "unhealthy", "down"]
GOOD: tuple[Status, ...] = ("healthy", "degraded")  # degraded: works, with a note


@dataclass(frozen=True)
class ServiceHealth:
    name: str
    status: Status
    state: str  # container state; "unknown" when Docker could not be asked
    health: str | None  # Docker's healthcheck status, None without one
    live: bool | None  # None: not probed (nothing to probe)
    ready: bool | None
    latency_ms: float | None
    detail: str
    url: str | None

    @property
    def ok(self) -> bool:
        return self.status in GOOD

    def to_json(self) -> dict[str, Any]:
        return {f.name: getattr(self, f.name) for f in dataclasses.fields(self)}


@dataclass(frozen=True)
class HealthReport:
    services: tuple[ServiceHealth, ...]
    checks: tuple[Check, ...] = ()
    targets: tuple[Target, ...] = ()
    alerts: dict[str, int] | None = None
    docker: str | None = None  # why Docker could not be asked; None when it answered
    checked_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    strict: bool = False  # a watched target down counts as a stack failure
    ignore_targets: bool = False  # a watched target down does not change the exit code
    ok: bool = field(init=False)
    stack_ok: bool = field(init=False)
    targets_ok: bool = field(init=False)
    exit_code: ExitCode = field(init=False)

    def __post_init__(self) -> None:
        stack_ok = all(s.ok for s in self.services) and all(
            c.ok for c in self.checks if c.severity == "stack"
        )
        targets_ok = not any(t.state == "down" for t in self.targets)
        if not stack_ok or (self.strict and not targets_ok):
            code = ExitCode.UNHEALTHY
        elif not targets_ok and not self.ignore_targets:
            code = ExitCode.TARGETS_DOWN
        else:
            code = ExitCode.OK
        object.__setattr__(self, "stack_ok", stack_ok)
        object.__setattr__(self, "targets_ok", targets_ok)
        object.__setattr__(self, "ok", stack_ok and targets_ok)
        object.__setattr__(self, "exit_code", code)

    def with_policy(self, *, strict: bool = False, ignore_targets: bool = False) -> HealthReport:
        """The same findings judged with ``--strict`` / ``--ignore-targets``."""
        return dataclasses.replace(self, strict=strict, ignore_targets=ignore_targets)

    def to_json(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "stack_ok": self.stack_ok,
            "targets_ok": self.targets_ok,
            "exit_code": int(self.exit_code),
            "services": [s.to_json() for s in self.services],
            "checks": [c.to_json() for c in self.checks],
            "targets": [t.to_json() for t in self.targets],
            "alerts": self.alerts,
            "docker": self.docker or "reachable",
            "checked_at": self.checked_at.isoformat(timespec="seconds"),
        }

    def summary(self) -> str:
        """One line: the verdict and, when not healthy, what is wrong."""
        bad = [f"{s.name} {s.status}" for s in self.services if not s.ok]
        bad += [f"{c.service} {c.name}" for c in self.checks if c.severity == "stack" and not c.ok]
        down = [t.name for t in self.targets if t.state == "down"]
        code = f"(exit {int(self.exit_code)})"
        if not self.stack_ok:
            return f"UNHEALTHY: {', '.join(bad)} {code}"
        if down and self.strict:
            return f"UNHEALTHY (--strict): watched targets down: {', '.join(down)} {code}"
        if down:
            return f"STACK HEALTHY, watched targets down: {', '.join(down)} {code}"
        return f"HEALTHY: {len(self.services)} services ready {code}"

    def render(self, out: Output) -> None:
        table = out.table("service", "status", "state", "live", "ready", "latency", "detail")
        table.columns[0].no_wrap = True
        for s in self.services:
            state = f"{s.state} ({s.health})" if s.health else s.state
            table.add_row(
                s.name,
                styled(s.status),
                styled(state) if not s.health else state,
                _yes_no(s.live, "up", "down"),
                _yes_no(s.ready, "ready", "not ready"),
                f"{s.latency_ms:.0f} ms" if s.latency_ms is not None else "-",
                styled(s.detail) if s.detail else "",
            )
        out.print(table)
        if self.checks:
            checks = out.table("deep check", "result", "detail")
            for c in self.checks:
                result = "ok" if c.ok else ("failed" if c.severity == "stack" else "warning")
                checks.add_row(f"{c.service}: {c.name}", styled(result), styled(c.detail))
            out.print(checks)
        if self.targets:
            targets = out.table("watched target", "state", "seen by", "detail")
            for t in self.targets:
                name = f"{t.name} ({t.instance})" if t.instance else t.name
                targets.add_row(name, styled(t.state), t.source, styled(t.detail))
            out.print(targets)
        if self.alerts is not None:
            counts = ", ".join(f"{n} {sev}" for sev, n in self.alerts.items())
            out.print(f"firing alerts: {counts}")
        if self.docker:
            out.print(f"Docker not reachable ({self.docker}): container state unknown")
        style = "green" if self.exit_code == ExitCode.OK else "red"
        if self.exit_code == ExitCode.TARGETS_DOWN:
            style = "yellow"
        out.print(f"[{style}]{styled(self.summary())}[/{style}]")


def _yes_no(value: bool | None, yes: str, no: str) -> str:
    return "-" if value is None else styled(yes if value else no)


# -- one round --------------------------------------------------------------------


async def _containers(project: Project) -> tuple[dict[str, ContainerInfo] | None, str | None]:
    """What Docker knows of the project's containers, or (None, why not).

    Asked straight over the engine's API (no SDK import, no thread), so it runs
    beside the probes; a DOCKER_HOST only the SDK speaks (TLS, ssh) goes
    through the SDK in a worker thread instead."""
    from monctl.adapters import docker_api

    try:
        return await docker_api.inspect_project(project.name)
    except docker_api.Unsupported:
        return await asyncio.get_running_loop().run_in_executor(None, _containers_sdk, project)


async def _containers_after_probes(
    project: Project, services: tuple[Service, ...]
) -> tuple[dict[str, ContainerInfo] | None, str | None]:
    """``_containers``, but out of the probes' way when no probe needs it.

    When every URL is given by MONCTL_<SERVICE>_URL, Docker only fills in the
    container state, so it is asked once the probes are on the wire: asked at
    once, its client set-up delays sending them (bench/health_bench.py)."""
    if all(os.environ.get(s.url_var) for s in services):
        await asyncio.sleep(0.05)
    return await _containers(project)


def _containers_sdk(project: Project) -> tuple[dict[str, ContainerInfo] | None, str | None]:
    docker, reason = try_docker(project)
    if docker is None:
        return None, reason
    try:
        return docker.inspect_all(), None
    except MonctlError as exc:
        return None, exc.message


@dataclass
class _Probed:
    live: Fetched | None = None
    ready: Fetched | None = None
    deep: DeepResult | None = None


async def _probe_service(
    client: httpx.AsyncClient, endpoint: Endpoint, deep: bool, timeout: float
) -> _Probed:
    service, url = endpoint.service, endpoint.url
    if url is None:
        return _Probed()
    jobs: list[Any] = [fetch(client, url + service.liveness.path, timeout)]
    # postgres-exporter reads liveness and readiness off the same /metrics: ask once.
    separate_ready = service.readiness and service.readiness.path != service.liveness.path
    if separate_ready and service.readiness:
        jobs.append(fetch(client, url + service.readiness.path, timeout))
    deep_check = DEEP_CHECKS.get(service.name) if deep else None
    if deep_check:
        jobs.append(deep_check(client, url, timeout))
    results = await asyncio.gather(*jobs)
    live: Fetched = results[0]
    ready = results[1] if separate_ready else (live if service.readiness else None)
    return _Probed(live, ready, results[-1] if deep_check else None)


async def _probe_all(
    project: Project, services: tuple[Service, ...], deep: bool, timeout: float
) -> tuple[list[Endpoint], list[_Probed], dict[str, ContainerInfo] | None, str | None]:
    """Ask Docker and probe, overlapping the two: a service whose URL comes from
    MONCTL_<SERVICE>_URL is probed at once, while Docker is asked on the same
    event loop; the others wait for Docker to say where they listen. Returns
    the endpoints, their probes, and Docker's answer."""
    import httpx

    # Redirects are not followed (see probes.interpret); the pool is wide enough
    # for every probe of every service to be in flight at once. Loading the CA
    # bundle costs ~0.3 s and only an https override URL needs it (discovered and
    # .env URLs are plain http, and redirects are never followed).
    limits = httpx.Limits(max_connections=100, max_keepalive_connections=0)
    tls = any(os.environ.get(s.url_var, "").startswith("https:") for s in services)
    client = httpx.AsyncClient(follow_redirects=False, limits=limits, verify=tls)
    docker = asyncio.ensure_future(_containers_after_probes(project, services))

    async def one(service: Service) -> tuple[Endpoint, _Probed]:
        containers: dict[str, ContainerInfo] | None = {}
        if not os.environ.get(service.url_var):
            containers, _ = await docker
        endpoint = discover(project, (service,), containers)[service.name]
        return endpoint, await _probe_service(client, endpoint, deep, timeout)

    async with client:
        done = await asyncio.gather(*(one(s) for s in services))
    containers, reason = await docker
    # The same endpoints again, now carrying what Docker knows of each container.
    final = discover(project, services, containers)
    endpoints = [
        dataclasses.replace(final[e.service.name], url=e.url, source=e.source) for e, _ in done
    ]
    return endpoints, [p for _, p in done], containers, reason


def _unpublished(endpoint: Endpoint) -> str:
    info = endpoint.container
    if info is None:
        return "no container (not started?)"
    if info.state != "running":
        return f"container {info.state}"
    return f"container port {endpoint.service.container_port} is not published"


def _judge(
    endpoint: Endpoint, probed: _Probed, docker_known: bool
) -> tuple[ServiceHealth, tuple[Target, ...]]:
    service, info = endpoint.service, endpoint.container
    state = info.state if info else ("missing" if docker_known else "unknown")
    if endpoint.source == "env" and info is None:
        state = "unknown" if not docker_known else "n/a"  # e.g. a stack on another host
    health = info.health if info else None

    def result(status: Status, live: bool | None, ready: bool | None, detail: str) -> ServiceHealth:
        latencies = [f.latency_ms for f in (probed.live, probed.ready) if f is not None]
        latency = max(latencies) if latencies else None
        said = f"container {info.state}" if info else ""
        if info and info.state != "running" and status not in GOOD and said not in detail:
            detail = f"{said}; {detail}" if detail else said
        return ServiceHealth(
            service.name, status, state, health, live, ready, latency, detail, endpoint.url
        )

    if probed.live is None:
        return result("down", False, False, _unpublished(endpoint)), ()
    live = interpret(probed.live, service.liveness.kind, "liveness")
    if not live.ok:
        dead: Status = "down" if live.outcome == "down" else "unhealthy"
        return result(dead, False, False, live.detail), ()
    ready: Verdict | None = None
    if service.readiness and probed.ready is not None:
        ready = interpret(probed.ready, service.readiness.kind, "readiness")
    if ready is not None and not ready.ok:
        status: Status = "unhealthy" if ready.outcome == "unhealthy" else "not ready"
        detail = ready.detail if ready.outcome != "down" else f"readiness: {ready.detail}"
        return result(status, True, False, detail), ready.targets
    verdict = ready or live
    status = "degraded" if verdict.outcome == "degraded" else "healthy"
    if health == "unhealthy":
        return result("unhealthy", True, True, "Docker healthcheck reports unhealthy"), ()
    return result(status, True, True if ready else None, verdict.detail), verdict.targets


def check(
    project: Project,
    services: tuple[Service, ...],
    *,
    deep: bool = True,
    probe_timeout: float = 5.0,
) -> HealthReport:
    """Check ``services`` once, every probe concurrently, each within ``probe_timeout``.

    Return the report (never raise for an unhealthy stack). Raise ConfigError
    only for a malformed port in ``.env`` when Docker cannot be asked.
    """
    endpoints, probed, containers, docker_reason = asyncio.run(
        _probe_all(project, services, deep, probe_timeout)
    )
    rows: list[ServiceHealth] = []
    targets: list[Target] = []
    checks: list[Check] = []
    alerts: dict[str, dict[str, int]] = {}
    for endpoint, p in zip(endpoints, probed, strict=True):
        row, found = _judge(endpoint, p, containers is not None)
        rows.append(row)
        targets.extend(found)
        # Deep checks of a service that is not even live would only repeat "down".
        if p.deep is not None and row.live:
            checks.extend(p.deep.checks)
            targets.extend(p.deep.targets)
            if p.deep.alerts is not None:
                alerts[endpoint.service.name] = p.deep.alerts
    # Alertmanager sees every firing alert after routing; Prometheus is the fallback.
    firing = alerts.get("alertmanager", alerts.get("prometheus"))
    return HealthReport(tuple(rows), tuple(checks), tuple(targets), firing, docker_reason)


def progress_line(
    show: Callable[[str], None] | None, timeout: float
) -> Callable[[HealthReport], None] | None:
    """A ``wait`` progress callback that tells a person how far the stack is
    (``show`` comes from ``monctl.output.status_line``; None: nobody watches)."""
    if show is None:
        return None
    return lambda report: show(f"waiting ({timeout:g}s max): {report.summary()}")


def wait(
    project: Project,
    services: tuple[Service, ...],
    *,
    timeout: float,
    interval: float = 2.0,
    deep: bool = True,
    probe_timeout: float = 5.0,
    progress: Callable[[HealthReport], None] | None = None,
    strict: bool = False,
) -> HealthReport:
    """Check every ``interval`` seconds until the stack is ready (and, with
    ``strict``, every watched target is up) or ``timeout`` seconds have passed.

    Return the last report, ready or not; ``progress`` sees each one.
    """
    import tenacity

    deadline = time.monotonic() + timeout

    def attempt() -> HealthReport:
        # The last round must not outlive the deadline by a whole probe timeout.
        remaining = max(0.5, deadline - time.monotonic())
        report = check(
            project, services, deep=deep, probe_timeout=min(probe_timeout, remaining)
        ).with_policy(strict=strict)
        if progress is not None:
            progress(report)
        return report

    def not_done(report: HealthReport) -> bool:
        return not report.stack_ok or (strict and not report.targets_ok)

    def pause(retry_state: tenacity.RetryCallState) -> float:
        return max(0.0, min(interval, deadline - time.monotonic()))

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(not_done),
        stop=tenacity.stop_after_delay(timeout),
        wait=pause,
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
    report: HealthReport = retrying(attempt)
    return report
