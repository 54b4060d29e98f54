"""The textfile-collector metrics: valid exposition format (checked by the real
promtool), merged across runs, and a failed attempt keeps the last success."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from support import require_binary

from monctl.monitoring import textfile
from monctl.monitoring.textfile import Attempt


def _samples(directory: Path) -> dict[str, dict[str, float]]:
    return textfile.read(directory / textfile.FILE_NAME)


def test_failure_keeps_the_last_success_and_other_services(tmp_path: Path) -> None:
    textfile.publish(tmp_path, [
        Attempt("prometheus", 1000.0, True, 12.5, 4096, written_bytes=96, reused_bytes=4000),
        Attempt("grafana", 1000.0, True, 1.0, 512, written_bytes=512, reused_bytes=0),
    ])  # fmt: skip
    textfile.publish(tmp_path, [Attempt("prometheus", 2000.0, False, 3.0)])
    s = _samples(tmp_path)
    assert s[textfile.LAST_SUCCESS] == {"prometheus": 1000.0, "grafana": 1000.0}
    assert s[textfile.LAST_ATTEMPT] == {"prometheus": 2000.0, "grafana": 1000.0}
    assert s[textfile.SUCCESS] == {"prometheus": 0.0, "grafana": 1.0}
    assert s[textfile.DURATION]["prometheus"] == 3.0
    assert s[textfile.SIZE] == {"prometheus": 4096.0, "grafana": 512.0}
    assert s[textfile.WRITTEN] == {"prometheus": 96.0, "grafana": 512.0}  # the last success's
    assert s[textfile.REUSED] == {"prometheus": 4000.0, "grafana": 0.0}
    assert not [p for p in tmp_path.iterdir() if p.name != textfile.FILE_NAME], "temp file left"
    assert (tmp_path / textfile.FILE_NAME).stat().st_mode & 0o444 == 0o444


def test_drills_and_backups_keep_each_others_lines(tmp_path: Path) -> None:
    textfile.publish(tmp_path, [Attempt("grafana", 1000.0, True, 1.0, 512)])
    textfile.publish(tmp_path, (), drilled=["grafana", "loki"], at=1500.0)
    textfile.publish(tmp_path, [Attempt("grafana", 2000.0, False, 1.0)])
    s = _samples(tmp_path)
    assert s[textfile.DRILL_SUCCESS] == {"grafana": 1500.0, "loki": 1500.0}
    assert s[textfile.LAST_SUCCESS] == {"grafana": 1000.0}
    textfile.publish(tmp_path, (), drilled=["loki"], at=3000.0)  # only what passed moves
    assert _samples(tmp_path)[textfile.DRILL_SUCCESS] == {"grafana": 1500.0, "loki": 3000.0}


@pytest.mark.binaries
def test_promtool_accepts_the_file(tmp_path: Path) -> None:
    promtool = require_binary("promtool")
    textfile.publish(
        tmp_path, [Attempt("loki", 1.5, True, 0.25, 10, 10, 0), Attempt("x", 2, False, 0)]
    )
    assert "monctl_backup_bytes_written" in (tmp_path / textfile.FILE_NAME).read_text()
    text = (tmp_path / textfile.FILE_NAME).read_text()
    done = subprocess.run([str(promtool), "check", "metrics"], input=text, capture_output=True,
                          text=True, check=False)  # fmt: skip
    assert done.returncode == 0, done.stdout + done.stderr


def test_directory_from_settings(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from monctl.project import Project

    monkeypatch.delenv("MONCTL_TEXTFILE_DIR", raising=False)
    project = Project(root=tmp_path)
    assert textfile.textfile_dir(project) == tmp_path / "var" / "textfile"
    project.env["MONCTL_TEXTFILE_DIR"] = "tf"
    assert textfile.textfile_dir(project) == tmp_path / "tf"
