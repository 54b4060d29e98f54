"""The Swarm side of the Docker engine API: services, tasks, nodes, configs, secrets.

Thin calls on an ``Engine``'s SDK client (``monctl.adapters.docker``), with
every failure translated the same way (``docker_errors``). Nothing here knows
about monctl's stack: ``monctl.runtime.swarm`` decides what to ask.

These endpoints answer only on a swarm manager; ``require_manager`` says so
first, in the words an operator needs (exit 5, DockerUnavailable).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from monctl.adapters.docker_errors import docker_errors
from monctl.errors import DockerUnavailable, MonctlError

if TYPE_CHECKING:  # pragma: no cover
    from monctl.adapters.docker import Engine

STACK_LABEL = "com.docker.stack.namespace"  # on every object `docker stack deploy` creates
SERVICE_NAME_LABEL = "com.docker.swarm.service.name"  # on every task container


class NotManager(DockerUnavailable):
    """The engine answers, but cannot run a Swarm stack (exit 5, as any Docker problem)."""


def not_manager(info: dict[str, Any]) -> NotManager | None:
    """Why this engine cannot run a Swarm stack (from ``GET /info``), or None when
    it is a manager."""
    swarm = info.get("Swarm") or {}
    state = str(swarm.get("LocalNodeState") or "inactive")
    if state == "active" and swarm.get("ControlAvailable"):
        return None
    if state == "active":
        return NotManager(
            "this Docker engine is a swarm worker, not a manager: the Swarm API answers "
            "only on managers",
            hint="point monctl at a manager (DOCKER_HOST=ssh://user@manager), or promote this "
            "node with `docker node promote` on a manager",
        )
    if state == "locked":
        return NotManager(
            "this Docker engine's swarm is locked", hint="unlock it with `docker swarm unlock`"
        )
    return NotManager(
        f"this Docker engine is not a swarm manager (swarm state: {state or 'inactive'})",
        hint="make it one with `docker swarm init` (a single-node swarm; add "
        "`--advertise-addr ADDRESS` when it has several), or run without --runtime swarm",
    )


def _filters(**items: list[str]) -> dict[str, list[str]]:
    return {key.replace("_", "-"): value for key, value in items.items() if value}


class Swarm:
    """The Swarm endpoints of one engine connection."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.api: Any = engine.client.api

    def require_manager(self) -> dict[str, Any]:
        """``GET /info``; raise DockerUnavailable unless this engine is a swarm manager."""
        info = self.engine.info()
        problem = not_manager(info)
        if problem is not None:
            raise problem
        return info

    # -- looking ------------------------------------------------------------------
    def services(self, stack: str) -> list[dict[str, Any]]:
        with docker_errors("listing Swarm services"):
            found: list[dict[str, Any]] = self.api.services(
                filters={"label": [f"{STACK_LABEL}={stack}"]}, status=True
            )
        return found

    def service(self, name: str) -> dict[str, Any] | None:
        """The service called exactly ``name``, or None."""
        with docker_errors(f"looking up service {name}"):
            found = self.api.services(filters={"name": [name]})
        return next((s for s in found if s.get("Spec", {}).get("Name") == name), None)

    def tasks(self, stack: str, service: str | None = None) -> list[dict[str, Any]]:
        filters = _filters(service=[service] if service else [])
        if service is None:
            filters["label"] = [f"{STACK_LABEL}={stack}"]
        with docker_errors("listing Swarm tasks"):
            found: list[dict[str, Any]] = self.api.tasks(filters=filters)
        return found

    def nodes(self) -> list[dict[str, Any]]:
        with docker_errors("listing Swarm nodes"):
            found: list[dict[str, Any]] = self.api.nodes()
        return found

    def configs(self, stack: str) -> list[dict[str, Any]]:
        with docker_errors("listing Swarm configs"):
            found: list[dict[str, Any]] = self.api.configs(
                filters={"label": [f"{STACK_LABEL}={stack}"]}
            )
        return found

    def secrets(self, stack: str) -> list[dict[str, Any]]:
        with docker_errors("listing Swarm secrets"):
            found: list[dict[str, Any]] = self.api.secrets(
                filters={"label": [f"{STACK_LABEL}={stack}"]}
            )
        return found

    # -- changing -----------------------------------------------------------------
    def update_service(self, service: dict[str, Any], spec: dict[str, Any]) -> None:
        """Replace ``service``'s spec (the version guards against a concurrent change)."""
        name = service.get("Spec", {}).get("Name", "?")
        with docker_errors(f"updating service {name}"):
            response = self.api._post_json(
                self.api._url("/services/{0}/update", service["ID"]),
                data=spec,
                params={"version": service["Version"]["Index"]},
            )
            self.api._raise_for_status(response)

    def create_config(self, name: str, data: bytes, stack: str, template: bool) -> str:
        """A config (its id); an existing one of that name is reused (names are hashes)."""
        existing = self._find("configs", name)
        if existing:
            return existing
        templating = {"Name": "golang"} if template else None
        with docker_errors(f"creating config {name}"):
            created = self.api.create_config(name, data, {STACK_LABEL: stack}, templating)
        return str(created["ID"])

    def create_secret(self, name: str, data: bytes, stack: str) -> str:
        existing = self._find("secrets", name)
        if existing:
            return existing
        with docker_errors(f"creating secret {name}"):
            created = self.api.create_secret(name, data, {STACK_LABEL: stack})
        return str(created["ID"])

    def _find(self, kind: str, name: str) -> str | None:
        with docker_errors(f"listing {kind}"):
            found = getattr(self.api, kind)(filters={"name": [name]})
        match = [o for o in found if o.get("Spec", {}).get("Name") == name]
        return str(match[0]["ID"]) if match else None

    def remove_unused(self, stack: str) -> list[str]:
        """Remove the stack's configs and secrets no service refers to any more (the
        old content-hashed ones after a change). Returns the names removed."""
        used: set[str] = set()
        for service in self.services(stack):
            container = service.get("Spec", {}).get("TaskTemplate", {}).get("ContainerSpec", {})
            used |= {c.get("ConfigID", "") for c in container.get("Configs") or []}
            used |= {s.get("SecretID", "") for s in container.get("Secrets") or []}
        removed: list[str] = []
        for kind, objects in (("config", self.configs(stack)), ("secret", self.secrets(stack))):
            for obj in objects:
                if obj["ID"] in used:
                    continue
                try:
                    with docker_errors(f"removing {kind}"):
                        getattr(self.api, f"remove_{kind}")(obj["ID"])
                except MonctlError:  # still in use by a task being replaced: next time
                    continue
                removed.append(str(obj.get("Spec", {}).get("Name", obj["ID"])))
        return removed


def filters_param(**items: list[str]) -> str:
    """A ``filters`` query parameter for the engine API."""
    return json.dumps(_filters(**items))
