"""Numbered SQL migrations, per dialect, recorded with their checksums.

`schema/<dialect>/NNNN_name.sql` files are applied in order, each once. An applied file
whose checksum changed is refused: the database was built from other text than the
repository now holds, and guessing what differs is how schemas drift.
"""

from __future__ import annotations

import hashlib
import os
import re
import secrets
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import attrs

_FILE = re.compile(r"([0-9]{4})_[a-z0-9_]+\.sql")


class MigrationError(Exception):
    """A migration cannot be applied; the message says which file and why."""


@attrs.frozen
class Migration:
    name: str
    path: Path
    checksum: str

    @property
    def statements(self) -> list[str]:
        return split_statements(self.path.read_text(encoding="utf-8"))


@attrs.frozen
class Installation:
    kind: str  # 'sandbox' or 'live'
    merchant_no: str | None = None
    merchant_key: str | None = attrs.field(default=None, repr=False)


@attrs.frozen
class MigrationReport:
    applied: tuple[str, ...]
    already: tuple[str, ...]
    installation: Installation


def schema_root() -> Path:
    override = os.environ.get("FLAMEPAY_SCHEMA_DIR")
    return Path(override) if override else Path(__file__).resolve().parents[2] / "schema"


def discover(dialect: str, root: Path | None = None) -> list[Migration]:
    folder = (root or schema_root()) / dialect
    if not folder.is_dir():
        raise MigrationError(f"no migrations folder {folder}")
    found = []
    for path in sorted(folder.iterdir()):
        if path.suffix != ".sql":
            continue
        if _FILE.fullmatch(path.name) is None:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        checksum = hashlib.sha256(path.read_bytes()).hexdigest()
        found.append(Migration(path.stem, path, checksum))
    numbers = [m.name[:4] for m in found]
    if len(set(numbers)) != len(numbers):
        raise MigrationError(f"two migrations in {folder} share a number")
    return found


def split_statements(sql: str) -> list[str]:
    """Statements end with ';' at the end of a line; '--' lines are comments."""
    lines = [line for line in sql.splitlines() if not line.strip().startswith("--")]
    parts = ("\n".join(lines) + "\n").split(";\n")
    return [p.strip().rstrip(";").strip() for p in parts if p.strip().rstrip(";").strip()]


def new_sandbox_installation() -> Installation:
    return Installation(
        kind="sandbox",
        merchant_no="SBX" + "".join(secrets.choice("0123456789") for _ in range(12)),
        merchant_key=secrets.token_hex(24),
    )


def apply_migrations(
    execute: Callable[[str, Sequence[Any]], list[tuple]],
    migrations: Sequence[Migration],
    want_kind: str,
    create_ledger_table: str,
    now: datetime | None = None,
) -> MigrationReport:
    """Apply what is pending through `execute(sql, params) -> rows` (autocommitting)."""
    if create_ledger_table:
        execute(create_ledger_table, ())
    applied = {
        (r[0].decode() if isinstance(r[0], bytes) else r[0]): r[1]
        for r in execute("SELECT name, checksum FROM schema_migrations", ())
    }
    known = {m.name for m in migrations}
    unknown = sorted(set(applied) - known)
    if unknown:
        raise MigrationError(
            f"the database has migrations this version does not know: {', '.join(unknown)}"
        )
    done, already = [], []
    for migration in migrations:
        if migration.name in applied:
            if applied[migration.name] != migration.checksum:
                raise MigrationError(
                    f"{migration.path.name} was changed after it was applied "
                    f"(applied {applied[migration.name][:12]}, now {migration.checksum[:12]}); "
                    "add a new migration instead of editing an applied one"
                )
            already.append(migration.name)
            continue
        for statement in migration.statements:
            execute(statement, ())
        execute(
            "INSERT INTO schema_migrations (name, checksum, applied_at) VALUES (%s, %s, %s)",
            (migration.name, migration.checksum, (now or datetime.now(UTC)).replace(tzinfo=None)),
        )
        done.append(migration.name)
    installation = record_installation(execute, want_kind, now)
    return MigrationReport(tuple(done), tuple(already), installation)


def record_installation(
    execute: Callable[[str, Sequence[Any]], list[tuple]], want_kind: str, now: datetime | None
) -> Installation:
    rows = execute("SELECT kind, merchant_no, merchant_key FROM installation WHERE id = 1", ())
    if not rows:
        fresh = new_sandbox_installation() if want_kind == "sandbox" else Installation("live")
        execute(
            "INSERT INTO installation (id, kind, merchant_no, merchant_key, created_at) "
            "VALUES (1, %s, %s, %s, %s)",
            (
                fresh.kind,
                fresh.merchant_no,
                fresh.merchant_key.encode() if fresh.merchant_key else None,
                (now or datetime.now(UTC)).replace(tzinfo=None),
            ),
        )
        rows = execute("SELECT kind, merchant_no, merchant_key FROM installation WHERE id = 1", ())
    kind, merchant_no, key = rows[0]
    installation = Installation(kind, merchant_no, key.decode() if isinstance(key, bytes) else key)
    if installation.kind != want_kind:
        raise MigrationError(
            f"this database is a {installation.kind} installation, but PROVIDER_BASE_URL makes "
            f"this a {want_kind} one; use another database or fix PROVIDER_BASE_URL"
        )
    return installation
