"""reload, validate: apply configuration to the running stack, or check it before deploying."""

from __future__ import annotations

import click

from monctl.cli import AppContext
from monctl.cli.common import ServiceChoice, epilog, finish, json_option, output, services_argument


@click.command(epilog=epilog("reload"))
@click.argument(
    "services",
    nargs=-1,
    required=True,
    type=ServiceChoice(extra=("all",)),
    metavar="SERVICE... | all",
)
@click.option(
    "--no-validate",
    is_flag=True,
    help="Skip the checks before reloading (promtool, amtool, loki, promtail, dashboard JSON).",
)
@json_option
@click.pass_obj
def reload(app: AppContext, services: tuple[str, ...], no_validate: bool, as_json: bool) -> None:
    """Check, reload and confirm the configuration of SERVICEs (or all).

    Each service's own check runs first (inside the running container: promtool,
    amtool, loki -verify-config, promtail -check-syntax; dashboard JSON on the
    host); nothing is touched (nor restarted) when it fails. Then
    the service reloads the way it can (its reload API, Grafana's provisioning
    API, or a restart for Loki) and the new configuration is confirmed (reload
    metrics, config hash, readiness). Keeps going after a failure.

    \b
    Examples:
      monctl reload prometheus       after editing prometheus.yml
      monctl reload all
    """
    from monctl import services as declared
    from monctl.cli.progress import CliProgress
    from monctl.config import reload as op

    out = output(as_json)
    selected = tuple(declared.SERVICES) if "all" in services else declared.select(services)
    with CliProgress(out) as progress:
        report = op.reload(
            app.project, app.runtime, selected, validate=not no_validate, progress=progress
        )
    finish(out, report)


@click.command(epilog=epilog("validate"))
@services_argument
@click.option(
    "--local",
    is_flag=True,
    help="Use the checking tools from the host PATH instead of the pinned images (no Docker).",
)
@click.option(
    "--allow-missing-tools",
    is_flag=True,
    help="With --local: a check whose tool is not installed is skipped without failing "
    "the run (by default it fails: a check that did not run is no pass).",
)
@json_option
@click.pass_obj
def validate(
    app: AppContext,
    services: tuple[str, ...],
    local: bool,
    allow_missing_tools: bool,
    as_json: bool,
) -> None:
    """Check configuration files without a running stack (a pull-request check).

    Prometheus config and rules, the rule unit tests (promtool test rules),
    Alertmanager config (amtool), Loki (loki -verify-config), Promtail
    (promtail -check-syntax), Grafana provisioning YAML and dashboard JSON.
    By default the tools run in one-off containers of the pinned images
    (`docker compose run`), reading the files exactly as the services mount them;
    no .env is needed.

    \b
    Examples:
      monctl validate                the pinned images check the files
      monctl validate --local --allow-missing-tools   host tools, some absent
    """
    from monctl import services as declared
    from monctl.config import validate as op

    project = app.project
    runtime = None if local else app.runtime
    report = op.validate(
        project,
        runtime,
        declared.select(services),
        mode="local" if local else "docker",
        allow_missing_tools=allow_missing_tools,
    )
    finish(output(as_json), report)
