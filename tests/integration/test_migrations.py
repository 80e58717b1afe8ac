"""Both dialects carry the same numbered migrations; the runner is idempotent and strict."""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

import pytest

from adapters import sqlite
from adapters.sql.migrate import MigrationError, discover, split_statements
from tests.helpers import ROOT


def test_same_names_in_the_same_order_with_their_own_checksums() -> None:
    mysql, lite = discover("mysql"), discover("sqlite")
    assert [m.name for m in mysql] == [m.name for m in lite]
    assert all(a.checksum != b.checksum for a, b in zip(mysql, lite, strict=True))


def test_statements_split_on_line_ends_and_skip_comments() -> None:
    sql = "-- a comment; with a semicolon\nCREATE TABLE a (x INT);\n\nCREATE TABLE b (y INT);\n"
    assert split_statements(sql) == ["CREATE TABLE a (x INT)", "CREATE TABLE b (y INT)"]


def _tables(path: Path) -> dict[str, str]:
    connection = sqlite3.connect(path)
    rows = connection.execute("SELECT name, sql FROM sqlite_master ORDER BY name").fetchall()
    connection.close()
    return dict(rows)


def test_sqlite_migrate_twice_leaves_the_same_schema(tmp_path: Path) -> None:
    path = tmp_path / "var" / "books.sqlite3"  # the folder is created
    first = sqlite.migrate(path, "sandbox")
    schema = _tables(path)
    second = sqlite.migrate(path, "sandbox")
    names = tuple(m.name for m in discover("sqlite"))
    assert first.applied == names and second.applied == ()
    assert second.already == names
    assert _tables(path) == schema
    assert {"orders", "journals", "ledger_entries", "installation"} <= set(schema)
    assert first.installation == second.installation
    assert first.installation.merchant_key and len(first.installation.merchant_key) == 48
    assert first.installation.merchant_key not in repr(first)


def test_sqlite_refuses_the_other_kind(tmp_path: Path) -> None:
    path = tmp_path / "books.sqlite3"
    sqlite.migrate(path, "sandbox")
    with pytest.raises(MigrationError, match="sandbox installation"):
        sqlite.migrate(path, "live")


def test_sqlite_refuses_a_changed_file(tmp_path: Path, monkeypatch) -> None:
    schema = tmp_path / "schema"
    shutil.copytree(ROOT / "schema", schema)
    monkeypatch.setenv("FLAMEPAY_SCHEMA_DIR", str(schema))
    path = tmp_path / "books.sqlite3"
    sqlite.migrate(path, "live")
    target = schema / "sqlite" / "0001_core.sql"
    target.write_text(target.read_text() + "\n")
    with pytest.raises(MigrationError, match="changed after it was applied"):
        sqlite.migrate(path, "live")


def test_a_badly_named_file_is_refused(tmp_path: Path, monkeypatch) -> None:
    (tmp_path / "sqlite").mkdir()
    (tmp_path / "sqlite" / "first.sql").write_text("SELECT 1;\n")
    monkeypatch.setenv("FLAMEPAY_SCHEMA_DIR", str(tmp_path))
    with pytest.raises(MigrationError, match=r"NNNN_name\.sql"):
        discover("sqlite")
