"""The repository is the one door to stored backups (issue 18, item 1): no verb under
monctl/backup/ imports the storage adapters (``monctl.adapters.storage``) or names a
storage key; they go through ``monctl/repository/__init__.py::Repository``. And the
repository package itself stays a size a newcomer can read: at most 16 modules, none
over 400 lines.

Every import counts, also one made inside a function or only for type checking. What
still breaks the rule is listed below with the reason; the list may only shrink (a test
fails when an entry is no longer needed)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
BACKUP = ROOT / "monctl" / "backup"
REPOSITORY = ROOT / "monctl" / "repository"

STORAGE = "monctl.adapters.storage"

# (verb module, what it imports) -> why it still does.
KNOWN_STORAGE_IMPORTS = {
    (
        "monctl/backup/export_sink.py",
        "monctl.adapters.storage.os_errors",
    ): "export writes its own output file (not the repository): an OS error there is "
    "turned into exit 8 by the same storage_error as the destination's",
}

# Helpers of the storage layout that only the repository package may call.
KEY_HELPERS = {"manifest_key", "object_key", "archive_key"}


def _imports(path: Path) -> set[str]:
    found: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
    return found


def _names(path: Path) -> set[str]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    return {n.id for n in ast.walk(tree) if isinstance(n, ast.Name)} | {
        n.attr for n in ast.walk(tree) if isinstance(n, ast.Attribute)
    }


def storage_imports() -> set[tuple[str, str]]:
    found = set()
    for path in sorted(BACKUP.rglob("*.py")):
        for module in _imports(path):
            if module == STORAGE or module.startswith(f"{STORAGE}."):
                found.add((path.relative_to(ROOT).as_posix(), module))
    return found


def test_the_scan_sees_an_import_for_type_checking_only(tmp_path: Path) -> None:
    module = tmp_path / "verb.py"
    module.write_text(
        "from typing import TYPE_CHECKING\n"
        "if TYPE_CHECKING:\n    from monctl.adapters.storage import Storage\n"
        "def f():\n    import monctl.adapters.storage.local\n"
    )
    assert {STORAGE, f"{STORAGE}.local"} <= _imports(module)


def test_no_verb_imports_the_storage_adapters() -> None:
    new = sorted(storage_imports() - set(KNOWN_STORAGE_IMPORTS))
    assert not new, (
        "a module of monctl/backup/ imports the storage adapters; go through "
        f"monctl.repository.Repository instead: {new}"
    )


@pytest.mark.parametrize("entry", sorted(KNOWN_STORAGE_IMPORTS))
def test_a_known_storage_import_is_still_there(entry: tuple[str, str]) -> None:
    assert entry in storage_imports(), f"{entry} is fixed: remove it from KNOWN_STORAGE_IMPORTS"


def test_no_verb_names_a_storage_key() -> None:
    found = {
        (path.relative_to(ROOT).as_posix(), name)
        for path in sorted(BACKUP.rglob("*.py"))
        for name in _names(path) & KEY_HELPERS
    }
    assert not found, f"a verb builds a storage key itself (ask the Repository): {sorted(found)}"


def test_the_repository_package_stays_readable() -> None:
    modules = sorted(REPOSITORY.glob("*.py"))
    assert len(modules) <= 16, f"monctl/repository/ holds {len(modules)} modules (at most 16)"
    long = {
        p.name: n for p in modules if (n := len(p.read_text(encoding="utf-8").splitlines())) > 400
    }
    assert not long, f"modules over 400 lines: {long}"
