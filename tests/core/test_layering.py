"""Layering that holds (issue 18, item 5): an adapter imports nothing above it, and
httpx is imported only under monctl/adapters/.

Every import counts, also one made inside a function or only for type checking: each
ties the adapter to the layer it names. What still breaks a rule is listed below with
the reason, and the list may only shrink: a test fails when an entry is no longer
needed, so a fix removes it. Both lists are empty now (issue 18, item 5 done): the
tests of their entries have nothing to check."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "monctl"

# What an adapter may import besides other adapters: the shared core below everything.
CORE = {
    "monctl.errors",
    "monctl.redaction",
    "monctl.signals",
    "monctl.runner",
    "monctl.envfile",
    "monctl.url_setting",
    "monctl.text",
}

# (adapter, what it imports) -> why it still does. Remove an entry when it is fixed.
KNOWN_UPWARD: dict[tuple[str, str], str] = {}  # empty: the rule holds

# Modules outside monctl/adapters/ that still import httpx, and why.
KNOWN_HTTPX: dict[str, str] = {}  # empty: the rule holds


def imports_of(source: str) -> set[str]:
    """Every module ``source`` imports (``from monctl import x`` counts as monctl.x)."""
    found: set[str] = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            found.add(node.module)
            found.update(f"{node.module}.{alias.name}" for alias in node.names)
    return found


def _upward(module: str) -> bool:
    if not module.startswith("monctl.") or module.startswith("monctl.adapters"):
        return False
    # `from monctl import runner` is recorded both as `monctl` and `monctl.runner`;
    # `from monctl.errors import X` as `monctl.errors` and `monctl.errors.X`.
    return not any(module == core or module.startswith(f"{core}.") for core in CORE)


def _modules(under: Path) -> list[Path]:
    return sorted(under.rglob("*.py"))


def _rel(path: Path) -> str:
    return path.relative_to(ROOT).as_posix()


def upward_imports() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in _modules(PACKAGE / "adapters"):
        for module in imports_of(path.read_text(encoding="utf-8")):
            if _upward(module):
                found.add((_rel(path), _importable(module)))
    return found


def _importable(module: str) -> str:
    """``monctl.services.model.Service`` -> ``monctl.services.model`` (the module)."""
    parts = module.split(".")
    while len(parts) > 1:
        candidate = PACKAGE.parent.joinpath(*parts)
        if candidate.with_suffix(".py").exists() or (candidate / "__init__.py").exists():
            return ".".join(parts)
        parts.pop()
    return module


def httpx_outside_adapters() -> set[str]:
    found = set()
    for path in _modules(PACKAGE):
        if path.is_relative_to(PACKAGE / "adapters"):
            continue
        mods = imports_of(path.read_text(encoding="utf-8"))
        if any(m == "httpx" or m.startswith("httpx.") for m in mods):
            found.add(_rel(path))
    return found


def test_the_scan_sees_every_kind_of_import() -> None:
    source = (
        "from monctl.runtime.state import ServiceState\n"
        "def f():\n    from monctl import output\n"
        "if TYPE_CHECKING:\n    import monctl.project\n"
        "from monctl import runner\nimport httpx\n"
    )
    mods = imports_of(source)
    assert {"monctl.runtime.state", "monctl.output", "monctl.project", "httpx"} <= mods
    assert [m for m in sorted(mods) if _upward(m)] == [
        "monctl.output",
        "monctl.project",
        "monctl.runtime.state",
        "monctl.runtime.state.ServiceState",
    ]


def test_adapters_import_nothing_above_them() -> None:
    found = upward_imports()
    new = sorted(found - set(KNOWN_UPWARD))
    assert not new, f"an adapter imports above it (only the core {sorted(CORE)}): {new}"


@pytest.mark.parametrize("entry", sorted(KNOWN_UPWARD))
def test_a_known_upward_import_is_still_there(entry: tuple[str, str]) -> None:
    assert entry in upward_imports(), f"{entry} is fixed: remove it from KNOWN_UPWARD"


def test_httpx_only_in_the_adapters() -> None:
    new = sorted(httpx_outside_adapters() - set(KNOWN_HTTPX))
    assert not new, f"httpx imported outside monctl/adapters/ (use monctl/adapters/http*.py): {new}"


@pytest.mark.parametrize("path", sorted(KNOWN_HTTPX))
def test_a_known_httpx_import_is_still_there(path: str) -> None:
    assert path in httpx_outside_adapters(), f"{path} is fixed: remove it from KNOWN_HTTPX"


# Presentation lives in monctl/cli/ (issue 18, item 4): operations, runtimes and adapters
# return data; rich, the CLI's Output and the renderers are imported only there.
PRESENTATION = ("rich", "monctl.output", "monctl.cli", "click")
# monctl/__main__.py is `python -m monctl`: it starts the CLI, it is no layer below it.
ENTRY = {"monctl/__main__.py"}
# Modules outside monctl/cli/ that touch stdout/stderr, and why that is not drawing.
STREAMS = {
    "monctl/signals.py": "a second signal's one line, written from the signal handler itself "
    "(no Output there, and rich must not run inside a handler)",
    "monctl/backup/export_sink.py": "`backup export -o -` writes the tar itself to stdout: "
    "the data asked for, not a drawing of it",
}


def presentation_imports() -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for path in _modules(PACKAGE):
        if path.is_relative_to(PACKAGE / "cli") or _rel(path) in ENTRY:
            continue
        for module in imports_of(path.read_text(encoding="utf-8")):
            if any(module == p or module.startswith(f"{p}.") for p in PRESENTATION):
                found.add((_rel(path), module))
    return found


def terminal_writes(source: str) -> bool:
    """Whether ``source`` prints or names sys.stdout / sys.stderr."""
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Name):
            printed = node.func.id == "print"
        elif isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name):
            printed = node.value.id == "sys" and node.attr in ("stdout", "stderr")
        else:
            printed = False
        if printed:
            return True
    return False


def writers_outside_cli() -> set[str]:
    return {
        _rel(path)
        for path in _modules(PACKAGE)
        if not path.is_relative_to(PACKAGE / "cli")
        and _rel(path) not in ENTRY
        and terminal_writes(path.read_text(encoding="utf-8"))
    }


def test_the_presentation_scans_can_fail() -> None:
    assert terminal_writes("print('x')") and terminal_writes("import sys\nsys.stderr.write('x')")
    assert not terminal_writes("out.print(table)\nlog.warning('x')")
    assert {"rich.table", "monctl.cli.output"} <= imports_of(
        "def f():\n    from rich.table import Table\nif X:\n    from monctl.cli import output\n"
    )


def test_nothing_outside_the_cli_imports_the_presentation() -> None:
    found = sorted(presentation_imports())
    assert not found, (
        "rich, click and the CLI (Output, renderers) are imported only in monctl/cli/: "
        f"return data and draw it in monctl/cli/render/: {found}"
    )


def test_nothing_outside_the_cli_writes_to_the_terminal() -> None:
    new = sorted(writers_outside_cli() - set(STREAMS))
    assert not new, f"print/sys.stdout/sys.stderr outside monctl/cli/ (draw in the CLI): {new}"


@pytest.mark.parametrize("path", sorted(STREAMS))
def test_a_known_stream_writer_is_still_one(path: str) -> None:
    assert path in writers_outside_cli(), f"{path} no longer writes: remove it from STREAMS"


# The top level holds only the shared core (issue 18, item 5); an operation goes into the
# package of its command (monctl/lifecycle/, monctl/backup/, ...).
TOP_LEVEL_CORE = {
    "__init__.py",  # the version and the runtimes' names
    "__main__.py",  # python -m monctl
    "credentials.py",  # the stack's credentials: where they live, the auth a request carries
    "envfile.py",
    "errors.py",
    "project.py",
    "redaction.py",
    "result.py",
    "runner.py",
    "signals.py",
    "text.py",
    "url_setting.py",
}


def test_the_top_level_holds_only_the_shared_core() -> None:
    found = {p.name for p in PACKAGE.glob("*.py")}
    assert found <= TOP_LEVEL_CORE, (
        f"not core, move into a package: {sorted(found - TOP_LEVEL_CORE)}"
    )
