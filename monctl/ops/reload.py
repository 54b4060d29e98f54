"""``monctl reload``: check a service's configuration, apply it, and confirm it is live.

Given a ``Stack`` (where each service answers, and how to check, restart and
inspect it) and the services to reload, ``reload`` returns a ``ReloadReport``
with one ``Outcome`` per service. It keeps going after a failure; the report's
exit code is the worst one seen (the highest number: a refused configuration,
CONFIG 6, outranks a failed reload, FAILED 1).

Per-service behaviour is the catalogue's ``reload`` strategy, looked up in
``STRATEGIES``:

- ``prometheus-lifecycle`` / ``alertmanager-lifecycle``: the check command runs
  first (``Stack.check``: ``docker exec`` in production, anything in tests); a
  failure stops before the service is touched. Then ``POST /-/reload`` and a
  confirmation read from the service's own metrics (success flag, a success
  timestamp newer than before, Alertmanager's config hash);
- ``grafana-provisioning``: dashboard JSON syntax, then the provisioning API;
- ``promtail-runtime``: ``POST /reload``, or a restart when runtime reload is off;
- ``restart``: no reload API upstream, so restart and wait until ready;
- ``none``: nothing to reload.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from monctl.adapters import http
from monctl.catalogue import ReloadKind, Service
from monctl.errors import ExitCode, MonctlError
from monctl.output import Output, styled
from monctl.project import Project

CONFIRM_TIMEOUT = 10.0  # seconds to see a reload in the metrics (Prometheus is synchronous)
READY_TIMEOUT = 120.0  # seconds for a restarted service to become ready


FAILED_RESULTS = ("failed", "refused", "restart needed")


@dataclass(frozen=True)
class Outcome:
    service: str
    result: (
        str  # confirmed, unchanged, restarted, restart needed, refused, failed, nothing to reload
    )
    summary: str
    details: tuple[str, ...] = ()  # the service's or the tool's own words
    hint: str | None = None
    exit_code: ExitCode | None = None  # default: FAILED for a failed result, else OK

    def __post_init__(self) -> None:
        if self.exit_code is None:
            bad = self.result in FAILED_RESULTS
            object.__setattr__(self, "exit_code", ExitCode.FAILED if bad else ExitCode.OK)

    @property
    def code(self) -> ExitCode:
        return self.exit_code if self.exit_code is not None else ExitCode.OK

    def to_json(self) -> dict[str, Any]:
        return {
            "service": self.service,
            "result": self.result,
            "ok": self.code == ExitCode.OK,
            "summary": self.summary,
            "details": list(self.details),
            "hint": self.hint,
            "exit_code": int(self.code),
        }


@dataclass(frozen=True)
class ReloadReport:
    outcomes: tuple[Outcome, ...]

    @property
    def exit_code(self) -> ExitCode:
        return max((o.code for o in self.outcomes), default=ExitCode.OK)

    def to_json(self) -> dict[str, Any]:
        return {
            "command": "reload",
            "ok": self.exit_code == ExitCode.OK,
            "exit_code": int(self.exit_code),
            "services": [o.to_json() for o in self.outcomes],
        }

    def render(self, out: Output) -> None:
        table = out.table("SERVICE", "RESULT", "DETAIL", title="reload")
        for o in self.outcomes:
            table.add_row(o.service, styled(o.result), styled(o.summary))
        out.print(table)
        for o in self.outcomes:
            # a success needs no more than its row; JSON keeps the details
            if o.code == ExitCode.OK and not o.hint:
                continue
            out.print(f"{o.service}:")
            for line in o.details:
                out.print(f"  | {line}")
            if o.hint:
                out.print(f"  hint: {o.hint}")


@dataclass
class Stack:
    """The running stack as reload needs it; every action is a replaceable function.

    Production builds one from Docker (``from_docker``); the integration tests
    build one around host binaries (``check`` runs host promtool on the same files).
    """

    project: Project
    urls: dict[str, str | None]  # base URL per service name; None: not published
    check: Callable[[Service], tuple[int, str]] | None  # None: --no-validate
    restart: Callable[[Service], None]
    wait_ready: Callable[[Service], str | None]  # None when ready, else why not
    not_running: Callable[[Service], str | None] = lambda s: None  # why it can't be reloaded
    started_env: Callable[[Service], dict[str, str] | None] = lambda s: None
    say: Callable[[str], None] = lambda message: None
    validate: bool = field(init=False)

    def __post_init__(self) -> None:
        self.validate = self.check is not None


# -- Prometheus and Alertmanager: check, POST /-/reload, confirm --------------------
@dataclass(frozen=True)
class Lifecycle:
    ok_metric: str
    timestamp_metric: str
    hash_metric: str | None  # changes when the file did (Alertmanager)
    # .env values the container takes only when it starts (written to files by
    # config/alertmanager/entrypoint.sh): a reload cannot apply a change to them.
    start_env: tuple[str, ...] = ()


LIFECYCLES: dict[ReloadKind, Lifecycle] = {
    "prometheus-lifecycle": Lifecycle(
        "prometheus_config_last_reload_successful",
        "prometheus_config_last_reload_success_timestamp_seconds",
        None,
    ),
    "alertmanager-lifecycle": Lifecycle(
        "alertmanager_config_last_reload_successful",
        "alertmanager_config_last_reload_success_timestamp_seconds",
        "alertmanager_config_hash",
        ("SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY", "SMTP_PASSWORD"),
    ),
}


@dataclass(frozen=True)
class _Metrics:
    ok: float | None
    timestamp: float | None
    hash: float | None


def _read_metrics(url: str, spec: Lifecycle, title: str) -> _Metrics:
    response = http.call("GET", f"{url}/metrics", what=f"reading {title}'s metrics")
    text = response.text
    return _Metrics(
        http.metric_value(text, spec.ok_metric),
        http.metric_value(text, spec.timestamp_metric),
        http.metric_value(text, spec.hash_metric) if spec.hash_metric else None,
    )


def _confirm(url: str, spec: Lifecycle, title: str, before: _Metrics) -> _Metrics:
    """Poll the metrics until they show a successful reload newer than ``before``."""
    import tenacity

    def confirmed(m: _Metrics) -> bool:
        return m.ok == 1 and (m.timestamp or 0) > (before.timestamp or 0)

    retrying = tenacity.Retrying(
        retry=tenacity.retry_if_result(lambda m: not confirmed(m))
        | tenacity.retry_if_exception_type(MonctlError),
        stop=tenacity.stop_after_delay(CONFIRM_TIMEOUT),
        wait=tenacity.wait_fixed(0.25),
        retry_error_callback=lambda state: state.outcome.result() if state.outcome else None,
    )
    result: _Metrics = retrying(_read_metrics, url, spec, title)
    return result


def _lifecycle(service: Service, stack: Stack) -> Outcome:
    spec = LIFECYCLES[service.reload]
    url = _url(service, stack)
    title = service.title
    if stack.check is not None:
        tool = service.validate[0]
        stack.say(f"{service.name}: checking the configuration with {tool} (inside the container)")
        code, output = stack.check(service)
        if code != 0:
            return Outcome(
                service.name,
                "refused",
                f"{tool} found errors; {title} was not touched (its running configuration stays)",
                _lines(output),
                f"fix the file named above, then run `monctl reload {service.name}` again",
                ExitCode.CONFIG,
            )
    before = _read_metrics(url, spec, title)
    stack.say(f"{service.name}: POST {url}/-/reload")
    response = http.call("POST", f"{url}/-/reload", what=f"reloading {title}", timeout=60)
    if response.status_code == 403:
        return Outcome(
            service.name,
            "failed",
            f"{title} refused the reload (403): its lifecycle API is off",
            _lines(response.text),
            f"add --web.enable-lifecycle to the {service.name} `command:` in "
            f"compose/docker-compose.monitoring.yml, then `monctl up {service.name}`",
        )
    if response.status_code >= 300:
        return Outcome(
            service.name,
            "failed",
            f"{title} rejected the new configuration ({response.status_code}); "
            "the previous configuration is still active",
            _lines(response.text),
            f"fix the error above (`monctl validate {service.name}` shows it with file and line)",
        )
    after = _confirm(url, spec, title, before)
    if after.ok != 1 or (after.timestamp or 0) <= (before.timestamp or 0):
        return Outcome(
            service.name,
            "failed",
            f"{title} answered {response.status_code} but its metrics do not confirm the reload "
            f"({spec.ok_metric} = {after.ok})",
            hint=f"look at `monctl logs {service.name}`",
        )
    outcome = Outcome(service.name, "confirmed", "new configuration active (confirmed by metrics)")
    if spec.hash_metric and after.hash == before.hash:
        outcome = Outcome(
            service.name, "unchanged", "reloaded; the file is unchanged (same config hash)"
        )
    return _start_env_drift(service, stack, spec, outcome)


def _start_env_drift(service: Service, stack: Stack, spec: Lifecycle, outcome: Outcome) -> Outcome:
    """Say when .env values the container reads only at start differ from the running ones."""
    if not spec.start_env:
        return outcome
    running = stack.started_env(service)
    if running is None:
        return outcome
    changed = [n for n in spec.start_env if running.get(n, "") != stack.project.setting(n)]
    if not changed:
        return outcome
    return Outcome(
        service.name,
        "restart needed",
        f"{outcome.summary}; but {', '.join(changed)} changed in .env since the container "
        "started, and only a restart applies them",
        hint=f"run `monctl up {service.name}` to recreate the container with the new values",
        exit_code=ExitCode.FAILED,
    )


# -- Grafana: the provisioning API --------------------------------------------------
GRAFANA_PARTS = ("dashboards", "datasources", "alerting")


def _grafana(service: Service, stack: Stack) -> Outcome:
    from monctl.ops.validate import dashboard_syntax

    if stack.validate:
        problems = dashboard_syntax(stack.project.root)
        if problems:
            return Outcome(
                service.name,
                "refused",
                "dashboard JSON is invalid; Grafana was not touched",
                tuple(p.describe() for p in problems),
                "fix the file and line named above, then reload again",
                ExitCode.CONFIG,
            )
    url = _url(service, stack)
    auth = (
        stack.project.setting("GRAFANA_ADMIN_USER", "admin"),
        stack.project.setting("GRAFANA_ADMIN_PASSWORD"),
    )
    done: list[str] = []
    failed: list[str] = []
    for part in GRAFANA_PARTS:
        stack.say(f"grafana: reloading provisioned {part}")
        path = f"{url}/api/admin/provisioning/{part}/reload"
        response = http.call("POST", path, what=f"reloading Grafana {part}", auth=auth)
        if response.status_code == 401:
            return Outcome(
                service.name,
                "failed",
                "Grafana refused the admin credentials from .env (the password in .env "
                "applies only on first start of an empty volume)",
                (*(f"{p}: reloaded" for p in done), f"{part}: 401 {http.body_excerpt(response)}"),
                "set GRAFANA_ADMIN_PASSWORD in .env to Grafana's current admin password "
                "(or reset it with `grafana cli admin reset-admin-password`)",
            )
        if response.status_code >= 300:
            failed.append(f"{part}: {response.status_code} {http.body_excerpt(response)}")
        else:
            done.append(part)
    details = (*(f"{p}: reloaded" for p in done), *failed)
    if failed:
        return Outcome(
            service.name,
            "failed",
            f"{len(failed)} of {len(GRAFANA_PARTS)} provisioning reloads failed",
            details,
            "see Grafana's log: `monctl logs grafana`",
        )
    return Outcome(service.name, "confirmed", f"reloaded {', '.join(done)}", details)


# -- Promtail, Loki: runtime reload or restart --------------------------------------
def _promtail(service: Service, stack: Stack) -> Outcome:
    url = _url(service, stack)
    stack.say(f"{service.name}: POST {url}/reload")
    response = http.call("POST", f"{url}/reload", what=f"reloading {service.title}", timeout=60)
    if response.status_code == 404:
        return _restart(
            service,
            stack,
            f"runtime reload is off (no -server.enable-runtime-reload); restarted {service.title}",
        )
    if response.status_code >= 300:
        return Outcome(
            service.name,
            "failed",
            f"{service.title} rejected the new configuration ({response.status_code}); "
            "the previous configuration is still active",
            _lines(response.text),
        )
    return Outcome(service.name, "confirmed", "runtime reload accepted")


def _restart(service: Service, stack: Stack, summary: str | None = None) -> Outcome:
    stack.say(f"{service.name}: restarting the container")
    started = time.monotonic()
    stack.restart(service)
    why_not = stack.wait_ready(service)
    took = time.monotonic() - started
    if why_not is not None:
        return Outcome(
            service.name,
            "failed",
            f"restarted, but {service.title} is not ready: {why_not}",
            hint=f"look at `monctl logs {service.name}`",
        )
    text = summary or f"{service.title} has no reload API; restarted"
    return Outcome(service.name, "restarted", f"{text} (ready after {took:.0f}s)")


def _nothing(service: Service, stack: Stack) -> Outcome:
    return Outcome(service.name, "nothing to reload", "configured by flags only")


Strategy = Callable[[Service, Stack], Outcome]
STRATEGIES: dict[ReloadKind, Strategy] = {
    "prometheus-lifecycle": _lifecycle,
    "alertmanager-lifecycle": _lifecycle,
    "grafana-provisioning": _grafana,
    "promtail-runtime": _promtail,
    "restart": _restart,
    "none": _nothing,
}


def _url(service: Service, stack: Stack) -> str:
    url = stack.urls.get(service.name)
    if not url:
        from monctl.errors import OperationFailed

        raise OperationFailed(
            f"{service.name} publishes no port monctl can reach",
            hint=f"check {service.port_var} in .env, or set {service.url_var}",
        )
    return url


def _lines(text: str, limit: int = 40) -> tuple[str, ...]:
    from monctl.secrets import redact

    lines = [line.rstrip() for line in redact(text).strip().splitlines() if line.strip()]
    return tuple(lines[:limit])


def reload(stack: Stack, services: tuple[Service, ...]) -> ReloadReport:
    """Reload each of ``services`` in turn; one failure never stops the others."""
    outcomes: list[Outcome] = []
    for service in services:
        if service.reload != "none":
            reason = stack.not_running(service)
            if reason is not None:
                outcomes.append(
                    Outcome(
                        service.name,
                        "refused",
                        reason,
                        hint=f"start it with `monctl up {service.name}`; "
                        f"`monctl validate {service.name}` checks files without a running stack",
                        exit_code=ExitCode.FAILED,
                    )
                )
                continue
        try:
            outcomes.append(STRATEGIES[service.reload](service, stack))
        except MonctlError as exc:
            outcomes.append(
                Outcome(service.name, "failed", exc.message, hint=exc.hint, exit_code=exc.exit_code)
            )
    return ReloadReport(tuple(outcomes))


def from_docker(
    project: Project, services: tuple[Service, ...], validate: bool, out: Output
) -> Stack:
    """The production ``Stack``: endpoints, checks and restarts through Docker.

    Raise DockerUnavailable when the engine cannot be reached.
    """
    from monctl.adapters.docker import Docker
    from monctl.ops import health
    from monctl.ops.endpoints import discover

    docker = Docker(project.name)
    containers = docker.inspect_all()
    endpoints = discover(project, services, containers)

    def not_running(service: Service) -> str | None:
        info = containers.get(service.name)
        if info is None or info.state != "running":
            state = info.state if info else "no container"
            return (
                f"{service.name} is not running ({state}): nothing to reload, "
                "and its checks run inside it"
            )
        return None

    def check(service: Service) -> tuple[int, str]:
        return docker.exec(service.name, list(service.validate))

    def wait_ready(service: Service) -> str | None:
        report = health.wait(project, (service,), timeout=READY_TIMEOUT, deep=False)
        if report.stack_ok:
            return None
        row = report.services[0] if report.services else None
        return row.detail if row else "not ready"

    return Stack(
        project=project,
        urls={name: e.url for name, e in endpoints.items()},
        check=check if validate else None,
        restart=lambda s: docker.restart(s.name),
        wait_ready=wait_ready,
        not_running=not_running,
        started_env=lambda s: docker.container_env(s.name),
        say=out.info,
    )
