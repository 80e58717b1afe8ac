"""Database fixtures: in-memory, MySQL/MariaDB (and SQLite when it lands) behind one interface.

MySQL is reached through FLAMEPAY_TEST_MYSQL_URL (default mysql://root@127.0.0.1:3306); each
run makes a uniquely named database and drops it afterwards. Without MySQL the MySQL tests
are skipped with the reason shown, unless FLAMEPAY_REQUIRE_MYSQL=1: then a missing MySQL is a
failure, and so is a run in which no MySQL test passed (see conftest's session hook).
"""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from urllib.parse import unquote, urlparse

import pytest

from adapters.fake_provider import FakeProvider
from adapters.memory import AllowAll, MemoryUnitOfWorkFactory
from adapters.mysql import MySqlConfig, MySqlDatabase
from adapters.sql.uow import SqlUnitOfWork, SqlUnitOfWorkFactory
from adapters.sqlite import SqliteDatabase
from adapters.sqlite import migrate as sqlite_migrate
from entrypoints.bootstrap import build_core
from flamepay.context import Core
from flamepay.errors import StorageUnavailable
from flamepay.policy import PaymentPolicy

DEFAULT_URL = "mysql://root@127.0.0.1:3306"
TABLES = (
    "ledger_entries",
    "journals",
    "accounts",
    "payouts",
    "reviews",
    "audit_log",
    "callback_events",
    "outbox",
    "orders",
    "packages",
    "gateways",
    "activation_attempts",
    "access_codes",
    "users",
    "message_copies",
    "alerts",
)


MERCHANT = "M100"
ADMIN = 1


def sql_core(
    database, uow_class=SqlUnitOfWork, admins: frozenset[int] = frozenset({ADMIN})
) -> Core:
    """The core on a real database (SQLite or MySQL) through the composition root's
    build_core, with the fake gateway, no payout maximum and every user allowed."""
    return build_core(
        SqlUnitOfWorkFactory(database, uow_class=uow_class),
        FakeProvider(merchant=MERCHANT),
        PaymentPolicy(merchant_no=MERCHANT, payout_max=0),
        eligibility=AllowAll(),
        admin_ids=admins,
    )


def scalar(config: MySqlConfig, sql: str, params: tuple = ()) -> object:
    """The first column of the first row (None without a row), on a connection of its own."""
    connection = MySqlDatabase(config).raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute(sql, params)
            row = cursor.fetchone()
            return row[0] if row else None
    finally:
        connection.close()


def mysql_required() -> bool:
    return os.environ.get("FLAMEPAY_REQUIRE_MYSQL") == "1"


def mysql_base_config(database: str = "flamepay") -> MySqlConfig:
    url = urlparse(os.environ.get("FLAMEPAY_TEST_MYSQL_URL", DEFAULT_URL))
    if url.scheme != "mysql":
        raise ValueError("FLAMEPAY_TEST_MYSQL_URL must look like mysql://user:pass@host:port")
    return MySqlConfig(
        host=url.hostname or "127.0.0.1",
        port=url.port or 3306,
        user=unquote(url.username or "root"),
        password=unquote(url.password or ""),
        database=database,
        pool_size=60,  # the concurrency drills hold up to 50 connections at once
    )


def _unavailable(reason: str) -> None:
    if mysql_required():
        pytest.fail(f"MySQL is required (FLAMEPAY_REQUIRE_MYSQL=1) but {reason}")
    pytest.skip(f"MySQL not available: {reason} (set FLAMEPAY_TEST_MYSQL_URL)")


@pytest.fixture(scope="session")
def mysql_config() -> Iterator[MySqlConfig]:
    """A fresh, uniquely named, migrated database for this run; dropped at the end."""
    from adapters import mysql_ops

    config = mysql_base_config(f"fp_test_{os.getpid()}_{secrets.token_hex(4)}")
    try:
        probe = MySqlDatabase(config).raw_connection(database=False)
        probe.close()
    except StorageUnavailable as error:
        _unavailable(str(error))
    mysql_ops.migrate(config, "sandbox")
    yield config
    connection = MySqlDatabase(config).raw_connection(database=False)
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{config.database}`")
    finally:
        connection.close()


def wipe_mysql(config: MySqlConfig) -> None:
    connection = MySqlDatabase(config).raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SET FOREIGN_KEY_CHECKS = 0")
            for table in TABLES:
                cursor.execute(f"DELETE FROM {table}")
            cursor.execute("SET FOREIGN_KEY_CHECKS = 1")
        connection.commit()
    finally:
        connection.close()


@pytest.fixture
def mysql_database(mysql_config: MySqlConfig) -> Iterator[MySqlDatabase]:
    """An emptied database and a pool on it, closed after the test."""
    wipe_mysql(mysql_config)
    database = MySqlDatabase(mysql_config)
    yield database
    database.close()


@pytest.fixture
def sqlite_database(tmp_path) -> Iterator[SqliteDatabase]:
    """A migrated SQLite file of the test's own."""
    path = tmp_path / "flamepay.sqlite3"
    sqlite_migrate(path, "sandbox")
    database = SqliteDatabase(path)
    yield database
    database.close()


BACKENDS = ["memory", "sqlite", pytest.param("mysql", marks=pytest.mark.mysql)]


@pytest.fixture(params=BACKENDS)
def uow_factory(request: pytest.FixtureRequest):
    """The same contract tests over every adapter."""
    if request.param == "memory":
        return MemoryUnitOfWorkFactory()
    if request.param == "sqlite":
        return SqlUnitOfWorkFactory(request.getfixturevalue("sqlite_database"))
    database = request.getfixturevalue("mysql_database")
    return SqlUnitOfWorkFactory(database)
