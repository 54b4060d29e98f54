"""``monctl health``: the CI gate (a thin layer over monctl.ops.health)."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import TYPE_CHECKING

import click

from monctl.cli import AppContext
from monctl.cli.common import finish, json_option, services_argument

if TYPE_CHECKING:  # pragma: no cover
    from monctl.catalogue import Service
    from monctl.ops.health import HealthReport
    from monctl.output import Output
    from monctl.project import Project

EPILOG = """\b
Exit codes:
  0  every service healthy and every watched target up
  3  a stack service is down, not ready or unhealthy, or a deep check of the
     stack failed (scrape target of a stack service down, rule failing, last
     reload failed); with --strict also when a watched target is down
  4  the stack is healthy but a watched application target (the backend's
     scrape jobs, the database behind postgres-exporter) is down; 0 with
     --ignore-targets
  6  no stack found, or a malformed .env
Docker being unreachable is not an error: container state shows "unknown" and
URLs come from MONCTL_<SERVICE>_URL or the ports in .env.
"""


@click.command(epilog=EPILOG)
@services_argument
@click.option("--wait", "wait_", is_flag=True, help="Poll until ready or --timeout passes.")
@click.option(
    "--timeout",
    type=click.FloatRange(min=0),
    default=120.0,
    show_default=True,
    help="With --wait: give up after this many seconds.",
)
@click.option(
    "--interval",
    type=click.FloatRange(min=0.1),
    default=2.0,
    show_default=True,
    help="With --wait: seconds between rounds.",
)
@click.option(
    "--probe-timeout",
    type=click.FloatRange(min=0.1),
    default=5.0,
    show_default=True,
    help="Seconds each probe may take (no answer in time = down).",
)
@click.option("--no-deep", is_flag=True, help="Skip the deep checks (targets, rules, reloads).")
@click.option("--strict", is_flag=True, help="A watched target down is fatal (exit 3).")
@click.option("--ignore-targets", is_flag=True, help="A watched target down is not (exit 0).")
@click.option(
    "--junit",
    type=click.Path(dir_okay=False, path_type=Path),
    help="Also write a JUnit XML report (one testcase per check) to this file.",
)
@json_option
@click.pass_obj
def health(
    app: AppContext,
    services: tuple[str, ...],
    wait_: bool,
    timeout: float,
    interval: float,
    probe_timeout: float,
    no_deep: bool,
    strict: bool,
    ignore_targets: bool,
    junit: Path | None,
    as_json: bool,
) -> None:
    """Check liveness, readiness and deep health of every service, concurrently.

    Refused, unresolvable or silent endpoints are DOWN, never skipped. Watched
    targets (the application the stack monitors) are reported apart from the
    stack's own services, with their own exit code.
    """
    from monctl import catalogue
    from monctl.ops import health as ops
    from monctl.output import Output, preload

    if strict and ignore_targets:
        raise click.UsageError("--strict and --ignore-targets contradict each other")
    out = Output(json_mode=as_json)
    project = app.project
    selected = catalogue.select(services)
    if not as_json:
        # Import the table's code (rich, ~50 ms) while the probes wait on the
        # network. Started a moment later: sooner, it competes with sending
        # the probes for the interpreter and delays all of them (measured by
        # bench/health_bench.py).
        importer = threading.Timer(0.15, preload)
        importer.daemon = True
        importer.start()
    if wait_:
        report = _wait(
            out, project, selected, timeout, interval, not no_deep, probe_timeout, strict
        )
    else:
        report = ops.check(project, selected, deep=not no_deep, probe_timeout=probe_timeout)
    report = report.with_policy(strict=strict, ignore_targets=ignore_targets)
    if junit is not None:
        from monctl.ops import junit as junit_xml

        junit_xml.write(report, junit)
    out.emit(report)
    finish(report.exit_code)


def _wait(
    out: Output,
    project: Project,
    selected: tuple[Service, ...],
    timeout: float,
    interval: float,
    deep: bool,
    probe_timeout: float,
    strict: bool,
) -> HealthReport:
    from monctl.ops import health as ops
    from monctl.output import status_line

    with status_line(out, "checking the stack…") as show:
        return ops.wait(
            project,
            selected,
            timeout=timeout,
            interval=interval,
            deep=deep,
            probe_timeout=probe_timeout,
            progress=ops.progress_line(show, timeout),
            strict=strict,
        )
