"""The core stays pure: stdlib + attrs + itself, and no I/O, clock or randomness."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

from tests.helpers import ROOT

CORE = ROOT / "flamepay"
CORE_FILES = sorted(CORE.rglob("*.py"))

ALLOWED_THIRD_PARTY = {"attrs", "flamepay"}
FORBIDDEN_MODULES = {
    "socket",
    "sqlite3",
    "urllib",
    "http",
    "os",
    "subprocess",
    "random",
    "secrets",
    "time",
    "importlib",
    "asyncio",
    "threading",
    "multiprocessing",
    "shutil",
    "pathlib",
    "io",
    "logging",
}
FORBIDDEN_CALLS = {"open", "__import__", "exec", "eval", "input", "print"}
FORBIDDEN_ATTRIBUTES = {"now", "utcnow", "today"}


def _imports(tree: ast.AST) -> list[tuple[int, str]]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                found.append((node.lineno, "flamepay"))  # relative: inside the core
            else:
                found.append((node.lineno, node.module or ""))
    return found


def violations(source: str) -> list[str]:
    tree = ast.parse(source)
    problems = []
    for line, name in _imports(tree):
        top = name.split(".")[0]
        if top in FORBIDDEN_MODULES:
            problems.append(f"line {line}: imports {name} (I/O, clock or randomness)")
        elif top not in sys.stdlib_module_names and top not in ALLOWED_THIRD_PARTY:
            problems.append(f"line {line}: imports {name} (not stdlib, attrs or flamepay)")
    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            func = node.func
            if isinstance(func, ast.Name) and func.id in FORBIDDEN_CALLS:
                problems.append(f"line {node.lineno}: calls {func.id}()")
            if isinstance(func, ast.Attribute) and func.attr in FORBIDDEN_ATTRIBUTES:
                # datetime.now()/utcnow()/today(), date.today(): the clock port exists for this.
                owner = func.value
                owner_name = getattr(owner, "id", getattr(owner, "attr", ""))
                if owner_name in {"datetime", "date"}:
                    problems.append(
                        f"line {node.lineno}: reads the clock ({owner_name}.{func.attr})"
                    )
    return problems


@pytest.mark.parametrize("path", CORE_FILES, ids=lambda p: str(p.relative_to(ROOT)))
def test_core_module_is_pure(path: Path) -> None:
    assert violations(path.read_text(encoding="utf-8")) == []


def test_the_core_has_modules_to_check() -> None:
    assert len(CORE_FILES) >= 10


@pytest.mark.parametrize(
    "source",
    [
        "import socket",
        "from os import path",
        "import sqlite3",
        "from urllib.request import urlopen",
        "import http.client",
        "import subprocess",
        "import random",
        "from secrets import token_hex",
        "import time",
        "import importlib",
        "import pymysql",
        "from adapters.memory import MemoryState",
        "import telegram",
        "x = open('f')",
        "m = __import__('os')",
        "from datetime import datetime\nx = datetime.now()",
        "import datetime\nx = datetime.datetime.utcnow()",
        "from datetime import date\nx = date.today()",
    ],
)
def test_the_checker_catches(source: str) -> None:
    assert violations(source), source


def test_the_checker_allows_the_stdlib_attrs_and_the_core() -> None:
    ok = "import enum\nimport attrs\nfrom flamepay.money import fee_for\nimport datetime"
    assert violations(ok) == []


# --- the layers: dependencies point inward, and no module imports itself back ---------------
PACKAGES = ("flamepay", "adapters", "entrypoints", "simulators")
# Who may import whom (entrypoints may import simulators only lazily, inside a function).
ALLOWED = {
    "flamepay": {"flamepay"},
    "adapters": {"flamepay", "adapters"},
    "entrypoints": {"flamepay", "adapters", "entrypoints", "simulators"},
    "simulators": {"flamepay", "adapters", "entrypoints", "simulators"},
}
MAX_ENTRYPOINT_LINES = 500


def _module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def _product_modules() -> dict[str, Path]:
    return {
        _module_name(path): path
        for package in PACKAGES
        for path in sorted((ROOT / package).rglob("*.py"))
    }


def import_graph(sources: dict[str, str]) -> dict[str, dict[str, bool]]:
    """module -> {imported product module: whether the import is at module level}. Every
    import counts, inside functions too: a lazy import still closes a circle."""
    graph: dict[str, dict[str, bool]] = {}
    for module, source in sources.items():
        tree = ast.parse(source)
        top_level = {id(node) for node in tree.body}
        edges: dict[str, bool] = {}
        for node in ast.walk(tree):
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
                names = [node.module] + [f"{node.module}.{a.name}" for a in node.names]
            for name in names:
                target = _resolve(name, sources)
                if target and target != module:
                    edges[target] = edges.get(target, False) or id(node) in top_level
        graph[module] = edges
    return graph


def _resolve(name: str, modules) -> str | None:
    while name:
        if name in modules:
            return name
        name = name.rpartition(".")[0]
    return None


def cycles(graph: dict[str, dict[str, bool]]) -> list[list[str]]:
    """The import circles (strongly connected components of more than one module)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in graph.get(node, {}):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = []
            while True:
                member = stack.pop()
                component.append(member)
                if member == node:
                    break
            if len(component) > 1:
                found.append(sorted(component))

    for node in sorted(graph):
        if node not in index:
            visit(node)
    return found


def layer_violations(graph: dict[str, dict[str, bool]]) -> list[str]:
    problems = []
    for module, edges in graph.items():
        layer = module.split(".")[0]
        for target, top_level in edges.items():
            other = target.split(".")[0]
            if other not in ALLOWED[layer]:
                problems.append(f"{module} imports {target}")
            elif layer == "entrypoints" and other == "simulators" and top_level:
                problems.append(f"{module} imports {target} at import time (import it lazily)")
    return problems


PRODUCT = {name: path.read_text(encoding="utf-8") for name, path in _product_modules().items()}


def test_no_import_circle() -> None:
    assert cycles(import_graph(PRODUCT)) == []


def test_dependencies_point_inward() -> None:
    assert layer_violations(import_graph(PRODUCT)) == []


def test_no_entry_point_module_is_over_500_lines() -> None:
    long = {
        str(path.relative_to(ROOT)): lines
        for path in sorted((ROOT / "entrypoints").rglob("*.py"))
        if (lines := len(path.read_text(encoding="utf-8").splitlines())) > MAX_ENTRYPOINT_LINES
    }
    assert long == {}


def test_the_graph_checks_can_fail() -> None:
    sources = {
        "flamepay.a": "from adapters.b import x",
        "adapters.b": "import entrypoints.c",
        "entrypoints.c": "import simulators.d\ndef f():\n    import entrypoints.e\n",
        "entrypoints.e": "def g():\n    from entrypoints.c import f\n",
        "simulators.d": "",
    }
    graph = import_graph(sources)
    assert cycles(graph) == [["entrypoints.c", "entrypoints.e"]]
    assert layer_violations(graph) == [
        "flamepay.a imports adapters.b",
        "adapters.b imports entrypoints.c",
        "entrypoints.c imports simulators.d at import time (import it lazily)",
    ]
