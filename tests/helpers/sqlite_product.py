"""The whole product on loopback on an embedded SQLite file (emulator, sandbox, callback app
and the real bot), for the stories that need no MariaDB."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import attrs

from adapters.sqlite import SqliteDatabase
from adapters.sqlite import migrate as sqlite_migrate
from entrypoints.serving import free_port
from simulators.local import LocalStack, start_local
from tests.helpers.bot_support import ADMIN
from tests.helpers.web_support import TOKEN

TOO_BIG = str(2**63)  # one above the largest BIGINT / SQLite INTEGER
ERROR_REPLY = "Something went wrong on our side"


@attrs.define
class SqliteProduct:
    """The whole product on loopback, like tests.helpers.bot_support's, but on a SQLite file."""

    local: LocalStack
    path: Path

    @property
    def app(self):
        return self.local.app

    @property
    def emulator(self):
        return self.local.emulator

    @property
    def web_url(self) -> str:
        settings = self.app.settings
        return f"http://{settings.webhook_host}:{settings.webhook_port}"

    def close(self) -> None:
        self.local.close()

    def books(self) -> tuple:
        """What money and state are made of (the audit log may grow with refusals)."""
        connection = sqlite3.connect(self.path)
        try:
            return tuple(
                connection.execute(sql).fetchone()
                for sql in (
                    "SELECT COUNT(*), COALESCE(SUM(state), 0) FROM orders",
                    "SELECT COUNT(*) FROM journals",
                    "SELECT COUNT(*), COALESCE(SUM(ABS(amount)), 0) FROM ledger_entries",
                    "SELECT COUNT(*), COALESCE(SUM(ABS(balance)), 0) FROM accounts",
                    "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM payouts",
                    "SELECT COUNT(*), COALESCE(SUM(banned_at IS NOT NULL), 0) FROM users",
                    "SELECT COUNT(*), COALESCE(SUM(max_uses), 0) FROM access_codes",
                    "SELECT COUNT(*) FROM reviews WHERE status <> 'open'",
                    "SELECT COUNT(*), COALESCE(SUM(enabled), 0) FROM packages",
                )
            )
        finally:
            connection.close()


def start_sqlite_product(directory: Path, **extra: str) -> SqliteProduct:
    path = directory / "flamepay.sqlite3"
    sqlite_migrate(path, "sandbox")
    values = {
        "ADMIN_IDS": str(ADMIN),
        "PROVIDER_BASE_URL": "sandbox",
        "SQLITE_PATH": str(path),
        "WEBHOOK_PORT": str(free_port()),
        **extra,
    }
    return SqliteProduct(start_local(TOKEN, values, SqliteDatabase(path)), path)
