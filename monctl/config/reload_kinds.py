"""How each kind of reload is carried out: one function per kind of declaration.

``apply`` looks at the type of the service's ``reload`` declaration
(``monctl.services.model``) and runs the matching function; each returns an
``Outcome``. The checks before the reload are ``Context.refusal`` (in
``reload``); the service-specific words (a metric's name, a hint) come from
the declaration, never from here.
"""

from __future__ import annotations

import contextlib
import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from monctl import credentials
from monctl.adapters import http
from monctl.config.reload import lines
from monctl.config.reload_report import Outcome
from monctl.errors import ExitCode, MonctlError
from monctl.services.answers import metric_value
from monctl.services.model import (
    HttpReload,
    NoReload,
    ProvisioningReload,
    Reload,
    ReloadMetrics,
    RestartReload,
    Service,
)

if TYPE_CHECKING:  # pragma: no cover
    from monctl.config.reload import Context

CONFIRM_TIMEOUT = 10.0  # seconds to see a reload in the metrics (Prometheus is synchronous)


def apply(service: Service, ctx: Context) -> Outcome:
    """Reload ``service`` the way its declaration says (on Swarm: by rolling it out)."""
    spec = service.reload
    if not ctx.runtime.live_config and not isinstance(spec, NoReload):
        return roll(service, spec, ctx)
    if isinstance(spec, HttpReload):
        return http_reload(service, spec, ctx)
    if isinstance(spec, ProvisioningReload):
        return provisioning(service, spec, ctx)
    if isinstance(spec, RestartReload):
        refused = ctx.refusal(service)
        return refused or restart(service, ctx, f"{spec.why}; restarted")
    assert isinstance(spec, NoReload)
    return Outcome(service.name, "nothing to reload", spec.why)


# -- an HTTP reload endpoint, confirmed by metrics or by its answer -------------------


@dataclass(frozen=True)
class _Metrics:
    ok: float | None
    timestamp: float | None
    hash: float | None


def _read_metrics(ctx: Context, service: Service, url: str, spec: ReloadMetrics) -> _Metrics:
    response = credentials.to_service(
        ctx.project, service, "GET", f"{url}/metrics", what=f"reading {service.title}'s metrics"
    )
    text = response.text
    return _Metrics(
        metric_value(text, spec.ok),
        metric_value(text, spec.timestamp),
        metric_value(text, spec.hash) if spec.hash else None,
    )


def _confirm(
    ctx: Context, service: Service, url: str, spec: ReloadMetrics, before: _Metrics
) -> _Metrics:
    """Poll the metrics until they show a successful reload newer than ``before``."""
    deadline = time.monotonic() + CONFIRM_TIMEOUT
    latest = before
    while True:
        # A restarting endpoint: ask again until the deadline.
        with contextlib.suppress(MonctlError):
            latest = _read_metrics(ctx, service, url, spec)
        if latest.ok == 1 and (latest.timestamp or 0) > (before.timestamp or 0):
            return latest
        if time.monotonic() >= deadline:
            return latest
        time.sleep(0.25)


def http_reload(service: Service, spec: HttpReload, ctx: Context) -> Outcome:
    refused = ctx.refusal(service)
    if refused is not None:
        return refused
    url = ctx.url(service)
    title = service.title
    before = _read_metrics(ctx, service, url, spec.confirm) if spec.confirm else None
    ctx.progress.note(f"{service.name}: POST {url}{spec.path}")
    response = credentials.to_service(
        ctx.project, service, "POST", f"{url}{spec.path}", what=f"reloading {title}", timeout=60
    )
    status = response.status_code
    if spec.off_status is not None and status == spec.off_status:
        return Outcome(
            service.name,
            "failed",
            f"{title} refused the reload ({status}): {spec.off_reason}",
            lines(response.text),
            spec.off_hint or None,
        )
    if status == 404 and spec.missing_restarts:
        return restart(
            service, ctx, f"runtime reload is off (404 from {spec.path}); restarted {title}"
        )
    if status >= 300:
        if spec.unchanged and spec.unchanged in response.text:
            return _start_secrets_drift(
                service,
                ctx,
                Outcome(service.name, "unchanged", "the file is unchanged (nothing to reload)"),
            )
        return Outcome(
            service.name,
            "failed",
            f"{title} rejected the new configuration ({status}); "
            "the previous configuration is still active",
            lines(response.text),
            f"fix the error above (`monctl validate {service.name}` shows it with file and line)",
        )
    if spec.confirm is None or before is None:
        return _start_secrets_drift(
            service, ctx, Outcome(service.name, "confirmed", "reload accepted")
        )
    after = _confirm(ctx, service, url, spec.confirm, before)
    if after.ok != 1 or (after.timestamp or 0) <= (before.timestamp or 0):
        return Outcome(
            service.name,
            "failed",
            f"{title} answered {status} but its metrics do not confirm the reload "
            f"({spec.confirm.ok} = {after.ok})",
            hint=f"look at `monctl logs {service.name}`",
        )
    outcome = Outcome(service.name, "confirmed", "new configuration active (confirmed by metrics)")
    if spec.confirm.hash and after.hash == before.hash:
        outcome = Outcome(
            service.name, "unchanged", "reloaded; the file is unchanged (same config hash)"
        )
    return _start_secrets_drift(service, ctx, outcome)


def _start_secrets_drift(service: Service, ctx: Context, outcome: Outcome) -> Outcome:
    """Say when .env values the container reads only at start differ from the running ones."""
    if not service.start_secrets:
        return outcome
    running = ctx.runtime.started_env(service)
    if running is None:
        return outcome
    names = [s.var for s in service.start_secrets]
    changed = [n for n in names if running.get(n, "") != ctx.project.setting(n)]
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


# -- a provisioning API with admin credentials ------------------------------------------


def provisioning(service: Service, spec: ProvisioningReload, ctx: Context) -> Outcome:
    refused = ctx.refusal(service)
    if refused is not None:
        return refused
    url = ctx.url(service)
    auth = (
        ctx.project.setting(spec.user_var, spec.default_user),
        ctx.project.setting(spec.password_var),
    )
    done: list[str] = []
    failed: list[str] = []
    for part in spec.parts:
        ctx.progress.note(f"{service.name}: reloading provisioned {part}")
        path = url + spec.path.format(part=part)
        response = http.call("POST", path, what=f"reloading {service.title} {part}", auth=auth)
        if response.status_code == 401:
            return Outcome(
                service.name,
                "failed",
                f"{service.title} refused the admin credentials from .env (the password in "
                ".env applies only on first start of an empty volume)",
                (*(f"{p}: reloaded" for p in done), f"{part}: 401 {http.body_excerpt(response)}"),
                spec.credentials_hint or None,
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
            f"{len(failed)} of {len(spec.parts)} provisioning reloads failed",
            details,
            f"see its log: `monctl logs {service.name}`",
        )
    return Outcome(service.name, "confirmed", f"reloaded {', '.join(done)}", details)


# -- rolled out: the service holds copies of its files (Swarm) ------------------------------


def roll(service: Service, spec: Reload, ctx: Context) -> Outcome:
    """Check the files, roll the service onto them (new tasks), then confirm as an
    in-place reload is confirmed: the reload metrics (and config hash), else readiness."""
    refused = ctx.refusal(service)
    if refused is not None:
        return refused
    title = service.title
    confirm = spec.confirm if isinstance(spec, HttpReload) else None
    url = ctx.url(service) if confirm else ""
    before = _read_metrics(ctx, service, url, confirm) if confirm else None
    started = time.monotonic()
    if not ctx.runtime.roll_out(service, ctx.progress):
        return Outcome(service.name, "unchanged", "configuration and secrets unchanged")
    why_not = ctx.ready_or_why(service)
    took = time.monotonic() - started
    if why_not is not None:
        return Outcome(
            service.name,
            "failed",
            f"rolled out, but {title} is not ready: {why_not}",
            hint=f"look at `monctl logs {service.name}`",
        )
    if confirm is None or before is None:
        return Outcome(service.name, "confirmed", f"rolled out; ready after {took:.0f}s")
    after = _confirm(ctx, service, url, confirm, before)
    if after.ok != 1 or (after.timestamp or 0) <= (before.timestamp or 0):
        return Outcome(
            service.name,
            "failed",
            f"rolled out, but {title}'s metrics do not confirm the new configuration "
            f"({confirm.ok} = {after.ok})",
            hint=f"look at `monctl logs {service.name}`",
        )
    summary = "new configuration active (rolled out; confirmed by metrics)"
    if confirm.hash and after.hash == before.hash:
        summary = "rolled out (a secret changed; same config hash, confirmed by metrics)"
    return Outcome(service.name, "confirmed", summary)


# -- a restart -------------------------------------------------------------------------


def restart(service: Service, ctx: Context, summary: str) -> Outcome:
    ctx.progress.note(f"{service.name}: restarting the container")
    started = time.monotonic()
    ctx.runtime.restart(service)
    why_not = ctx.ready_or_why(service)
    took = time.monotonic() - started
    if why_not is not None:
        return Outcome(
            service.name,
            "failed",
            f"restarted, but {service.title} is not ready: {why_not}",
            hint=f"look at `monctl logs {service.name}`",
        )
    return Outcome(service.name, "restarted", f"{summary} (ready after {took:.0f}s)")
