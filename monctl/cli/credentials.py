"""credentials rotate: a new password for Prometheus and Alertmanager (``monctl.credentials``)."""

from __future__ import annotations

import click

from monctl.cli import AppContext
from monctl.cli.common import epilog, finish, json_option, output
from monctl.cli.params import Seconds


@click.group()
def credentials() -> None:
    """The stack's credentials (basic auth of Prometheus and Alertmanager)."""


@credentials.command(epilog=epilog("credentials rotate"))
@click.option(
    "--timeout",
    type=Seconds(min=0, max=86400),
    default=180.0,
    show_default=True,
    help="Seconds to wait until the services are ready again.",
)
@json_option
@click.pass_obj
def rotate(app: AppContext, timeout: float, as_json: bool) -> None:
    """Replace the password of user monctl and hand it to the running services.

    Writes a new MONITORING_AUTH_PASSWORD and its hash into .env (mode 0600; never
    printed), then creates Prometheus, Alertmanager and Grafana again (Swarm: rolls
    them) so that they use it, and waits until they are ready. Scripts and browsers
    that use the old password must be given the new one (README).
    """
    from monctl.cli.progress import CliProgress
    from monctl.lifecycle import rotate as verbs

    out = output(as_json)
    with CliProgress(out) as progress:
        request = verbs.RotateRequest(app.project, app.runtime, timeout)
        result = verbs.perform(request, progress)
    finish(out, result)
