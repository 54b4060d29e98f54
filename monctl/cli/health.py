"""``monctl health``: the CI gate (a thin layer over ``monctl.health``)."""

from __future__ import annotations

import threading
from pathlib import Path

import click

from monctl.cli import AppContext
from monctl.cli.common import epilog, finish, json_option, output, services_argument
from monctl.cli.params import Seconds, checked_path

NOTE = """
The engine being unreachable is not an error: container state shows "unknown"
and URLs come from MONCTL_<SERVICE>_URL or the ports in .env. A watched target
down (the application: the backend's scrape jobs, the database behind
postgres-exporter) is exit 4, 3 with --strict, 0 with --ignore-targets.
"""


@click.command(epilog=epilog("health") + "\n" + NOTE)
@services_argument
@click.option("--wait", "wait_", is_flag=True, help="Poll until ready or --timeout passes.")
@click.option(
    "--timeout",
    type=Seconds(min=0, max=86400),
    default=120.0,
    show_default=True,
    help="With --wait: give up after this many seconds.",
)
@click.option(
    "--interval",
    type=Seconds(min=0.1, max=3600),
    default=2.0,
    show_default=True,
    help="With --wait: seconds between rounds.",
)
@click.option(
    "--probe-timeout",
    type=Seconds(min=0.1, max=600),
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
    callback=checked_path,
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

    \b
    Examples:
      monctl health                  every service, once
      monctl health --wait --strict --junit health.xml   the CI gate
    """
    from monctl import services as declared
    from monctl.cli.output import preload
    from monctl.cli.progress import CliProgress
    from monctl.health import check

    if strict and ignore_targets:
        raise click.UsageError("--strict and --ignore-targets contradict each other")
    out = output(as_json)
    project, runtime = app.project, app.runtime
    selected = declared.select(services)
    if not as_json:
        # Import the table's code (rich, ~50 ms) while the probes wait on the
        # network. Started a moment later: sooner, it competes with sending
        # the probes for the interpreter and delays all of them (measured by
        # bench/health_bench.py).
        importer = threading.Timer(0.15, preload)
        importer.daemon = True
        importer.start()
    if wait_:
        with CliProgress(out) as progress:
            progress.status("checking the stack…")
            report = check.wait(
                project,
                runtime,
                selected,
                timeout=timeout,
                interval=interval,
                deep=not no_deep,
                probe_timeout=probe_timeout,
                progress=progress,
                strict=strict,
            )
    else:
        report = check.check(
            project, runtime, selected, deep=not no_deep, probe_timeout=probe_timeout
        )
    report = report.with_policy(strict=strict, ignore_targets=ignore_targets)
    if junit is not None:
        from monctl.cli.render import junit as junit_xml

        junit_xml.write(report, junit)
    finish(out, report)
