"""config/alertmanager proven by Debian's Alertmanager 0.25 tools: the config
loads (templates included), each severity reaches exactly the intended
integrations, secrets only ever come from files written by entrypoint.sh, and
a real Alertmanager started through that entrypoint loads the config, sends
with the secrets from the files and applies the inhibition rules."""

from __future__ import annotations

import http.server
import json
import os
import re
import stat
import subprocess
import threading
import urllib.error
import urllib.request
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from support import free_ports, require_binary, wait_for
from support.stack_files import AM_DIR, alertmanager_config_copy, load_yaml

ENTRYPOINT = AM_DIR / "entrypoint.sh"
SECRETS_DIR = "/run/alertmanager-secrets"

# severity -> (receiver, integrations it must reach)
EXPECTED_ROUTES = {
    "critical": ("team-critical", {"pagerduty", "slack", "email"}),
    "warning": ("team-warning", {"slack", "email"}),
    "info": ("team-info", {"slack"}),
}


def _config() -> dict:
    data = load_yaml(AM_DIR / "alertmanager.yml")
    assert isinstance(data, dict)
    return data


def _integrations(receiver: str) -> set[str]:
    for r in _config()["receivers"]:
        if r["name"] == receiver:
            return {
                k.removesuffix("_configs") for k, v in r.items() if k.endswith("_configs") and v
            }
    raise AssertionError(f"no receiver {receiver}")


@pytest.mark.binaries
def test_amtool_check_config(tmp_path: Path) -> None:
    amtool = require_binary("amtool")
    main = alertmanager_config_copy(tmp_path)  # templates resolved in the copy
    result = subprocess.run(
        [amtool, "check-config", str(main)], capture_output=True, text=True, timeout=60, check=False
    )
    out = result.stdout + result.stderr
    assert result.returncode == 0, out
    assert "1 templates" in out and "SUCCESS" in out, out


def _route(*labels: str) -> str:
    """The receivers `amtool config routes test` picks for an alert with ``labels``."""
    amtool = require_binary("amtool")
    config = f"--config.file={AM_DIR / 'alertmanager.yml'}"
    result = subprocess.run(
        [amtool, "config", "routes", "test", config, *labels],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout


@pytest.mark.binaries
@pytest.mark.parametrize("severity", sorted(EXPECTED_ROUTES))
def test_each_severity_reaches_exactly_its_integrations(severity: str) -> None:
    output = _route(f"severity={severity}", "alertname=Example", "instance=example:1")
    receiver, integrations = EXPECTED_ROUTES[severity]
    assert output.split() == [receiver], output
    assert _integrations(receiver) == integrations


@pytest.mark.binaries
def test_an_alert_without_severity_still_reaches_people() -> None:
    assert _integrations(_route("alertname=NoSeverity").strip()) >= {"slack", "email"}


def test_warning_delivery_timing_is_within_30_minutes() -> None:
    route = next(r for r in _config()["route"]["routes"] if 'severity="warning"' in r["matchers"])
    seconds = {"s": 1, "m": 60, "h": 3600}

    def secs(v: str) -> int:
        return int(v[:-1]) * seconds[v[-1]]

    assert secs(route["group_wait"]) <= 60 and secs(route["group_interval"]) <= 30 * 60


def test_secrets_come_only_from_files() -> None:
    text = (AM_DIR / "alertmanager.yml").read_text(encoding="utf-8")
    for key in ("api_url:", "routing_key:", "service_key:", "auth_password:", "slack_api_url:"):
        assert not re.search(rf"^\s*(smtp_)?{key}", text, re.M), f"literal secret setting {key}"
    for path in ("slack_webhook_url", "pagerduty_routing_key", "smtp_password"):
        assert f"{SECRETS_DIR}/{path}" in text


def _run_entrypoint(
    tmp_path: Path, env: dict[str, str], *args: str
) -> tuple[subprocess.CompletedProcess[str], Path]:
    secrets = tmp_path / "secrets"
    fake = tmp_path / "fake-alertmanager"
    fake.write_text('#!/bin/sh\necho "args:$*"\nenv | grep -E "^(SLACK|PAGERDUTY|SMTP)_" || true\n')
    fake.chmod(0o755)
    full_env = {
        "PATH": os.environ["PATH"],
        "ALERTMANAGER_SECRETS_DIR": str(secrets),
        "ALERTMANAGER_BIN": str(fake),
        **env,
    }
    result = subprocess.run(
        ["sh", str(ENTRYPOINT), *args],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    return result, secrets


def test_entrypoint_writes_secret_files_and_execs_alertmanager(tmp_path: Path) -> None:
    result, secrets = _run_entrypoint(
        tmp_path,
        {
            "SLACK_WEBHOOK_URL": "https://hooks.example/T/B/x y",
            "PAGERDUTY_ROUTING_KEY": "pd-key",
            "SMTP_PASSWORD": "p@ss $word",
        },
        "--config.file=/etc/alertmanager/alertmanager.yml",
        "--storage.path=/alertmanager",
    )
    assert result.returncode == 0, result.stderr
    assert (
        "args:--config.file=/etc/alertmanager/alertmanager.yml --storage.path=/alertmanager"
        in result.stdout
    )
    # the secrets are not left in the environment of the exec'd program
    assert "SLACK_WEBHOOK_URL" not in result.stdout and "pd-key" not in result.stdout
    expected = {
        "slack_webhook_url": "https://hooks.example/T/B/x y",
        "pagerduty_routing_key": "pd-key",
        "smtp_password": "p@ss $word",
    }
    for name, value in expected.items():
        path = secrets / name
        assert path.read_text() == value  # exact: no trailing newline
        assert stat.S_IMODE(path.stat().st_mode) == 0o600, name
    assert stat.S_IMODE(secrets.stat().st_mode) == 0o700
    assert result.stderr == ""


def test_entrypoint_warns_about_empty_secrets_but_starts(tmp_path: Path) -> None:
    result, secrets = _run_entrypoint(tmp_path, {"SLACK_WEBHOOK_URL": "https://x"})
    assert result.returncode == 0
    assert "PAGERDUTY_ROUTING_KEY is empty" in result.stderr
    assert "SMTP_PASSWORD is empty" in result.stderr
    assert "SLACK_WEBHOOK_URL" not in result.stderr
    assert (secrets / "pagerduty_routing_key").read_text() == ""


def test_entrypoint_fails_when_the_secrets_dir_cannot_be_written(tmp_path: Path) -> None:
    blocker = tmp_path / "file"
    blocker.write_text("")
    full_env = {
        "PATH": os.environ["PATH"],
        "ALERTMANAGER_SECRETS_DIR": str(blocker / "sub"),
        "ALERTMANAGER_BIN": "/bin/true",
    }
    result = subprocess.run(
        ["sh", str(ENTRYPOINT)],
        env=full_env,
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert result.returncode != 0


# --------------------------------------------------------------------------
# A real Alertmanager, started through the entrypoint.


class _Capture(http.server.BaseHTTPRequestHandler):
    received: list[tuple[str, dict]] = []

    def do_POST(self) -> None:
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        type(self).received.append((self.path, json.loads(body or b"{}")))
        self.send_response(200 if self.path.startswith("/slack") else 202)
        self.end_headers()
        self.wfile.write(b"ok")

    def log_message(self, *args: object) -> None:
        pass


def _get(url: str) -> object:
    with urllib.request.urlopen(url, timeout=5) as r:
        return json.loads(r.read())


@pytest.mark.binaries
def test_real_alertmanager_loads_config_uses_secret_files_and_inhibits(tmp_path: Path) -> None:
    binary = require_binary("alertmanager", "prometheus-alertmanager")
    capture_port, am_port, smtp_port = free_ports()[0], free_ports()[0], free_ports()[0]
    _Capture.received = []
    server = http.server.ThreadingHTTPServer(("127.0.0.1", capture_port), _Capture)
    threading.Thread(target=server.serve_forever, daemon=True).start()

    secrets = tmp_path / "secrets"
    main = alertmanager_config_copy(tmp_path)
    text = main.read_text().replace(SECRETS_DIR, str(secrets))
    # every integration goes to 127.0.0.1: PagerDuty to the capture server,
    # SMTP to a closed port (its attempts still show in the metrics)
    text = text.replace(
        "global:\n", f"global:\n  pagerduty_url: http://127.0.0.1:{capture_port}/pd\n", 1
    )
    text = text.replace("smtp.example.org:587", f"127.0.0.1:{smtp_port}")
    text = re.sub(r"group_wait: \S+", "group_wait: 1s", text)
    main.write_text(text)

    env = {
        "PATH": os.environ["PATH"],
        "ALERTMANAGER_SECRETS_DIR": str(secrets),
        "ALERTMANAGER_BIN": binary,
        "SLACK_WEBHOOK_URL": f"http://127.0.0.1:{capture_port}/slack/T000/SECRETHOOK",
        "PAGERDUTY_ROUTING_KEY": "pd-routing-key-123",
        "SMTP_PASSWORD": "smtp-secret",
    }
    proc = subprocess.Popen(
        [
            "sh",
            str(ENTRYPOINT),
            f"--config.file={main}",
            f"--storage.path={tmp_path / 'data'}",
            f"--web.listen-address=127.0.0.1:{am_port}",
            "--cluster.listen-address=",
        ],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    base = f"http://127.0.0.1:{am_port}"
    try:
        status = wait_for(lambda: _get(f"{base}/api/v2/status"), 20, "Alertmanager to answer")
        original = status["config"]["original"]
        assert "routing_key_file" in original and "api_url_file" in original
        for secret in ("SECRETHOOK", "pd-routing-key-123", "smtp-secret"):
            assert secret not in original

        now = datetime.now(UTC)

        def alert(name: str, severity: str, **labels: str) -> dict:
            return {
                "labels": {
                    "alertname": name,
                    "severity": severity,
                    "instance": "backend:8000",
                    **labels,
                },
                "annotations": {"summary": name, "description": "d", "runbook": "r"},
                "startsAt": now.isoformat(),
                "endsAt": (now + timedelta(minutes=10)).isoformat(),
            }

        alerts = [
            alert("APIServiceDown", "critical"),
            alert("HighLatencyP95", "warning", source="backend"),
            alert("DiskSpaceWarning", "warning", instance="node-exporter:9100"),
            alert("PostgreSQLSlowQueries", "warning", instance="pg:9187"),
            alert("PostgreSQLSlowQueries", "critical", instance="pg:9187"),
            alert("ExampleInfo", "info", instance="x:1"),
        ]
        req = urllib.request.Request(
            f"{base}/api/v2/alerts",
            data=json.dumps(alerts).encode(),
            headers={"Content-Type": "application/json"},
            method="POST",
        )
        urllib.request.urlopen(req, timeout=5).close()

        def states() -> dict[tuple[str, str], str] | None:
            got = _get(f"{base}/api/v2/alerts")
            assert isinstance(got, list)
            result = {
                (a["labels"]["alertname"], a["labels"]["severity"]): a["status"]["state"]
                for a in got
            }
            return result if "suppressed" in result.values() and len(result) == 6 else None

        result = wait_for(states, 20, "inhibitions to be applied")
        assert result[("HighLatencyP95", "warning")] == "suppressed"  # APIServiceDown mutes it
        assert result[("PostgreSQLSlowQueries", "warning")] == "suppressed"  # its critical mutes it
        assert result[("PostgreSQLSlowQueries", "critical")] == "active"
        assert result[("DiskSpaceWarning", "warning")] == "active"
        assert result[("APIServiceDown", "critical")] == "active"

        # notifications went out with the secrets read from the files
        def delivered() -> bool:
            paths = [p for p, _ in _Capture.received]
            return (
                any(p.startswith("/pd") for p in paths)
                and sum(p.startswith("/slack") for p in paths) >= 3
            )

        wait_for(delivered, 20, "Slack and PagerDuty notifications")
        assert all(
            p == "/slack/T000/SECRETHOOK" for p, _ in _Capture.received if p.startswith("/slack")
        )
        pd = [body for p, body in _Capture.received if p.startswith("/pd")]
        assert all(b["routing_key"] == "pd-routing-key-123" for b in pd)
        assert all(
            "APIServiceDown" in json.dumps(b) or "PostgreSQLSlowQueries" in json.dumps(b)
            for b in pd
        )
        channels = {body.get("channel") for p, body in _Capture.received if p.startswith("/slack")}
        assert channels == {"#residency-alerts", "#residency-info"}

        def email_attempted() -> bool:
            with urllib.request.urlopen(f"{base}/metrics", timeout=5) as r:
                metrics = r.read().decode()
            m = re.search(r'alertmanager_notifications_total\{integration="email"\} (\d+)', metrics)
            return bool(m and int(m.group(1)) >= 2)

        wait_for(email_attempted, 20, "email notifications to be attempted")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
        server.shutdown()
