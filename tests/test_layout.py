"""The layout is the architecture: which package may import which, no import cycles, small modules.

Imports are read with ``ast`` (including those inside functions), so a lazy import cannot hide an
arrow that runs the wrong way.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
PACKAGES = ("domain", "feature_store", "ranking", "matching", "offline", "service", "cli")
# package -> packages of this project it may import (besides itself)
ALLOWED = {
    "domain": set(),
    "ranking": {"domain", "matching"},
    "matching": {"domain"},
    "feature_store": {"domain"},
    "offline": {"domain", "feature_store", "ranking", "matching"},
    "service": {"domain", "feature_store", "ranking", "matching", "debunk"},
    "cli": {"domain", "feature_store", "ranking", "matching", "offline", "service", "debunk"},
}
# Third-party packages the pure core must not pull in (IO, storage, transport).
IO_LIBRARIES = {"redis", "grpc", "pyarrow", "pandas", "duckdb", "pyspark"}
PURE = ("domain", "ranking", "matching")
MAX_LINES = 500


def _modules() -> dict[str, Path]:
    out = {}
    for pkg in PACKAGES:
        for path in sorted((ROOT / pkg).rglob("*.py")):
            rel = path.relative_to(ROOT).with_suffix("")
            parts = list(rel.parts)
            if parts[-1] == "__init__":
                parts.pop()
            out[".".join(parts)] = path
    return out


def _imports(name: str, path: Path) -> set[str]:
    """Every absolute module name ``path`` imports, relative imports resolved."""
    found: set[str] = set()
    package = name if path.name == "__init__.py" else name.rpartition(".")[0]
    for node in ast.walk(ast.parse(path.read_text(), str(path))):
        if isinstance(node, ast.Import):
            found.update(a.name for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            found.add(base)
            found.update(f"{base}.{a.name}" for a in node.names)
    return found


MODULES = _modules()
GRAPH = {
    name: {m for m in _imports(name, path) if m in MODULES and m != name}
    for name, path in MODULES.items()
}


def test_packages_import_only_what_the_house_rules_allow() -> None:
    wrong = []
    for name, path in MODULES.items():
        pkg = name.split(".")[0]
        for imported in _imports(name, path):
            top = imported.split(".")[0]
            if top in (*PACKAGES, "debunk") and top != pkg and top not in ALLOWED[pkg]:
                wrong.append(f"{name} imports {imported}")
    assert not wrong, "\n".join(wrong)


@pytest.mark.parametrize("pkg", PURE)
def test_the_pure_core_imports_no_io_library(pkg: str) -> None:
    wrong = [
        f"{name} imports {imported}"
        for name, path in MODULES.items()
        if name.split(".")[0] == pkg
        for imported in _imports(name, path)
        if imported.split(".")[0] in IO_LIBRARIES
    ]
    assert not wrong, "\n".join(wrong)


def test_there_is_no_import_cycle() -> None:
    # A module importing its own package's __init__ (e.g. ``from offline.join import x``) is an
    # arrow to the package module; drop package -> submodule arrows those create artificially.
    graph = {n: {m for m in deps if not n.startswith(m + ".")} for n, deps in GRAPH.items()}
    state: dict[str, int] = {}
    cycles: list[list[str]] = []

    def visit(node: str, stack: list[str]) -> None:
        state[node] = 1
        stack.append(node)
        for dep in sorted(graph[node]):
            if state.get(dep) == 1:
                cycles.append([*stack[stack.index(dep) :], dep])
            elif dep not in state:
                visit(dep, stack)
        stack.pop()
        state[node] = 2

    for node in sorted(graph):
        if node not in state:
            visit(node, [])
    assert not cycles, "\n".join(" -> ".join(c) for c in cycles)


def test_no_product_module_is_over_the_size_limit() -> None:
    big = {
        name: n
        for name, path in MODULES.items()
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    }
    assert not big, big
