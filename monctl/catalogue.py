"""The service catalogue: every service of the stack, described once.

Every command reads this table: ``up`` and ``status`` for ports and images,
``health`` for endpoints and how to read them, ``reload`` for how a service
takes new configuration, ``backup``/``restore`` for where its data lives, who
owns it and how to copy it consistently. Adding a service to the stack means
adding one entry here (and to the compose file); the strategies named here
are looked up by name in the operation modules (``monctl.ops.*``), so no
command grows a per-service ``if`` ladder.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

# How a probe's answer is read. Interpreted in monctl/ops/probes.py.
ProbeKind = Literal[
    "status-200",  # any 200 is good; anything else is reported with its body
    "prometheus-ready",  # 200 ready; 503 = starting or stopping (not ready)
    "grafana-health",  # JSON {"database": "ok"|...}; 503 when the database fails
    "loki-ready",  # 200 "ready"; 503 with the ingester's reason
    "promtail-ready",  # 200 "Ready"; 500 "Not ready: Unable to find any logs to tail"
    "pg-up",  # /metrics must carry pg_up; pg_up 0 = exporter up, database down
]

# How a service takes new configuration. Interpreted in monctl/ops/reload.py.
ReloadKind = Literal[
    "prometheus-lifecycle",  # promtool check, POST /-/reload, confirm via metrics
    "alertmanager-lifecycle",  # amtool check, POST /-/reload, confirm via metrics
    "grafana-provisioning",  # POST /api/admin/provisioning/*/reload
    "promtail-runtime",  # POST /reload when runtime reload is on, else restart
    "restart",  # no reload API upstream: restart and wait for ready
    "none",  # nothing to reload (exporters configured by flags only)
]

# How a service's data is copied consistently. Interpreted in monctl/ops/backup.py.
BackupKind = Literal[
    "prometheus-snapshot",  # TSDB snapshot API, copy the snapshot, always delete it
    "pause-copy",  # pause the container for the length of the copy (SQLite, silences)
    "flush-pause-copy",  # POST the flush endpoint, then pause and copy
]


@dataclass(frozen=True)
class Probe:
    path: str
    kind: ProbeKind = "status-200"


@dataclass(frozen=True)
class DataVolume:
    volume: str  # compose volume key; Docker's name is "<project>_<volume>"
    path: str  # mount point inside the container
    uid: int  # the image's user: restored files must belong to it
    gid: int
    backup: BackupKind
    flush_path: str | None = None  # for "flush-pause-copy"


@dataclass(frozen=True)
class Service:
    name: str  # the compose service name, also the name on monctl's command line
    title: str
    role: str  # one line: what the service does in the stack
    container_port: int
    port_var: str  # .env variable holding the host port
    default_port: int
    image_var: str  # .env variable overriding the image (mirrors, tests)
    liveness: Probe
    readiness: Probe | None = None
    reload: ReloadKind = "none"
    validate: tuple[str, ...] = ()  # command run inside the container to check config
    data: DataVolume | None = None
    version_path: str | None = None  # JSON endpoint that reports the running version
    stand_in_in_tests: bool = False  # no real binary on the CI machine (see tests/images)
    url_var: str = field(init=False)  # MONCTL_<SERVICE>_URL overrides discovery

    def __post_init__(self) -> None:
        env_name = self.name.upper().replace("-", "_")
        object.__setattr__(self, "url_var", f"MONCTL_{env_name}_URL")


SERVICES: tuple[Service, ...] = (
    Service(
        name="prometheus",
        title="Prometheus",
        role="metrics store, rule evaluation",
        container_port=9090,
        port_var="PROMETHEUS_PORT",
        default_port=9090,
        image_var="PROMETHEUS_IMAGE",
        liveness=Probe("/-/healthy"),
        readiness=Probe("/-/ready", "prometheus-ready"),
        reload="prometheus-lifecycle",
        validate=("promtool", "check", "config", "/etc/prometheus/prometheus.yml"),
        data=DataVolume("prometheus_data", "/prometheus", 65534, 65534, "prometheus-snapshot"),
        version_path="/api/v1/status/buildinfo",
    ),
    Service(
        name="alertmanager",
        title="Alertmanager",
        role="alert routing and notification",
        container_port=9093,
        port_var="ALERTMANAGER_PORT",
        default_port=9093,
        image_var="ALERTMANAGER_IMAGE",
        liveness=Probe("/-/healthy"),
        readiness=Probe("/-/ready"),
        reload="alertmanager-lifecycle",
        validate=("amtool", "check-config", "/etc/alertmanager/alertmanager.yml"),
        data=DataVolume("alertmanager_data", "/alertmanager", 65534, 65534, "pause-copy"),
        version_path="/api/v2/status",
    ),
    Service(
        name="grafana",
        title="Grafana",
        role="dashboards",
        container_port=3000,
        port_var="GRAFANA_PORT",
        default_port=3001,
        image_var="GRAFANA_IMAGE",
        liveness=Probe("/healthz"),
        readiness=Probe("/api/health", "grafana-health"),
        reload="grafana-provisioning",
        data=DataVolume("grafana_data", "/var/lib/grafana", 472, 0, "pause-copy"),
        version_path="/api/health",
        stand_in_in_tests=True,
    ),
    Service(
        name="loki",
        title="Loki",
        role="log store",
        container_port=3100,
        port_var="LOKI_PORT",
        default_port=3100,
        image_var="LOKI_IMAGE",
        liveness=Probe("/metrics"),
        readiness=Probe("/ready", "loki-ready"),
        reload="restart",
        data=DataVolume(
            "loki_data", "/loki", 10001, 10001, "flush-pause-copy", flush_path="/flush"
        ),
        version_path="/loki/api/v1/status/buildinfo",
        stand_in_in_tests=True,
    ),
    Service(
        name="promtail",
        title="Promtail",
        role="log shipper (deprecated upstream; successor: Grafana Alloy)",
        container_port=9080,
        port_var="PROMTAIL_PORT",
        default_port=9080,
        image_var="PROMTAIL_IMAGE",
        liveness=Probe("/metrics"),
        readiness=Probe("/ready", "promtail-ready"),
        reload="promtail-runtime",
        stand_in_in_tests=True,
    ),
    Service(
        name="node-exporter",
        title="node-exporter",
        role="host metrics; also publishes monctl's backup metrics (textfile collector)",
        container_port=9100,
        port_var="NODE_EXPORTER_PORT",
        default_port=9100,
        image_var="NODE_EXPORTER_IMAGE",
        liveness=Probe("/metrics"),
    ),
    Service(
        name="cadvisor",
        title="cAdvisor",
        role="container metrics",
        container_port=8080,
        port_var="CADVISOR_PORT",
        default_port=8081,  # the application already owns host port 8080
        image_var="CADVISOR_IMAGE",
        liveness=Probe("/healthz"),
        stand_in_in_tests=True,
    ),
    Service(
        name="postgres-exporter",
        title="postgres-exporter",
        role="PostgreSQL metrics for the application's database",
        container_port=9187,
        port_var="POSTGRES_EXPORTER_PORT",
        default_port=9187,
        image_var="POSTGRES_EXPORTER_IMAGE",
        liveness=Probe("/metrics"),
        readiness=Probe("/metrics", "pg-up"),
    ),
)

BY_NAME: dict[str, Service] = {s.name: s for s in SERVICES}
NAMES: tuple[str, ...] = tuple(BY_NAME)
BACKED_UP: tuple[Service, ...] = tuple(s for s in SERVICES if s.data is not None)

# The application the stack watches. These are not services of the stack: when
# they are down, monctl reports "watched target down" (its own exit code), not a
# broken stack. Matched against Prometheus' scrape targets by job name; the
# database itself is seen through postgres-exporter's pg_up. Every other scrape
# job is named after the stack service it scrapes.
WATCHED_JOBS: tuple[str, ...] = ("backend", "backend-export")


def get(name: str) -> Service:
    """Return the service called ``name``; raise ConfigError naming the known ones."""
    from monctl.errors import ConfigError

    try:
        return BY_NAME[name]
    except KeyError:
        raise ConfigError(
            f"unknown service {name!r}",
            hint=f"known services: {', '.join(NAMES)}",
        ) from None


def select(names: tuple[str, ...] | list[str]) -> tuple[Service, ...]:
    """The services named (all of them when none are), in catalogue order."""
    if not names:
        return SERVICES
    wanted = {get(n).name for n in names}
    return tuple(s for s in SERVICES if s.name in wanted)
