"""The service declarations: each one complete and consistent (the compose file is
checked against them in tests/stack/test_stack_compose.py)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

from monctl import services
from monctl.services.model import HostCheck, Service, ToolCheck

REPO = Path(__file__).resolve().parents[2]
OPERATIONS = [
    *sorted((REPO / "monctl" / "lifecycle").glob("*.py")),
    *sorted((REPO / "monctl" / "health").glob("*.py")),
    *sorted((REPO / "monctl" / "config").glob("*.py")),
    *sorted((REPO / "monctl" / "backup").glob("*.py")),
    *sorted((REPO / "monctl" / "repository").glob("*.py")),
    *sorted((REPO / "monctl" / "monitoring").glob("*.py")),
    *sorted((REPO / "monctl" / "runtime").glob("*.py")),
    *sorted((REPO / "monctl" / "cli").glob("*.py")),
]


def test_names_are_unique_and_lookups_work() -> None:
    names = services.names()
    assert len(names) == len(set(names))
    assert services.get("loki").title == "Loki"
    assert services.select(["loki", "prometheus"]) == (
        services.get("prometheus"),
        services.get("loki"),
    )  # in declaration order


def test_ports_do_not_collide_with_each_other_or_the_application() -> None:
    defaults = [s.default_port for s in services.SERVICES]
    assert len(defaults) == len(set(defaults))
    assert 8080 not in defaults and 8000 not in defaults and 3000 not in defaults


def test_url_override_variables_follow_the_naming_rule() -> None:
    assert services.get("prometheus").url_var == "MONCTL_PROMETHEUS_URL"
    assert services.get("postgres-exporter").url_var == "MONCTL_POSTGRES_EXPORTER_URL"


@pytest.mark.parametrize("service", services.SERVICES, ids=lambda s: s.name)
def test_checks_read_files_under_the_config_mount(service: Service) -> None:
    for check in service.checks:
        if isinstance(check, ToolCheck):
            assert service.config is not None, service.name
            assert check.files.startswith(service.config.host + "/"), check
            assert check.ran, f"{service.name} {check.name}: no text proves the tool ran"
        else:
            assert isinstance(check, HostCheck)


@pytest.mark.parametrize("path", OPERATIONS, ids=lambda p: str(p.relative_to(REPO)))
def test_no_operation_names_a_service(path: Path) -> None:
    """Operations iterate over declarations: a service's name in a string literal of an
    operation module would be a per-service rule outside its declaration."""
    names = set(services.names())
    tree = ast.parse(path.read_text(encoding="utf-8"))
    docstrings = {
        id(node.body[0].value)
        for node in ast.walk(tree)
        if isinstance(node, ast.Module | ast.FunctionDef | ast.ClassDef | ast.AsyncFunctionDef)
        and node.body
        and isinstance(node.body[0], ast.Expr)
        and isinstance(node.body[0].value, ast.Constant)
    }
    named = [
        node.value
        for node in ast.walk(tree)
        if isinstance(node, ast.Constant)
        and isinstance(node.value, str)
        and id(node) not in docstrings
        and node.value.lower() in names
    ]
    assert named == [], f"{path.name} names services: {named}"
