"""Operator actions on MySQL: create the database, migrate, check the ledger."""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any, TextIO

from adapters.mysql import MySqlConfig, MySqlDatabase
from adapters.sql import ledger_check
from adapters.sql.migrate import MigrationError, MigrationReport, apply_migrations, discover

MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations ("
    "name VARCHAR(128) NOT NULL PRIMARY KEY, checksum CHAR(64) NOT NULL, "
    "applied_at DATETIME(6) NOT NULL) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4"
)


def _quoted(name: str) -> str:
    if not name.replace("_", "").isalnum():
        raise ValueError("a database name is letters, digits and '_'")
    return f"`{name}`"


ACCESS_DENIED = {1044, 1045, 1142, 1143}


def create_database(config: MySqlConfig) -> None:
    """Only when it does not exist: an application account may not hold CREATE on the server."""
    connection = MySqlDatabase(config).raw_connection(database=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute("SHOW DATABASES LIKE %s", (config.database,))
            if cursor.fetchone() is None:
                cursor.execute(
                    f"CREATE DATABASE {_quoted(config.database)} "
                    "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci"
                )
    finally:
        connection.close()


def migrate(config: MySqlConfig, want_kind: str) -> MigrationReport:
    """Apply what is pending. With nothing pending it only reads, so `flamepay run` works
    under a least-privilege account; DDL it may not run is a clear MigrationError."""
    import pymysql

    try:
        create_database(config)
        connection = MySqlDatabase(config).raw_connection()
    except pymysql.err.MySQLError as error:
        raise _denied(error) from None
    connection.autocommit(True)  # DDL commits anyway; each migration row follows its file

    def execute(sql: str, params: Sequence[Any]) -> list[tuple]:
        with connection.cursor() as cursor:
            cursor.execute(sql, tuple(params) or None)
            return list(cursor.fetchall())

    try:
        exists = execute(
            "SELECT COUNT(*) FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_name = 'schema_migrations'",
            (),
        )[0][0]
        return apply_migrations(
            execute, discover("mysql"), want_kind, "" if exists else MIGRATIONS_TABLE
        )
    except pymysql.err.MySQLError as error:
        raise _denied(error) from None
    finally:
        connection.close()


def _denied(error: Exception) -> MigrationError:
    code = error.args[0] if error.args else None
    if code in ACCESS_DENIED:
        return MigrationError(
            f"the MySQL user may not apply the pending migrations (error {code}); run "
            "`flamepay migrate` with the migration account (deploy/mysql/grants.sql)"
        )
    return MigrationError(f"MySQL error {code} while migrating")


def check_ledger(config: MySqlConfig, out: TextIO) -> int:
    import pymysql.cursors

    connection = MySqlDatabase(config).raw_connection()

    def stream(sql: str) -> Iterator[tuple]:
        # Unbuffered: rows arrive as the server sends them, never all in memory.
        with connection.cursor(pymysql.cursors.SSCursor) as cursor:
            cursor.execute(sql)
            yield from cursor

    try:
        # One consistent snapshot for every check.
        with connection.cursor() as cursor:
            cursor.execute("START TRANSACTION WITH CONSISTENT SNAPSHOT, READ ONLY")
        results = ledger_check.run_checks(stream, lambda a, b: f"CONCAT({a}, {b})")
        return ledger_check.report(results, out)
    finally:
        connection.close()
