"""compose/docker-compose.monitoring.yml and .env.example against the fixed
contract (the declarations in monctl/services/): services, pinned overridable images, ports,
volumes, networks, healthchecks; and `docker compose config` accepts it."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest
from support import require, require_binary
from support.stack_files import COMPOSE_FILE, ENV_EXAMPLE, ROOT, load_yaml

from monctl import services
from monctl.services.model import Service

# What `monctl up` adds to .env (monctl/credentials.py); compose refuses to start without.
CREDENTIALS = (
    "MONITORING_AUTH_PASSWORD=s3cret-Generated-0123456789\n"
    'MONITORING_AUTH_WEB_CONFIG=\'{"basic_auth_users":{"monctl":"$2b$10$x"}}\'\n'
)


def _compose() -> dict:
    data = load_yaml(COMPOSE_FILE)
    assert isinstance(data, dict)
    return data


def _env_example() -> dict[str, str]:
    env = {}
    for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines():
        if line.strip() and not line.lstrip().startswith("#"):
            key, _, value = line.partition("=")
            env[key.strip()] = value.strip()
    return env


def test_services_are_the_declared_ones() -> None:
    compose = _compose()
    assert set(compose["services"]) == set(services.names())
    assert "version" not in compose
    for name, svc in compose["services"].items():
        assert "container_name" not in svc, name
        assert svc.get("restart") == "unless-stopped", name


@pytest.mark.parametrize("service", services.SERVICES, ids=lambda s: s.name)
def test_image_port_and_volume_follow_the_declarations(service: Service) -> None:
    svc = _compose()["services"][service.name]
    image = re.fullmatch(rf"\$\{{{service.image_var}:-([^}}]+)\}}", svc["image"])
    assert image, f"{service.name}: image must be ${{{service.image_var}:-<pinned image>}}"
    tag = image.group(1).rsplit(":", 1)[-1]
    assert re.fullmatch(r"v?\d+\.\d+\.\d+", tag), f"{service.name}: not an exact release: {tag}"
    assert _env_example()[service.image_var] == image.group(1)
    expected_port = (
        f"${{MONITORING_BIND_ADDRESS:-127.0.0.1}}:${{{service.port_var}:-{service.default_port}}}"
        f":{service.container_port}"
    )
    assert svc["ports"] == [expected_port]
    assert _env_example()[service.port_var] == str(service.default_port)
    if service.data:
        assert f"{service.data.volume}:{service.data.path}" in svc["volumes"]
        assert service.data.volume in _compose()["volumes"]


def test_volumes_networks_and_healthchecks() -> None:
    compose = _compose()
    assert set(compose["volumes"]) == {
        "prometheus_data",
        "grafana_data",
        "loki_data",
        "alertmanager_data",
    }
    app = compose["networks"]["app"]
    assert app["external"] is True
    assert app["name"] == "${APP_NETWORK_NAME:-residency-scheduler_app-network}"
    services = compose["services"]
    for name in ("prometheus", "postgres-exporter"):
        assert "app" in services[name]["networks"], name
    for name, svc in services.items():
        assert "monitoring" in svc["networks"], name
        # Loki's image is distroless: nothing can run a probe inside it
        assert ("healthcheck" in svc) == (name != "loki"), name


def test_prometheus_command_and_alertmanager_secrets() -> None:
    services = _compose()["services"]
    command = services["prometheus"]["command"]
    for flag in (
        "--config.file=/etc/prometheus/prometheus.yml",
        "--storage.tsdb.path=/prometheus",
        "--storage.tsdb.retention.time=${PROMETHEUS_RETENTION_TIME:-15d}",
        "--storage.tsdb.retention.size=${PROMETHEUS_RETENTION_SIZE:-10GB}",
        "--web.enable-lifecycle",
        "--web.enable-admin-api",
    ):
        assert flag in command
    am = services["alertmanager"]
    assert am["entrypoint"] == ["/bin/sh", "/etc/alertmanager/entrypoint.sh"]
    for var in ("SLACK_WEBHOOK_URL", "PAGERDUTY_ROUTING_KEY", "SMTP_PASSWORD"):
        assert am["environment"][var] == f"${{{var}:-}}"
    assert any(t.startswith("/run/alertmanager-secrets") for t in am["tmpfs"])
    pe = services["postgres-exporter"]["environment"]
    assert pe["DATA_SOURCE_URI"] == (
        "${POSTGRES_HOST:-db}:${POSTGRES_PORT:-5432}/${POSTGRES_DB:-residency_scheduler}?sslmode=disable"
    )
    assert pe["DATA_SOURCE_PASS"] == "${POSTGRES_PASSWORD:-}"
    assert "-server.enable-runtime-reload" in services["promtail"]["command"]
    ne = services["node-exporter"]
    assert "--path.rootfs=/host" in ne["command"]
    assert "--collector.textfile.directory=/textfile" in ne["command"]
    assert "${MONCTL_TEXTFILE_DIR:-../var/textfile}:/textfile:ro" in ne["volumes"]


def test_env_example_documents_every_variable() -> None:
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    used = set(re.findall(r"\$\{([A-Z_][A-Z0-9_]*)", text))
    env_text = ENV_EXAMPLE.read_text(encoding="utf-8")
    documented = set(re.findall(r"^#?\s*([A-Z_][A-Z0-9_]*)=", env_text, re.M))
    assert used - documented == set(), f"not in .env.example: {sorted(used - documented)}"
    assert re.search(r"^GRAFANA_ADMIN_PASSWORD=__GENERATE__$", env_text, re.M)
    assert re.search(r"^MONCTL_BACKUP_DEST=\./backups$", env_text, re.M)
    assert re.search(r"^# COMPOSE_PROJECT_NAME=", env_text, re.M)
    # defaults in compose and values in .env.example agree
    env = _env_example()
    for var, default in re.findall(r"\$\{([A-Z_][A-Z0-9_]*):-([^}]*)\}", text):
        if var in env and env[var] and default:  # secrets: placeholder vs empty default
            assert env[var] == default, (
                f"{var}: .env.example {env[var]!r} != compose default {default!r}"
            )


def _docker_compose() -> list[str]:
    docker = require_binary("docker")
    probe = subprocess.run(
        [docker, "compose", "version"], capture_output=True, text=True, check=False
    )
    if probe.returncode != 0:
        require(False, "docker compose v2 is not available")
    return [docker, "compose"]


@pytest.mark.binaries
@pytest.mark.parametrize("style", ["monctl", "plain"])
def test_docker_compose_config_accepts_the_file(style: str, tmp_path: Path) -> None:
    compose = _docker_compose()
    env = tmp_path / ".env"
    env.write_text(
        ENV_EXAMPLE.read_text(encoding="utf-8").replace("__GENERATE__", "s3cret-Generated")
        + CREDENTIALS
    )
    if style == "monctl":
        argv = [
            *compose,
            "-f",
            str(COMPOSE_FILE),
            "--project-directory",
            str(ROOT / "compose"),
            "--env-file",
            str(env),
            "-p",
            "stacktest-config",
            "config",
            "--format",
            "json",
        ]
        cwd = tmp_path
    else:
        argv = [
            *compose,
            "-f",
            "compose/docker-compose.monitoring.yml",
            "--env-file",
            str(env),
            "config",
            "--format",
            "json",
        ]
        cwd = ROOT
    result = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=60, check=False)
    assert result.returncode == 0, result.stderr
    import json

    resolved = json.loads(result.stdout)
    prom = resolved["services"]["prometheus"]
    mounts = {v["target"]: v["source"] for v in prom["volumes"] if v["type"] == "bind"}
    assert mounts["/etc/prometheus"] == str(ROOT / "config" / "prometheus")
    ports = prom["ports"][0]
    assert (ports["host_ip"], ports["published"], ports["target"]) == ("127.0.0.1", "9090", 9090)
    assert (
        resolved["services"]["grafana"]["environment"]["GF_SECURITY_ADMIN_PASSWORD"]
        == "s3cret-Generated"
    )
    textfile = next(
        v for v in resolved["services"]["node-exporter"]["volumes"] if v["target"] == "/textfile"
    )
    assert textfile["source"] == str(ROOT / "var" / "textfile")


@pytest.mark.binaries
def test_docker_compose_refuses_to_start_without_grafana_password(tmp_path: Path) -> None:
    compose = _docker_compose()
    env = tmp_path / ".env"
    env.write_text("GRAFANA_ADMIN_PASSWORD=\n" + CREDENTIALS)
    result = subprocess.run(
        [*compose, "-f", str(COMPOSE_FILE), "--env-file", str(env), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert "set GRAFANA_ADMIN_PASSWORD in .env" in result.stderr


@pytest.mark.binaries
@pytest.mark.parametrize("missing", ["MONITORING_AUTH_PASSWORD", "MONITORING_AUTH_WEB_CONFIG"])
def test_docker_compose_refuses_to_start_without_the_stack_credentials(
    tmp_path: Path, missing: str
) -> None:
    """An empty web configuration would leave Prometheus and Alertmanager open."""
    compose = _docker_compose()
    env = tmp_path / ".env"
    kept = [line for line in CREDENTIALS.splitlines() if not line.startswith(missing)]
    env.write_text("GRAFANA_ADMIN_PASSWORD=x-admin\n" + "\n".join(kept) + f"\n{missing}=\n")
    result = subprocess.run(
        [*compose, "-f", str(COMPOSE_FILE), "--env-file", str(env), "config", "-q"],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode != 0
    assert f"set {missing} in .env" in result.stderr
