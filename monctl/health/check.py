"""One round of health checks, every service at once; and ``wait`` for a ready stack.

Given a project, its runtime and the services to check, ``check`` returns a
``HealthReport`` (``report.py``); ``wait`` repeats it until the stack is ready
or a timeout passes (``up``, ``reload`` and ``restore`` wait with the same
code). Nothing here raises for an unhealthy stack: the report says what is
wrong, and its exit code how bad it is. The engine being unreachable is not
an error either: container state is then "unknown", and the endpoints come
from ``MONCTL_<SERVICE>_URL`` or ``.env``.
"""

from __future__ import annotations

import asyncio
import dataclasses
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from monctl import credentials
from monctl import services as declared
from monctl.adapters.http_probe import ProbeClient
from monctl.health.endpoints import Endpoint, discover, override
from monctl.health.probes import fetch, interpret
from monctl.health.report import GOOD, HealthReport, ServiceHealth, Status
from monctl.result import SILENT, Progress
from monctl.services.answers import Check, DeepResult, Fetched, Target, Verdict
from monctl.services.model import Service

if TYPE_CHECKING:  # pragma: no cover
    from monctl.project import Project
    from monctl.runtime import NodeTask, Runtime, ServiceState


@dataclass
class _Probed:
    live: Fetched | None = None
    ready: Fetched | None = None
    deep: DeepResult | None = None
    scrape: Fetched | None = None  # the scraper's targets, for a service on every node
    scraper: Service | None = None


Get = Callable[[str], Awaitable[Fetched]]


async def _probe_service(get: Get, endpoint: Endpoint, deep: bool) -> _Probed:
    service, url = endpoint.service, endpoint.url
    if url is None:
        return _Probed()
    jobs: list[Any] = [get(url + service.liveness.path)]
    # postgres-exporter reads liveness and readiness off the same /metrics: ask once.
    separate_ready = service.readiness and service.readiness.path != service.liveness.path
    if separate_ready and service.readiness:
        jobs.append(get(url + service.readiness.path))
    deep_check = service.deep if deep else None
    if deep_check is not None:
        jobs.append(deep_check(get, url))
    results = await asyncio.gather(*jobs)
    live: Fetched = results[0]
    ready = results[1] if separate_ready else (live if service.readiness else None)
    return _Probed(live, ready, results[-1] if deep_check else None)


async def _probe_all(
    project: Project, runtime: Runtime, services: tuple[Service, ...], deep: bool, timeout: float
) -> tuple[list[Endpoint], list[_Probed], dict[str, ServiceState] | None, str | None]:
    """Ask the runtime and probe, overlapping the two: a service whose URL comes
    from MONCTL_<SERVICE>_URL is probed at once, while the runtime is asked on
    the same event loop; the others wait for it to say where they listen."""
    # Redirects are not followed (see probes.interpret). Loading the CA bundle
    # costs ~0.3 s and only an https override URL needs it.
    tls = any((override(s) or "").startswith("https:") for s in services)
    client = ProbeClient(tls)

    async def ask_runtime() -> tuple[dict[str, ServiceState] | None, str | None]:
        # When every URL is given, the runtime only fills in the container state:
        # asked at once, its client set-up delays sending the probes (bench/health_bench.py).
        if all(override(s) for s in services):
            await asyncio.sleep(0.05)
        return await runtime.states_async()

    states_job = asyncio.ensure_future(ask_runtime())
    answers: dict[str, asyncio.Future[Fetched]] = {}

    def getter(service: Service) -> Get:
        """GET for ``service``'s URLs, with the credentials it requires (if any)."""
        auth = credentials.auth(project, service)

        def get(url: str) -> asyncio.Future[Fetched]:
            # One request per URL and round: the scraper's targets serve its own deep
            # check and every service on every node alike.
            if url not in answers:
                answers[url] = asyncio.ensure_future(fetch(client, url, timeout, auth))
            return answers[url]

        return get

    async def one(service: Service) -> tuple[Endpoint, _Probed]:
        states: dict[str, ServiceState] | None = {}
        if not override(service):
            states, _ = await states_job
        endpoint = discover(project, runtime, (service,), states)[service.name]
        scraper = next((s for s in declared.SERVICES if s.scrapes), None)
        if (
            endpoint.url is None
            and endpoint.state is not None
            and service.placement == "every-node"
            and scraper is not None
            and scraper.scrapes is not None
        ):
            # Its tasks run on every node, reachable only over the overlay network:
            # how the scraper sees each of them is the answer (one query for all).
            via = discover(project, runtime, (scraper,), states)[scraper.name]
            answer = (
                await getter(scraper)(via.url + scraper.scrapes.path)
                if via.url
                else Fetched("", None, error=f"{scraper.name} publishes no port")
            )
            return endpoint, _Probed(scrape=answer, scraper=scraper)
        return endpoint, await _probe_service(getter(service), endpoint, deep)

    tasks = [asyncio.ensure_future(one(s)) for s in services]
    async with client:
        try:
            done = await asyncio.gather(*tasks)
        except BaseException:
            # One probe failed outright: stop the others before the client closes,
            # or each dies on the closed client and asyncio reports it at shutdown.
            for task in (*tasks, states_job):
                task.cancel()
            await asyncio.gather(*tasks, states_job, return_exceptions=True)
            raise
    states, reason = await states_job
    # The same endpoints again, now carrying what the runtime knows of each service.
    final = discover(project, runtime, services, states)
    endpoints = [
        dataclasses.replace(final[e.service.name], url=e.url, source=e.source) for e, _ in done
    ]
    return endpoints, [p for _, p in done], states, reason


def _unpublished(endpoint: Endpoint) -> str:
    state = endpoint.state
    if state is None:
        return "no container (not started?)"
    if state.state != "running":
        return f"container {state.state}"
    return f"container port {endpoint.service.container_port} is not published"


def _node_problem(task: NodeTask) -> str:
    if task.state == "missing":
        return f"global service missing on node {task.node}"
    return f"task on node {task.node}: {task.state}" + (f" ({task.error})" if task.error else "")


def _scraped(service: Service, answer: Fetched, scraper: Service) -> tuple[Status, str, bool]:
    """(status, detail, live) of a service on every node, from its scraper's targets:
    one target per node (instance = the node)."""
    who = scraper.title
    assert scraper.scrapes is not None
    if answer.status is None:
        return (
            "not ready",
            f"cannot tell: {who}, which scrapes it, did not answer ({answer.error})",
            False,
        )
    rows = scraper.scrapes.read(answer)
    if rows is None:
        return "not ready", f"cannot tell: {who} answered {answer.status} {answer.excerpt()}", False
    mine = [t for t in rows if t.job == service.name]
    if not mine:
        return "not ready", f"{who} has found no {service.name} target yet", False
    down = [t for t in mine if t.state == "down"]
    pending = [t for t in mine if t.state == "unknown"]
    up = len(mine) - len(down) - len(pending)
    if down:
        named = "; ".join(f"down on node {t.instance}: {t.detail or 'scrape failed'}" for t in down)
        return ("unhealthy" if up else "down"), named, up > 0
    if pending:
        return (
            "not ready",
            f"{len(pending)} of {len(mine)} node(s) not scraped by {who} yet",
            up > 0,
        )
    return "healthy", f"up on {up} node(s), as {who} scrapes it", True


def _judge(
    endpoint: Endpoint, probed: _Probed, runtime_known: bool
) -> tuple[ServiceHealth, tuple[Target, ...]]:
    service, info = endpoint.service, endpoint.state
    state = info.state if info else ("missing" if runtime_known else "unknown")
    if endpoint.source == "env" and info is None:
        state = "unknown" if not runtime_known else "n/a"  # e.g. a stack on another host
    health = info.health if info else None

    def result(status: Status, live: bool | None, ready: bool | None, detail: str) -> ServiceHealth:
        latencies = [f.latency_ms for f in (probed.live, probed.ready) if f is not None]
        latency = max(latencies) if latencies else None
        said = f"container {info.state}" if info else ""
        if info and info.state != "running" and status not in GOOD and said not in detail:
            detail = f"{said}; {detail}" if detail else said
        problems = [_node_problem(t) for t in (info.nodes if info else ()) if t.state != "running"]
        if problems and status in GOOD:
            status, detail = "unhealthy", "; ".join(problems)
        return ServiceHealth(
            service.name,
            status,
            state,
            health,
            live,
            ready,
            latency,
            detail,
            endpoint.url,
            service.readiness is not None,
        )

    if probed.scrape is not None and probed.scraper is not None:
        seen, detail, up = _scraped(service, probed.scrape, probed.scraper)
        return result(seen, up, None, detail), ()
    if probed.live is None:
        return result("down", False, False, _unpublished(endpoint)), ()
    live = interpret(probed.live, service.liveness, "liveness")
    if not live.ok:
        dead: Status = "down" if live.outcome == "down" else "unhealthy"
        return result(dead, False, False, live.detail), ()
    ready: Verdict | None = None
    if service.readiness and probed.ready is not None:
        ready = interpret(probed.ready, service.readiness, "readiness")
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
    runtime: Runtime,
    services: tuple[Service, ...],
    *,
    deep: bool = True,
    probe_timeout: float = 5.0,
) -> HealthReport:
    """Check ``services`` once, every probe concurrently, each within ``probe_timeout``.

    Return the report (never raise for an unhealthy stack). Raise ConfigError
    for a malformed port in ``.env`` (of a service without a URL override),
    before any probe: the event loop never sees it.
    """
    for service in services:
        if not override(service):
            project.host_port(service)
    endpoints, probed, states, reason = asyncio.run(
        _probe_all(project, runtime, services, deep, probe_timeout)
    )
    rows: list[ServiceHealth] = []
    targets: list[Target] = []
    checks: list[Check] = []
    alerts: list[tuple[int, dict[str, int]]] = []
    for endpoint, p in zip(endpoints, probed, strict=True):
        row, found = _judge(endpoint, p, states is not None)
        rows.append(row)
        targets.extend(found)
        # Deep checks of a service that is not even live would only repeat "down".
        if p.deep is not None and row.live:
            checks.extend(p.deep.checks)
            targets.extend(p.deep.targets)
            if p.deep.alerts is not None:
                alerts.append((p.deep.alerts_rank, p.deep.alerts))
    firing = max(alerts, key=lambda a: a[0])[1] if alerts else None
    return HealthReport(tuple(rows), tuple(checks), tuple(targets), firing, reason)


def wait(
    project: Project,
    runtime: Runtime,
    services: tuple[Service, ...],
    *,
    timeout: float,
    interval: float = 2.0,
    deep: bool = True,
    probe_timeout: float = 5.0,
    progress: Progress = SILENT,
    strict: bool = False,
) -> HealthReport:
    """Check every ``interval`` seconds until the stack is ready (and, with
    ``strict``, every watched target is up) or ``timeout`` seconds have passed.

    Return the last report, ready or not; ``progress.status`` hears how far it is.
    """
    deadline = time.monotonic() + timeout
    while True:
        # The last round must not outlive the deadline by a whole probe timeout.
        remaining = max(0.5, deadline - time.monotonic())
        report = check(
            project, runtime, services, deep=deep, probe_timeout=min(probe_timeout, remaining)
        ).with_policy(strict=strict)
        progress.status(f"waiting ({timeout:g}s max): {report.summary()}")
        done = report.stack_ok and (report.targets_ok or not strict)
        pause = min(interval, deadline - time.monotonic())
        if done or pause <= 0:
            return report
        time.sleep(pause)


def ready_or_why(
    project: Project, runtime: Runtime, service: Service, timeout: float, interval: float = 2.0
) -> str | None:
    """Wait until ``service`` is ready: None when it is, else why not (for messages)."""
    report = wait(project, runtime, (service,), timeout=timeout, deep=False, interval=interval)
    if report.stack_ok:
        return None
    row = report.services[0] if report.services else None
    return f"{row.status}: {row.detail}" if row else "no answer"
