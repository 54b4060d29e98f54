"""How each kind of service is reloaded: one function per catalogue ``reload`` strategy.

``monctl.ops.reload.STRATEGIES`` maps the strategy names to these functions;
each takes the ``Service`` and the ``Stack`` (defined in ``reload``, which
imports this module: hence the type-only import) and returns an ``Outcome``.
See ``monctl.ops.reload`` for what each strategy promises.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monctl.adapters import http
from monctl.catalogue import ReloadKind, Service
from monctl.errors import ExitCode, MonctlError
from monctl.ops.grafana_config import dashboard_problems
from monctl.ops.reload_report import Outcome

if TYPE_CHECKING:
    from monctl.ops.reload import Stack

CONFIRM_TIMEOUT = 10.0  # seconds to see a reload in the metrics (Prometheus is synchronous)


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


def lifecycle(service: Service, stack: Stack) -> Outcome:
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


def grafana_provisioning(service: Service, stack: Stack) -> Outcome:
    if stack.validate:
        problems = dashboard_problems(stack.project.root)
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
def promtail_runtime(service: Service, stack: Stack) -> Outcome:
    url = _url(service, stack)
    stack.say(f"{service.name}: POST {url}/reload")
    response = http.call("POST", f"{url}/reload", what=f"reloading {service.title}", timeout=60)
    if response.status_code == 404:
        return restart(
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


def restart(service: Service, stack: Stack, summary: str | None = None) -> Outcome:
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


def nothing(service: Service, stack: Stack) -> Outcome:
    return Outcome(service.name, "nothing to reload", "configured by flags only")


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
