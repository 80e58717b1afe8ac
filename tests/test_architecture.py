"""The core stays pure: stdlib + attrs + itself, and no I/O, clock or randomness."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
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
