"""Who may use Prometheus and Alertmanager: only the stack's credentials (issue 23).

On the real compose stack (Debian's Prometheus 2.42 and Alertmanager 0.25), as an
attacker on the host and in a container on the application's network would try it:
without credentials the TSDB admin API, /-/reload, /-/quit and silence creation are
refused (401) and nothing changed; with them everything works, and what must talk to
them does (Prometheus' own scrapes, its alerts reaching Alertmanager, Grafana's
provisioned datasource, the containers' healthchecks). The password is nowhere in
`docker inspect`. Rotation: tests/e2e/test_auth.py::test_rotate_*.
"""

from __future__ import annotations

import base64
import json

import httpx
import pytest
from support import wait_for
from support.auth import USER, Guarded, grafana_queries_prometheus
from support.engine import Stack, docker, load_test_images

from monctl.project import parse_env

pytestmark = pytest.mark.docker


def password(stack: Stack) -> str:
    return stack.basic_auth()[1]


def guarded(stack: Stack) -> Guarded:
    return Guarded(stack.url("prometheus"), stack.url("alertmanager"), stack.basic_auth)


def container(stack: Stack, service: str) -> str:
    label = f"label=com.docker.compose.service={service}"
    project = f"label=com.docker.compose.project={stack.project_name}"
    (cid,) = docker("ps", "-q", "--filter", label, "--filter", project).out.split()
    return cid


def started_at(stack: Stack, service: str) -> str:
    return docker("inspect", "-f", "{{.State.StartedAt}}", container(stack, service)).out.strip()


def test_from_the_host_nothing_works_without_the_credentials(running_stack: Stack) -> None:
    prometheus_started = started_at(running_stack, "prometheus")
    guarded(running_stack).refused_everywhere()
    assert started_at(running_stack, "prometheus") == prometheus_started  # /-/quit refused


PROBE = r"""
set -u
ask() {  # METHOD HOST PORT PATH: the status line of the answer, asked without credentials
    printf '%s %s HTTP/1.0\r\nHost: %s\r\nContent-Length: 0\r\n\r\n' "$1" "$4" "$2" |
        nc -w 10 "$2" "$3" | head -n 1
}
echo "delete=$(ask POST prometheus 9090 '/api/v1/admin/tsdb/delete_series?match[]=up')"
echo "snapshot=$(ask POST prometheus 9090 /api/v1/admin/tsdb/snapshot)"
echo "reload=$(ask POST prometheus 9090 /-/reload)"
echo "quit=$(ask POST prometheus 9090 /-/quit)"
echo "query=$(ask GET prometheus 9090 '/api/v1/query?query=up')"
for name in alertmanager grafana loki promtail node-exporter cadvisor; do
    nslookup "$name" >/dev/null 2>&1 && printf '%s ' "$name"
done | sed 's/^/resolves=/'; echo
"""


def test_from_the_application_network_nothing_works_without_the_credentials(
    running_stack: Stack,
) -> None:
    """A container on the application's network (what a compromised backend is)."""
    stack = running_stack
    before = guarded(stack).with_history()
    prometheus_started = started_at(stack, "prometheus")
    image = load_test_images()["PROMETHEUS_IMAGE"]  # busybox: sh, nc, nslookup
    ran = docker(
        "run", "--rm", "--network", stack.network, "--entrypoint", "sh", image, "-c", PROBE,
        timeout=120,
    )  # fmt: skip
    assert ran.code == 0, ran.err
    answers = dict(line.split("=", 1) for line in ran.out.splitlines() if line.strip())
    for what in ("delete", "snapshot", "reload", "quit", "query"):
        assert answers[what].startswith("HTTP/1.") and " 401 " in answers[what], answers
    # Least reach: nothing but the scrapers is on the application's network.
    assert answers.get("resolves", "").split() == [], answers
    assert guarded(stack).history() >= before
    assert started_at(stack, "prometheus") == prometheus_started


def test_only_the_scrapers_of_the_application_join_its_network(running_stack: Stack) -> None:
    attached = docker(
        "network", "inspect", running_stack.network, "--format",
        '{{range .Containers}}{{.Name}} {{end}}',
    )  # fmt: skip
    assert attached.code == 0, attached.err
    services = {
        name.removeprefix(f"{running_stack.project_name}-").rsplit("-", 1)[0]
        for name in attached.out.split()
    }
    assert services == {"prometheus", "postgres-exporter"}


def test_the_password_is_nowhere_in_docker_inspect(running_stack: Stack) -> None:
    secret = password(running_stack)
    token = base64.b64encode(f"{USER}:{secret}".encode()).decode()
    ids = running_stack.containers(all_states=False)
    assert len(ids) >= 8
    shown = docker("inspect", *ids).out
    assert secret not in shown and token not in shown
    # ... and the containers that need it hold it as a file (compose secret).
    for service in ("prometheus", "alertmanager", "grafana"):
        cid = container(running_stack, service)
        held = docker("exec", cid, "cat", "/run/secrets/monitoring_auth_password")
        assert held.code == 0 and held.out == secret, service
        # probe.sh authenticates: the container becomes healthy.
        wait_for(
            lambda cid=cid: (
                docker("inspect", "-f", "{{.State.Health.Status}}", cid).out.strip() == "healthy"
            ),
            120,
            f"{service}'s healthcheck",
        )


def test_prometheus_scrapes_itself_and_alertmanager_with_the_credentials(
    running_stack: Stack,
) -> None:
    guarded(running_stack).scrapes_itself_and_alertmanager()


@pytest.mark.settles  # APIServiceDown has `for: 1m`: run last, when that minute has passed
def test_an_alert_fires_end_to_end_to_alertmanager(running_stack: Stack) -> None:
    guarded(running_stack).alert_reaches_alertmanager()


def test_grafanas_datasource_queries_prometheus_with_the_provisioned_credentials(
    running_stack: Stack,
) -> None:
    grafana_queries_prometheus(running_stack.root, container(running_stack, "grafana"))


def _rotate_stack(stack_dir: Stack) -> Stack:
    up = stack_dir.monctl(
        "up", "prometheus", "alertmanager", "grafana", "--timeout", "180", timeout=300
    )
    assert up.code == 0, up.out + up.err
    return stack_dir


def test_rotate_replaces_the_password_everywhere(stack_dir: Stack) -> None:
    stack = _rotate_stack(stack_dir)
    old = password(stack)
    old_config = parse_env((stack.root / ".env").read_text())["MONITORING_AUTH_WEB_CONFIG"]
    result = stack.monctl("credentials", "rotate", "--json", timeout=400)
    assert result.code == 0, result.out + result.err
    doc = json.loads(result.out)
    assert doc["handed_over"] == ["prometheus", "alertmanager", "grafana"]
    new = password(stack)
    assert new != old
    assert parse_env((stack.root / ".env").read_text())["MONITORING_AUTH_WEB_CONFIG"] != old_config
    assert (stack.root / ".env").stat().st_mode & 0o777 == 0o600
    for text in (result.out, result.err):
        assert old not in text and new not in text
    for service in ("prometheus", "alertmanager"):
        url = (
            stack.url(service) + "/api/v2/status"
            if service == "alertmanager"
            else (stack.url(service) + "/api/v1/status/config")
        )
        assert httpx.get(url, auth=(USER, old), timeout=15).status_code == 401, service
        assert httpx.get(url, auth=(USER, new), timeout=15).status_code == 200, service
    held = docker(
        "exec", container(stack, "grafana"), "cat", "/run/secrets/monitoring_auth_password"
    )
    assert held.out == new
    # monctl itself follows (it reads .env): health of the three is green.
    health = stack.monctl("health", "prometheus", "alertmanager", "grafana", "--json")
    services = {s["name"]: s["status"] for s in json.loads(health.out)["services"]}
    assert services == dict.fromkeys(("prometheus", "alertmanager", "grafana"), "healthy")


def test_up_hands_a_password_changed_by_hand_to_the_running_services(stack_dir: Stack) -> None:
    """An operator who edits MONITORING_AUTH_PASSWORD: `up` makes the hash again and
    recreates the containers holding the old one."""
    from monctl.credentials import env_text

    stack = _rotate_stack(stack_dir)
    chosen = "Chosen-By-Hand-0123456789"
    env = stack.root / ".env"
    env.write_text(env_text(env.read_text(), {"MONITORING_AUTH_PASSWORD": chosen}))
    up = stack.monctl("up", "prometheus", "alertmanager", "grafana", "--timeout", "180")
    assert up.code == 0, up.out + up.err
    assert chosen not in up.out + up.err
    url = stack.url("prometheus") + "/api/v1/status/config"
    assert httpx.get(url, auth=(USER, chosen), timeout=15).status_code == 200


def test_monctl_never_shows_the_credentials_even_at_vv(running_stack: Stack) -> None:
    """health (probes, deep checks) and reload (POST and its confirmation) send them."""
    secret = password(running_stack)
    token = base64.b64encode(f"{USER}:{secret}".encode()).decode()
    for args in (("health", "prometheus", "alertmanager"), ("reload", "prometheus")):
        result = running_stack.monctl("-vv", *args, timeout=300)
        assert result.code in (0, 3, 4), result.out + result.err
        shown = result.out + result.err
        assert "DEBUG" in shown  # httpx/httpcore's own debug log is there
        assert secret not in shown and token not in shown, args


def test_a_stack_from_before_the_credentials_still_stops(stack_dir: Stack) -> None:
    """.env without MONITORING_AUTH_WEB_CONFIG (never `up` since): compose refuses to start
    such a stack, but `down` and `logs` need no credentials and work."""
    env = parse_env((stack_dir.root / ".env").read_text())
    assert not env.get("MONITORING_AUTH_WEB_CONFIG")
    for args in (("logs", "--tail", "1"), ("down",)):
        result = stack_dir.monctl(*args, timeout=120)
        assert result.code == 0, (args, result.out + result.err)
