"""The catalogue and the compose file describe the same stack."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from monctl import catalogue

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="module")
def compose_file() -> dict[str, Any]:
    data: dict[str, Any] = yaml.safe_load(
        (REPO / "compose" / "docker-compose.monitoring.yml").read_text()
    )
    return data


def test_every_catalogue_service_is_in_compose_and_back(compose_file: dict[str, Any]) -> None:
    assert set(compose_file["services"]) == set(catalogue.NAMES)


@pytest.mark.parametrize("service", catalogue.SERVICES, ids=lambda s: s.name)
def test_ports_images_and_volumes_match(
    service: catalogue.Service, compose_file: dict[str, Any]
) -> None:
    spec = compose_file["services"][service.name]
    assert f"${{{service.image_var}:-" in spec["image"], "image must be overridable"
    published = [str(p) for p in spec.get("ports", [])]
    expected = f"${{{service.port_var}:-{service.default_port}}}:{service.container_port}"
    assert any(p.endswith(expected) for p in published), (published, expected)
    # Published only on the configured bind address (127.0.0.1 by default).
    assert all(p.startswith("${MONITORING_BIND_ADDRESS:-127.0.0.1}:") for p in published)
    if service.data is not None:
        mounts = [str(v) for v in spec.get("volumes", [])]
        assert f"{service.data.volume}:{service.data.path}" in mounts
        assert service.data.volume in compose_file["volumes"]


def test_ports_do_not_collide_with_each_other_or_the_application() -> None:
    defaults = [s.default_port for s in catalogue.SERVICES]
    assert len(defaults) == len(set(defaults))
    assert 8080 not in defaults and 8000 not in defaults and 3000 not in defaults


def test_url_override_variables_follow_the_naming_rule() -> None:
    assert catalogue.get("prometheus").url_var == "MONCTL_PROMETHEUS_URL"
    assert catalogue.get("postgres-exporter").url_var == "MONCTL_POSTGRES_EXPORTER_URL"
