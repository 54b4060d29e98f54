"""The shape of a service declaration: everything monctl knows about one service.

Each module of ``monctl.services`` fills one ``Service`` with these pieces;
operations read them and never name a service. What each piece means to the
operation that reads it:

- ``liveness``/``readiness`` (``Probe``): the path, and the function that reads
  the answer (``monctl.health``);
- ``deep``: deeper questions asked of a live service (``monctl.health``);
- ``config`` and ``checks``: where the configuration is mounted and how it is
  validated: a tool in the service's image (``ToolCheck``) or a check on the
  host (``HostCheck``) (``monctl.config.validate``, and ``reload`` before it
  touches anything);
- ``reload``: how new configuration is applied and confirmed
  (``monctl.config.reload``);
- ``data``: where the data lives, who owns it and how a consistent copy is
  taken (``monctl.backup``);
- ``start_secrets``: secrets the container reads only when it starts
  (``up`` reports unset ones, ``reload`` says when a restart is needed);
- ``placement``: one task for the stack, or one on every node (Swarm);
- ``scrapes``: the service scrapes the others and can say how each target is
  (``monctl.health`` judges the services on every node by it);
- ``drill``: how a restore drill proves the restored data usable, and what a
  backup records for it to compare with (``monctl.backup.drill``);
- ``http_client``: an HTTP client the image holds, so a drill can reach the
  services inside their network without publishing a port;
- ``basic_auth``: the service answers only to the stack's credentials
  (``monctl.credentials``): every request monctl sends it carries them.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from monctl.services.answers import (
    Check,
    DeepCheck,
    DrillAsk,
    Fetched,
    Interpreter,
    Target,
    status_200,
)

if TYPE_CHECKING:  # pragma: no cover
    from monctl.config.problems import Problem


@dataclass(frozen=True)
class Probe:
    path: str
    read: Interpreter = status_200  # how the answer is judged


# -- configuration: validation -------------------------------------------------------


@dataclass(frozen=True)
class ConfigMount:
    """Where the compose file mounts the service's configuration directory."""

    host: str  # relative to the project root, e.g. "config/prometheus"
    container: str  # e.g. "/etc/prometheus"


@dataclass(frozen=True)
class ToolCheck:
    """A checking program in the service's own image: ``argv`` plus the files ``files`` matches.

    ``files`` is a glob relative to the project root, inside the service's
    ``config`` mount; each match is passed as the container sees it, through
    ``file_arg`` ("{}" alone, or "-config.file={}"). ``ran`` are texts the tool
    prints whenever it ran at all: a failure without one of them means the tool
    could not run, not that the files are invalid. ``local_argv`` replaces
    ``argv`` for ``validate --local``, where paths a config names are container
    paths that mean something else on the host. ``gates_reload``: ``reload``
    runs this check inside the running container and refuses on failure.
    ``runtime``: the check concerns files only that runtime uses (None: every one).
    """

    name: str
    argv: tuple[str, ...]
    files: str
    ran: tuple[str, ...]
    file_arg: str = "{}"
    local_argv: tuple[str, ...] | None = None
    gates_reload: bool = False
    runtime: str | None = None
    # `validate --local` names it when the program is missing: the package or image that has it
    provided_by: str = ""

    @property
    def program(self) -> str:
        """The program's name on a host PATH (``validate --local``)."""
        return self.argv[0].rsplit("/", 1)[-1]


@dataclass(frozen=True)
class HostCheck:
    """A check of configuration files run on the host, with Python (no program
    exists for it). ``run(root)`` returns the problems found and how many files it read."""

    name: str
    run: Callable[[Path], tuple[list[Problem], int]]


ConfigCheck = ToolCheck | HostCheck


# -- configuration: reload ----------------------------------------------------------


@dataclass(frozen=True)
class ReloadMetrics:
    """Metrics that confirm a reload: a success flag, a success timestamp that
    must grow, and optionally a hash of the loaded file (changes when it did)."""

    ok: str
    timestamp: str
    hash: str | None = None


@dataclass(frozen=True)
class HttpReload:
    """``POST path`` applies the configuration.

    ``confirm``: metrics read before and after (None: the answer is the
    confirmation). ``off_status``/``off_reason``/``off_hint``: the answer when
    the reload API is switched off, what that means, and how to switch it on.
    ``missing_restarts``: a 404 means runtime reload is off, so restart instead.
    ``unchanged``: a text in an error answer that means "nothing changed" (a success).
    """

    path: str
    confirm: ReloadMetrics | None = None
    off_status: int | None = None
    off_reason: str = "its reload API is off"
    off_hint: str = ""
    missing_restarts: bool = False
    unchanged: str | None = None


@dataclass(frozen=True)
class ProvisioningReload:
    """Reload provisioned parts through an admin API with credentials from ``.env``."""

    path: str  # with "{part}"
    parts: tuple[str, ...]
    user_var: str
    password_var: str
    default_user: str = "admin"
    credentials_hint: str = ""


@dataclass(frozen=True)
class RestartReload:
    """No reload API upstream: restart the container and wait until ready."""

    why: str


@dataclass(frozen=True)
class NoReload:
    why: str = "configured by flags only"


Reload = HttpReload | ProvisioningReload | RestartReload | NoReload


# -- data ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Snapshot:
    """A consistent copy made by the service itself (Prometheus' TSDB snapshot):
    ``POST create`` answers ``{"data": {"name": N}}``; the copy is
    ``<data path>/<directory>/N``, deleted afterwards (the service never does)."""

    create: str
    directory: str
    off_status: int | None = None
    off_hint: str = ""


@dataclass(frozen=True)
class Pause:
    """The container is paused for exactly the length of the copy; ``flush`` is
    POSTed first to write in-memory data out (Loki's /flush)."""

    flush: str | None = None


CopyMethod = Snapshot | Pause


@dataclass(frozen=True)
class Layout:
    """Which parts of a service's data never change once written, so that an
    incremental backup stores them once (shared objects) and need not read them again.

    ``units``: a regular expression for top-level names (of the copy: the
    snapshot, or the data path) that are immutable units — a TSDB block, named
    by its ULID. Every file of a unit becomes a shared object; a unit the
    repository already holds, whose files the listing shows unchanged (same
    names, sizes and times), is not read from the engine at all.
    ``objects``: globs (``fnmatch``, paths relative to the data directory) of
    other files stored as shared objects: written once, never changed (Loki's
    chunks). Everything else is packed per backup.
    ``compressed``: globs of files already compressed (TSDB chunks, Loki chunks):
    stored as they are, without sampling.
    ``listing``: a program run inside the service's container that prints
    ``<mode in hex> <size> <mtime> <path>`` for every entry below ``{path}``
    (``find`` + ``stat``); empty when the image cannot run one (distroless): then
    everything is read and only new content is written.
    """

    units: str = ""
    objects: tuple[str, ...] = ()
    compressed: tuple[str, ...] = ()
    listing: tuple[str, ...] = ()


@dataclass(frozen=True)
class DataVolume:
    volume: str  # compose volume key; Docker's name is "<project>_<volume>"
    path: str  # mount point inside the container
    uid: int  # the image's user: restored files must belong to it
    gid: int
    copy: CopyMethod
    layout: Layout = Layout()  # what is immutable (incremental backups); default: nothing

    @property
    def strategy(self) -> str:
        """The copy method as manifests name it: "snapshot", "pause" or "flush-pause"."""
        if isinstance(self.copy, Snapshot):
            return "snapshot"
        return "flush-pause" if self.copy.flush else "pause"


@dataclass(frozen=True)
class StartSecret:
    """A secret from ``.env`` the container reads only when it starts."""

    var: str
    channel: str  # what it switches on ("slack"); empty value: not configured


# -- scraping the others ---------------------------------------------------------------


@dataclass(frozen=True)
class ScrapeTargets:
    """The service scrapes the others and says how each target is (Prometheus'
    targets API): ``GET path``, read by ``read`` into targets (job, instance =
    the node, state, last error), or None when the answer says nothing. Health
    judges the services that run on every node (Swarm) by it: one query, whatever
    the number of nodes, for tasks monctl cannot reach one by one."""

    path: str
    read: Callable[[Fetched], list[Target] | None]


# -- restore drills ------------------------------------------------------------------------


@dataclass(frozen=True)
class Drill:
    """How a restore drill proves a service's restored data usable, not only present.

    ``check(ask)`` runs against the service restored into a throwaway stack and
    returns its checks (a query over the backup's time range, the dashboards the
    backup recorded ...). ``record(ask)``, when given, runs at backup time against
    the live service, before its data is held, and returns the facts the manifest
    keeps for ``check`` to compare with (``ask.facts``); it may raise to say it
    could not tell (the backup then only warns).
    """

    check: Callable[[DrillAsk], tuple[Check, ...]]
    record: Callable[[DrillAsk], dict[str, Any]] | None = None


@dataclass(frozen=True)
class HttpClient:
    """An HTTP client inside the service's image (busybox wget in most upstream images):
    ``argv`` + URL prints the body on stdout and fails for a status other than 2xx;
    ``header`` + "Name: value" adds a request header; ``idle`` keeps a container of the
    image alive doing nothing, so the client can be run in it again and again."""

    argv: tuple[str, ...]
    header: str
    idle: tuple[str, ...]


# busybox's wget, as in the upstream Prometheus, Alertmanager and Grafana (Alpine) images.
BUSYBOX_WGET = HttpClient(("wget", "-q", "-O", "-"), "--header", ("sleep", "86400"))


# -- the declaration ---------------------------------------------------------------------


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
    deep: DeepCheck | None = None
    config: ConfigMount | None = None
    checks: tuple[ConfigCheck, ...] = ()
    reload: Reload = NoReload()
    data: DataVolume | None = None
    start_secrets: tuple[StartSecret, ...] = ()
    placement: Literal["single", "every-node"] = "single"
    scrapes: ScrapeTargets | None = None
    drill: Drill | None = None
    http_client: HttpClient | None = None
    basic_auth: bool = False
    url_var: str = field(init=False)  # MONCTL_<SERVICE>_URL overrides discovery

    def __post_init__(self) -> None:
        env_name = self.name.upper().replace("-", "_")
        object.__setattr__(self, "url_var", f"MONCTL_{env_name}_URL")

    @property
    def tool_checks(self) -> tuple[ToolCheck, ...]:
        return tuple(c for c in self.checks if isinstance(c, ToolCheck))

    def checks_for(self, runtime: str) -> tuple[ConfigCheck, ...]:
        """The checks that concern ``runtime`` (a ToolCheck may name the one it is for)."""
        return tuple(
            c for c in self.checks if not isinstance(c, ToolCheck) or c.runtime in (None, runtime)
        )
