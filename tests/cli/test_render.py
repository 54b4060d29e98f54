"""Every result a verb returns is drawn by a renderer in monctl/cli/render/ (issue 18,
item 4): the registry names one for each result type, and none is missing."""

from __future__ import annotations

import importlib
import json
import pkgutil
import subprocess
import sys
from pathlib import Path

import pytest

import monctl
from monctl.cli import render
from monctl.cli.output import Output
from monctl.errors import ExitCode

REPO = Path(__file__).resolve().parents[2]

# Shaped as results but never returned on their own: each is a row of the result named,
# drawn by that result's renderer.
PARTS = {
    "DrillService": "a service of DrillReport (monctl/backup/reports.py)",
    "ServiceRestore": "a service of RestoreReport (monctl/backup/restore.py)",
}


def result_types() -> dict[str, type]:
    """Every class under monctl/ shaped as a result (an ``exit_code`` property and
    ``to_json``), by name. A result's parts (a service's row, ``Failure``) keep their
    exit code as a plain field and are drawn by their result's renderer."""
    found: dict[str, type] = {}
    for info in pkgutil.walk_packages(monctl.__path__, "monctl."):
        if info.name.endswith("__main__") or info.name.startswith("monctl._stack"):
            continue
        module = importlib.import_module(info.name)
        for value in vars(module).values():
            if not isinstance(value, type) or value.__module__ != module.__name__:
                continue
            if getattr(value, "_is_protocol", False) or value.__name__ in PARTS:
                continue  # the Result protocol itself; a result's row
            if isinstance(getattr(value, "exit_code", None), property) and callable(
                getattr(value, "to_json", None)
            ):
                found[value.__name__] = value
    return found


def test_the_scan_finds_the_results() -> None:
    # the check can fail: the scan sees results of every layer, not only some
    assert {"HealthReport", "StatusReport", "BackupReport", "Announced", "ValidateReport"} <= set(
        result_types()
    )


@pytest.mark.parametrize("name", sorted(PARTS))
def test_a_part_is_still_one(name: str) -> None:
    """PARTS may only name what exists (a renamed row must not hide a new result)."""
    found = {
        value.__name__
        for info in pkgutil.walk_packages(monctl.__path__, "monctl.")
        if not info.name.endswith("__main__") and not info.name.startswith("monctl._stack")
        for value in vars(importlib.import_module(info.name)).values()
        if isinstance(value, type)
    }
    assert name in found, f"{name} is gone: remove it from PARTS"


def test_every_result_type_has_a_renderer() -> None:
    missing = sorted(set(result_types()) - set(render.RENDERERS))
    assert not missing, f"no renderer in monctl.cli.render.RENDERERS for: {missing}"


@pytest.mark.parametrize("name", sorted(render.RENDERERS))
def test_every_renderer_is_there_and_its_result_too(name: str) -> None:
    topic, function = render.RENDERERS[name].split(":")
    module = importlib.import_module(f"monctl.cli.render.{topic}")
    assert callable(getattr(module, function, None)), render.RENDERERS[name]
    assert name in result_types(), f"{name} is no result (any more): remove it from RENDERERS"


def test_a_result_without_a_renderer_is_refused() -> None:
    class Unknown:
        exit_code = ExitCode.OK

        def to_json(self) -> dict[str, object]:
            return {}

    with pytest.raises(TypeError, match="no renderer for Unknown"):
        render.draw(Output(), Unknown())


def test_the_registry_imports_no_renderer_nor_rich() -> None:
    """`monctl --version` and `--help` pay for neither rich nor the operations."""
    code = (
        "import sys, monctl.cli.render\n"
        "loaded = [m for m in sys.modules if m == 'rich' or m.startswith('monctl.cli.render.')"
        " or m.startswith('monctl.backup')]\n"
        "assert not loaded, loaded\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO)


def test_a_restore_that_kept_the_previous_data_says_where(
    capsys: pytest.CaptureFixture[str],
) -> None:
    from monctl.backup.restore import RestoreReport, ServiceRestore

    kept = "/var/lib/docker/volumes/p_grafana_data/_data.monctl-previous-0a1b2c3d"
    not_ready = "running, not ready after 180 s (down: connection refused)"
    report = RestoreReport("20261205T020000Z", "/srv/backups")
    report.services.append(ServiceRestore("grafana", "p_grafana_data", "restored", not_ready,
                                          181.0, previous=kept))  # fmt: skip
    Output().emit("restore", report)
    shown = capsys.readouterr()
    assert kept in " ".join((shown.out + shown.err).split())
    Output(json_mode=True).emit("restore", report)
    doc = json.loads(capsys.readouterr().out)
    assert doc["services"][0]["previous_data"] == kept and doc["exit_code"] == 1
