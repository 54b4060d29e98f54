"""Deploying, rolling and removing the Swarm stack (``SwarmRuntime`` delegates here).

``deploy``: render the stack file (``swarm_stack``), make sure the external
networks are swarm-scoped overlays, choose where the single-task services go
(the ``monitoring=true`` node label, else the managers), run the real
`docker stack deploy`, start the loopback gateways, and remove the configs
and secrets no service uses any more. ``roll_out``: the same objects for one
service, created through the API and put into its spec, so only that service
rolls. ``remove``: `docker stack rm`, then (with ``volumes``) the data.
"""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from monctl import runner
from monctl.adapters import compose_cli
from monctl.adapters.docker_errors import docker_errors
from monctl.adapters.swarm import STACK_LABEL
from monctl.errors import ConfigError, OperationFailed, StartFailed
from monctl.redaction import redact
from monctl.runtime import gateway, swarm_stack

if TYPE_CHECKING:  # pragma: no cover
    from monctl.result import Progress
    from monctl.runtime.swarm import SwarmRuntime
    from monctl.services.model import Service

NODE_LABEL = "monitoring"  # `docker node update --label-add monitoring=true NODE`
GID_VAR = "MONCTL_DOCKER_GID"
SOCKET = "/var/run/docker.sock"


def docker_gid(project: Any) -> str:
    """The group of the engine socket on the manager, for Prometheus' Swarm discovery:
    MONCTL_DOCKER_GID, else read from the local socket when monctl talks to it."""
    from monctl.adapters import ssh

    given = project.setting(GID_VAR)
    if given:
        return str(given)
    host = os.environ.get("DOCKER_HOST") or f"unix://{SOCKET}"
    if host.startswith("unix://") and os.path.exists(host[len("unix://") :]):
        return str(os.stat(host[len("unix://") :]).st_gid)
    remote = ssh.target()
    if remote is not None:
        asked = ssh.run(remote, ["stat", "-c", "%g", SOCKET])
        if asked.returncode == 0 and asked.stdout.strip().isdigit():
            return asked.stdout.strip()
    return ""


def model(runtime: SwarmRuntime, placeholders: bool = False) -> dict[str, Any]:
    """The compose file with the Swarm file merged over it, interpolated by
    `docker compose config` (``placeholders``: required variables that are not set
    get a placeholder, for one-off check containers)."""
    import yaml

    project = runtime.project
    overlay = project.root / swarm_stack.SWARM_FILE
    if not overlay.is_file():
        raise ConfigError(
            f"{overlay} is missing: the Swarm runtime needs it beside the compose file",
            hint="restore it from the stack (`monctl init DIR` writes a fresh copy)",
        )
    env = dict(os.environ)
    if placeholders:
        env = compose_cli.required_placeholders(project) or env
    gid = docker_gid(project)
    if not gid and not placeholders:
        raise ConfigError(
            "cannot tell the group of the Docker socket on the manager (monctl does not "
            "talk to a local socket)",
            hint=f"set {GID_VAR} in .env to the output of `stat -c %g {SOCKET}` on the manager",
        )
    env[GID_VAR] = gid or "0"
    result = compose_cli.run(
        project, "--file", str(overlay), "config", "--format", "yaml", timeout=60, env=env
    )
    if result.returncode != 0:
        lines = [line for line in redact(result.stderr).splitlines() if line.strip()]
        raise ConfigError(
            "the compose files do not load: " + (lines[-1] if lines else "(no output)"),
            hint="fix the variable or file it names (see .env.example)",
        )
    loaded = yaml.safe_load(result.stdout)
    return loaded if isinstance(loaded, dict) else {}


def constraints(runtime: SwarmRuntime, progress: Progress | None) -> list[str]:
    """Where the single-task services (and their volumes) go: a manager, and the
    one labelled monitoring=true when some node is."""
    nodes = runtime.swarm.nodes()
    labelled = [n for n in nodes if (n.get("Spec", {}).get("Labels") or {}).get(NODE_LABEL)]
    managers = [n for n in nodes if n.get("Spec", {}).get("Role") == "manager"]
    if labelled and not [n for n in labelled if n in managers]:
        names = ", ".join(str(n.get("Description", {}).get("Hostname", "?")) for n in labelled)
        raise ConfigError(
            f"the node(s) labelled {NODE_LABEL}=true ({names}) are workers: Prometheus reads "
            "the Swarm API and monctl reaches the services' data through a manager",
            hint=f"label a manager instead (docker node update --label-add {NODE_LABEL}=true "
            "NODE) or promote the node (docker node promote NODE)",
        )
    if labelled:
        return ["node.role == manager", f"node.labels.{NODE_LABEL} == true"]
    if len(managers) > 1 and progress is not None:
        progress.note(
            f"no node is labelled {NODE_LABEL}=true: Prometheus, Alertmanager, Grafana and Loki "
            f"may run on any of {len(managers)} managers, and their volumes with them; label "
            f"one: docker node update --label-add {NODE_LABEL}=true NODE"
        )
    return ["node.role == manager"]


def _ensure_networks(
    runtime: SwarmRuntime, rendered: swarm_stack.Rendered, progress: Progress
) -> None:
    """External networks (the application's) must exist, swarm-scoped: create it
    as an attachable overlay when missing, refuse a bridge one."""
    client = runtime.engine.client
    for name in rendered.networks.values():
        with docker_errors(f"looking up network {name}"):
            found = [n for n in client.networks.list(names=[name]) if n.name == name]
        if not found:
            runtime.engine.create_network(name, driver="overlay", attachable=True)
            progress.note(
                f"created the application network {name} (an attachable overlay; "
                "the application is not running yet)"
            )
            continue
        scope = found[0].attrs.get("Scope")
        if scope != "swarm":
            raise ConfigError(
                f"network {name} is a {scope} network: Swarm services can only join "
                "swarm-scoped (overlay) networks",
                hint=f"run the application on an attachable overlay network (docker network "
                f"create -d overlay --attachable {name}), or set APP_NETWORK_NAME to one",
            )


def _local_binds(runtime: SwarmRuntime, rendered: swarm_stack.Rendered) -> None:
    """Volumes that are a directory of this host here (node-exporter's textfile
    directory) and an empty volume of their own on every other node."""
    from monctl.adapters import ssh

    if ssh.target() is not None:
        return  # the directory is on this machine, the engine on another one
    for name, directory in rendered.local_binds.items():
        if runtime.engine.volume(name) is not None:
            continue
        directory.mkdir(parents=True, exist_ok=True)
        runtime.engine.create_volume(
            name,
            {STACK_LABEL: runtime.stack},
            options={"type": "none", "o": "bind", "device": str(directory)},
        )


def deploy(runtime: SwarmRuntime, services: tuple[Service, ...], progress: Progress) -> None:
    from monctl import services as declared

    runtime.swarm  # not a manager: say so before anything else  # noqa: B018
    compose_cli.compose_command()
    chosen = services or tuple(declared.SERVICES)
    placement = {s.name: s.placement for s in declared.SERVICES}
    rendered = swarm_stack.render(
        runtime.project,
        model(runtime),
        placement,
        constraints(runtime, progress),
        tuple(s.name for s in services),
    )
    singles = tuple(s for s in chosen if s.placement == "single")
    gateway.check_ports(runtime.engine, runtime.project, singles)
    _ensure_networks(runtime, rendered, progress)
    _local_binds(runtime, rendered)
    values = {s.var: runtime.project.setting(s.var) for f in rendered.secrets.values() for s in f}
    import tempfile

    with tempfile.TemporaryDirectory(prefix="monctl-swarm-") as tmp:
        path = rendered.write(Path(tmp), values)
        argv = ["docker", "stack", "deploy", "--compose-file", str(path)]
        argv += ["--resolve-image", "never"] + ([] if services else ["--prune"])
        result = runner.run([*argv, runtime.stack], timeout=600)
    if result.returncode != 0:
        text = redact((result.stderr or "") + (result.stdout or ""))
        lines = [line for line in text.splitlines() if line.strip()]
        raise StartFailed(
            "docker stack deploy failed: " + (lines[-1] if lines else "(no output)"),
            hint="`docker stack ps " + runtime.stack + " --no-trunc` shows the tasks' errors",
        )
    network = f"{runtime.stack}_monitoring"
    gateway.ensure(runtime.engine, runtime.project, singles, network)
    runtime.swarm.remove_unused(runtime.stack)


def roll_out(runtime: SwarmRuntime, service: Service, progress: Progress) -> bool:
    """Put the service's configs and secrets, as they are on disk and in .env, into
    its spec; True when that changed it (Swarm then replaced its tasks)."""
    from monctl import services as declared

    placement = {s.name: s.placement for s in declared.SERVICES}
    rendered = swarm_stack.render(runtime.project, model(runtime), placement, [], (service.name,))
    swarm, stack = runtime.swarm, runtime.stack
    configs = [
        {
            "File": {"Name": c.target, "UID": "0", "GID": "0", "Mode": 0o444},
            "ConfigID": swarm.create_config(c.name, c.path.read_bytes(), stack, c.template),
            "ConfigName": c.name,
        }
        for c in rendered.configs.get(service.name, [])
    ]
    secrets = [
        {
            "File": {"Name": s.target, "UID": s.uid, "GID": s.gid, "Mode": s.mode},
            "SecretID": swarm.create_secret(s.name, runtime.project.setting(s.var).encode(), stack),
            "SecretName": s.name,
        }
        for s in rendered.secrets.get(service.name, [])
    ]
    found = swarm.service(runtime.full_name(service))
    if found is None:
        raise OperationFailed(
            f"{service.name} is not deployed in stack {stack!r}",
            hint=f"deploy it with `monctl --runtime swarm up {service.name}`",
        )
    container = found["Spec"]["TaskTemplate"]["ContainerSpec"]
    now = {c.get("ConfigName") for c in container.get("Configs") or []}
    now |= {s.get("SecretName") for s in container.get("Secrets") or []}
    if now == {c["ConfigName"] for c in configs} | {s["SecretName"] for s in secrets}:
        return False
    progress.note(f"{service.name}: rolling out new configs/secrets (Swarm replaces its tasks)")

    def change(spec: dict[str, Any]) -> None:
        spec["TaskTemplate"]["ContainerSpec"]["Configs"] = configs
        spec["TaskTemplate"]["ContainerSpec"]["Secrets"] = secrets

    runtime.update(service, change)
    swarm.remove_unused(stack)
    return True


def remove(runtime: SwarmRuntime, volumes: bool, timeout: float = 120) -> None:
    """`docker stack rm`; with ``volumes``, once the task containers are gone (a
    volume in use by a stopped container cannot be removed), the stack's volumes
    on this engine."""
    engine, stack = runtime.engine, runtime.stack
    gateway.remove_all(engine, stack)
    result = runner.run(["docker", "stack", "rm", stack], timeout=timeout)
    if result.returncode != 0 and "Nothing found in stack" not in (result.stderr or ""):
        raise OperationFailed("docker stack rm failed: " + redact(result.stderr.strip()[-300:]))
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        left = engine.containers([f"{STACK_LABEL}={stack}"])
        networks = engine.client.networks.list(filters={"label": f"{STACK_LABEL}={stack}"})
        if not left and not networks:
            break
        time.sleep(1)
    if volumes:
        for name in engine.volumes(f"{STACK_LABEL}={stack}"):
            engine.remove_volume(name)


def logs(
    runtime: SwarmRuntime, services: tuple[Service, ...], follow: bool, tail: str | None
) -> int:
    """`docker service logs` of each service (concurrently when following)."""
    from concurrent.futures import ThreadPoolExecutor

    from monctl import services as declared

    existing = runtime.states()
    chosen = [s for s in (services or tuple(declared.SERVICES)) if s.name in existing]
    if not chosen:
        raise OperationFailed(
            f"stack {runtime.stack!r} runs none of these services",
            hint="deploy it with `monctl --runtime swarm up`",
        )
    args = ["--follow"] if follow else []
    args += ["--tail", tail] if tail else []

    def one(service: Service) -> int:
        argv = ["docker", "service", "logs", *args, runtime.full_name(service)]
        return runner.run(argv, timeout=86400 if follow else 120, capture=False).returncode

    if not follow:
        return max(one(s) for s in chosen)
    with ThreadPoolExecutor(max_workers=len(chosen)) as pool:
        return max(pool.map(one, chosen))
