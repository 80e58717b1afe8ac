"""ledger-check on every SQL backend: clean on real books, and each planted violation found."""

from __future__ import annotations

import io
import os
import subprocess
import sys

import pytest

from adapters import mysql_ops, sqlite
from adapters.mysql import MySqlDatabase
from flamepay import ledger
from flamepay.apply_report import apply_provider_report
from flamepay.approve_payout import approve_payout
from flamepay.catalogue import Gateway, Package
from flamepay.context import Core
from flamepay.open_order import open_recharge_order
from flamepay.payout import Network
from flamepay.report import ReportSource
from flamepay.request_payout import request_payout
from flamepay.transaction import run_in_transaction
from tests.helpers import ROOT
from tests.helpers.dbs import sql_core


class Books:
    """One backend: its database for the core, raw SQL for planting, and the check itself."""

    def __init__(self, kind: str, request: pytest.FixtureRequest) -> None:
        self.kind = kind
        if kind == "sqlite":
            self.database = request.getfixturevalue("sqlite_database")
        else:
            self.database = request.getfixturevalue("mysql_database")

    def core(self) -> Core:
        return sql_core(self.database)

    def execute(self, sql: str) -> None:
        if self.kind == "sqlite":
            import sqlite3

            connection = sqlite3.connect(self.database.path)
            connection.execute(sql)
            connection.commit()
            connection.close()
        else:
            connection = MySqlDatabase(self.database.config).raw_connection()
            with connection.cursor() as cursor:
                cursor.execute(sql)
            connection.commit()
            connection.close()

    def check(self) -> tuple[int, str]:
        out = io.StringIO()
        if self.kind == "sqlite":
            code = sqlite.check_ledger(self.database.path, out)
        else:
            code = mysql_ops.check_ledger(self.database.config, out)
        return code, out.getvalue()

    def cli(self) -> subprocess.CompletedProcess[str]:
        env = {
            **os.environ,
            "PROVIDER_BASE_URL": "sandbox",
            "FLAMEPAY_ENV_FILE": str(ROOT / "tests/data/empty.env"),
        }
        if self.kind == "sqlite":
            env.update(MYSQL_HOST="", SQLITE_PATH=str(self.database.path))
        else:
            c = self.database.config
            env.update(
                MYSQL_HOST=c.host,
                MYSQL_PORT=str(c.port),
                MYSQL_USER=c.user,
                MYSQL_PASSWORD=c.password,
                MYSQL_DATABASE=c.database,
            )
        return subprocess.run(
            [sys.executable, "-m", "entrypoints", "ledger-check"],
            env=env,
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=120,
        )


@pytest.fixture(params=["sqlite", pytest.param("mysql", marks=pytest.mark.mysql)])
def books(request: pytest.FixtureRequest) -> Books:
    books = Books(request.param, request)
    write_books(books.core())
    return books


def write_books(core: Core) -> None:
    """Pay-ins, a refund, an adjustment, payouts pending and approved."""

    def catalogue(uow):
        uow.catalogue.save_gateway(Gateway("ALI_QR", "Alipay"))
        return uow.catalogue.add_package(Package(0, "ALI_QR", "100", 10000)).id

    package_id = run_in_transaction(core.uow, catalogue)
    numbers = [open_recharge_order(core, 7, package_id).order.mch_order_no for _ in range(3)]
    for number in numbers:
        core.provider.pay(number)
        apply_provider_report(core, core.provider.report(number), ReportSource.NOTIFY)
    core.provider.set_state(numbers[2], 5)
    apply_provider_report(core, core.provider.report(numbers[2]), ReportSource.RECONCILE)
    journal = ledger.adjustment(core.ids.token(), 8, 5000, "goodwill")
    run_in_transaction(core.uow, lambda uow: uow.ledger.post(journal, core.now()))
    request_payout(core, 7, 2000, Network.TRC20, "TAddr")
    done = request_payout(core, 7, 3000, Network.BEP20, "0xabc")
    approve_payout(core, 1, done.id, "tx-9")


def first(table: str, where: str = "1 = 1") -> str:
    # Portable "the first matching row" (MySQL refuses a subquery on the updated table itself
    # unless it is wrapped in a derived table).
    return f"(SELECT m FROM (SELECT MIN(id) AS m FROM {table} WHERE {where}) AS x)"


FIRST_ENTRY = first("ledger_entries")
FIRST_PAID = first("orders", "state = 2")
PLANTED = {
    "every journal sums to zero": (
        f"UPDATE ledger_entries SET amount = amount + 1 WHERE id = {FIRST_ENTRY}"
    ),
    "every balance equals the sum of its entries": (
        "UPDATE accounts SET balance = balance + 5 WHERE aclass = 'platform:fees'"
    ),
    "credited in total equals each user's pay-in and refund entries": (
        "UPDATE accounts SET credited = credited + 1 WHERE aclass = 'user:available'"
    ),
    "a payin journal exactly for the orders": (
        f"UPDATE orders SET state = 3 WHERE id = {FIRST_PAID}"
    ),
    "every payin journal belongs to an order": (
        "UPDATE journals SET order_id = 999999 WHERE id = " + first("journals", "kind = 'payin'")
    ),
    "a refund journal only after a payin": "UPDATE orders SET state = 2 WHERE state = 5",
    "held equals the open payouts": (
        "UPDATE payouts SET status = 'rejected' WHERE status = 'pending'"
    ),
    "no order under an unresolved review was credited": (
        f"UPDATE orders SET review = 'pending' WHERE id = {FIRST_PAID}"
    ),
}


def test_clean_on_real_books(books: Books) -> None:
    code, report = books.check()
    assert code == 0, report
    assert report.strip().endswith("ledger-check: clean")
    assert report.count("ok    ") == len(PLANTED)
    cli = books.cli()
    assert cli.returncode == 0 and "ledger-check: clean" in cli.stdout, cli.stderr


@pytest.mark.parametrize("name", list(PLANTED))
def test_each_planted_violation_is_named(books: Books, name: str) -> None:
    books.execute(PLANTED[name])
    code, report = books.check()
    assert code == 1
    failed = [line for line in report.splitlines() if line.startswith("FAIL")]
    assert any(name in line for line in failed), report
    cli = books.cli()
    assert cli.returncode == 1 and name in cli.stdout
