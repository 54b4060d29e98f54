"""reload, validate: apply configuration to the running stack, or check it before deploying."""

from __future__ import annotations

import click

from monctl import catalogue
from monctl.cli import AppContext
from monctl.cli.common import finish, json_option, services_argument


@click.command()
@click.argument(
    "services",
    nargs=-1,
    required=True,
    type=click.Choice((*catalogue.NAMES, "all")),
    metavar="SERVICE... | all",
)
@click.option(
    "--no-validate",
    is_flag=True,
    help="Skip the checks before reloading (promtool/amtool, dashboard JSON syntax).",
)
@json_option
@click.pass_obj
def reload(app: AppContext, services: tuple[str, ...], no_validate: bool, as_json: bool) -> None:
    """Check, reload and confirm the configuration of SERVICEs (or all).

    Prometheus and Alertmanager: promtool/amtool check inside the running
    container (nothing is touched when it fails), POST /-/reload, then the
    service's own metrics confirm the new configuration is active. Grafana:
    provisioning API. Promtail: runtime reload, else a restart. Loki: restart.

    Keeps going after a failure. Exit 0 when every service took its
    configuration; 6 when a check refused it; 1 when a reload failed or a
    service is not running; 5 when Docker is unreachable.
    """
    from monctl.ops import reload as ops
    from monctl.output import Output

    out = Output(json_mode=as_json)
    selected = catalogue.SERVICES if "all" in services else catalogue.select(services)
    project = app.project
    stack = ops.from_docker(project, selected, validate=not no_validate, out=out)
    report = ops.reload(stack, selected)
    out.emit(report)
    finish(report.exit_code)


@click.command()
@services_argument
@click.option(
    "--local",
    is_flag=True,
    help="Use promtool/amtool from the host PATH instead of the pinned images (no Docker).",
)
@json_option
@click.pass_obj
def validate(app: AppContext, services: tuple[str, ...], local: bool, as_json: bool) -> None:
    """Check configuration files without a running stack (a pull-request check).

    Prometheus config and rules, the rule unit tests (promtool test rules),
    Alertmanager config (amtool), Grafana provisioning YAML and dashboard JSON.
    By default the tools run in one-off containers of the pinned images
    (`docker compose run`), reading the files exactly as the services mount them.

    Exit 0 when all is valid; 6 when anything is invalid; 1 when a check could
    not run; 5 when Docker is needed and unreachable.
    """
    from monctl.ops import validate as ops
    from monctl.output import Output

    out = Output(json_mode=as_json)
    report = ops.validate(
        app.project, catalogue.select(services), mode="local" if local else "docker"
    )
    out.emit(report)
    finish(report.exit_code)
