"""The per-service tables of README.md and docs/ are the ones the declarations in
``monctl/services/`` generate (``monctl.cli.service_tables``), as the exit-code tables are
``ExitCode``'s (tests/cli/test_cli.py): a declaration changed without its docs fails here."""

from __future__ import annotations

from pathlib import Path

import pytest

from monctl import services
from monctl.cli import service_tables

REPO = Path(__file__).resolve().parents[2]
DOCS = ["README.md", *sorted(str(p.relative_to(REPO)) for p in (REPO / "docs").glob("*.md"))]


@pytest.mark.parametrize("doc", DOCS)
def test_every_service_table_is_the_generated_one(doc: str) -> None:
    text = (REPO / doc).read_text(encoding="utf-8")
    for name, found in service_tables.blocks(text):
        assert found == service_tables.table(name), (
            f"{doc}'s {name!r} table differs from the declarations in monctl/services/: "
            "run `python -m monctl.cli.service_tables README.md docs/*.md`"
        )
    assert service_tables.rewrite(text) == text


def test_every_service_table_is_in_the_docs() -> None:
    found = {n for doc in DOCS for n, _ in service_tables.blocks((REPO / doc).read_text())}
    assert found == set(service_tables.TABLES)
    readme = dict(service_tables.blocks((REPO / "README.md").read_text(encoding="utf-8")))
    assert "services" in readme, "the README lost its table of the stack's services"


def test_a_changed_declaration_changes_the_tables(monkeypatch: pytest.MonkeyPatch) -> None:
    # What makes the test above fail when a service changes and the docs do not.
    before = {name: service_tables.table(name) for name in service_tables.TABLES}
    loki = services.get("loki")
    moved = type(loki)(
        **{
            **{f: getattr(loki, f) for f in loki.__dataclass_fields__ if f != "url_var"},
            "default_port": 3111,
            "title": "Loki-ninth",
        }
    )
    monkeypatch.setattr(services, "SERVICES", [*services.SERVICES, moved])
    for name in service_tables.TABLES:
        assert service_tables.table(name) != before[name], name
    assert "http://localhost:3111" in service_tables.table("services")
