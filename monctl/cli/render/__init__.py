"""Where a result is drawn for a person: one renderer per result type, in one registry.

An operation returns a result (``monctl.result.Result``: data, ``to_json``, an exit
code) and never draws; ``monctl.cli.common.finish`` hands it to ``Output.emit``, which
prints its JSON document with ``--json`` and otherwise calls ``draw``: the renderer
named here for the result's type draws its tables and lines with ``Output``.

The registry names each renderer as ``"topic:function"`` (a module of this package),
and the module is imported only when its result is drawn: ``monctl --version`` and
``--help`` import none of them, nor rich, nor the operations. Keyed by the class name,
so a result class may move between packages without touching this table;
tests/cli/test_render.py fails when a result type has no renderer here.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # pragma: no cover
    from monctl.cli.output import Output
    from monctl.result import Result

# result class name -> "module of monctl.cli.render:function"
RENDERERS: dict[str, str] = {
    # monctl/lifecycle/ (up, down, status, upgrade, rotate)
    "StatusReport": "stack:status",
    "DownReport": "stack:down",
    "UpgradeReport": "stack:upgrade",
    "RotateReport": "stack:rotate",
    # monctl.health.report
    "HealthReport": "health:health",
    # monctl.config
    "ReloadReport": "config:reload",
    "ValidateReport": "config:validate",
    # monctl.backup (and the announcements wrapped around its runs)
    "BackupReport": "backup:backup",
    "BackupList": "backup:listing",
    "PruneReport": "backup:prune",
    "VerifyReport": "backup:verify",
    "RepositoryCheck": "backup:verify_all",
    "Announced": "backup:announced",
    "RestoreReport": "restore:restore",
    "ExportReport": "restore:export",
    "DrillReport": "restore:drill",
}


def renderer(result: Result) -> Callable[[Output, Any], None]:
    """The function that draws ``result`` (imports its module now)."""
    name = type(result).__name__
    try:
        where = RENDERERS[name]
    except KeyError:
        raise TypeError(f"no renderer for {name}: add one to monctl.cli.render") from None
    topic, function = where.split(":")
    drawer: Callable[[Output, Any], None] = getattr(
        importlib.import_module(f"{__name__}.{topic}"), function
    )
    return drawer


def draw(out: Output, result: Result) -> None:
    """Draw ``result`` for a person (tables on stdout, messages on stderr)."""
    renderer(result)(out, result)
