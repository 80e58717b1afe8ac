"""Helpers for the callback service tests: a wired FlamePay on MariaDB, orders, notifies."""

from __future__ import annotations

import os
import subprocess
import sys

import attrs

from adapters.fake_provider import FakeProvider
from adapters.mysql import MySqlConfig, MySqlDatabase
from adapters.provider import signing
from entrypoints.bootstrap import FlamePay, build
from entrypoints.serving import free_port
from entrypoints.settings import load_settings
from flamepay.catalogue import Gateway, Package
from flamepay.open_order import open_recharge_order
from flamepay.ports import UnitOfWork
from flamepay.user import User
from tests.helpers import ROOT

TOKEN = "123456789:AAE_test-token-for-the-callback-tests"
USER = 7


def settings_values(config: MySqlConfig, **extra: str) -> dict[str, str]:
    values = {
        "BOT_TOKEN": TOKEN,
        "ADMIN_IDS": "1,2",
        "PROVIDER_BASE_URL": "sandbox",
        "MYSQL_HOST": config.host,
        "MYSQL_PORT": str(config.port),
        "MYSQL_USER": config.user,
        "MYSQL_PASSWORD": config.password,
        "MYSQL_DATABASE": config.database,
        "MYSQL_POOL_SIZE": "16",
        "WEBHOOK_PORT": str(free_port()),
    }
    values.update(extra)
    return values


def wire(config: MySqlConfig, **extra: str) -> FlamePay:
    """The product's composition root, with the fake gateway for opening orders."""
    app = build(load_settings(settings_values(config, **extra)), MySqlDatabase(config))
    app.core.provider = FakeProvider(merchant=app.merchant.mch_no)
    return app


def open_orders(app: FlamePay, count: int, amount: int = 10000, user: int = USER) -> list[str]:
    """`count` orders of `user`, each for a package of its own (the same package would hand
    back the open order), with the open-order limit lifted for the drills."""
    app.core.policy = attrs.evolve(app.core.policy, max_open_orders=100_000)

    def setup(uow: UnitOfWork) -> list[int]:
        if uow.catalogue.gateway("ALI_QR") is None:
            uow.catalogue.save_gateway(Gateway("ALI_QR", "Alipay"))
        if uow.users.get(user) is None:
            uow.users.add(User(user, activated_at=app.core.now()))
        return [
            uow.catalogue.add_package(Package(0, "ALI_QR", "pack", amount)).id for _ in range(count)
        ]

    return [
        open_recharge_order(app.core, user, package_id).order.mch_order_no
        for package_id in app.core.transaction(setup)
    ]


def notify_fields(
    app: FlamePay, number: str, state: int = 2, key: str | None = None, **override: object
) -> dict[str, str]:
    """What the gateway would send for this order, signed (with `key`, default ours)."""
    provider = app.core.provider
    order = provider.orders[number]
    fields: dict[str, object] = {
        "mchNo": app.merchant.mch_no,
        "mchOrderNo": number,
        "payOrderNo": order.pay_order_no,
        "amount": order.amount,
        "realAmount": order.amount,
        "currency": "usd",
        "state": state,
        "wayCode": "ALI_QR",
        "timestamp": 1700000000000,
    }
    fields.update(override)
    fields = {k: str(v) for k, v in fields.items() if v is not None}
    return signing.signed(fields, key or app.merchant.key)


def books_snapshot(config: MySqlConfig) -> dict[str, object]:
    """Row counts and sums over what money is made of (audit, events and outbox may grow)."""
    queries = {
        "orders": "SELECT COUNT(*), COALESCE(SUM(state), 0), COALESCE(SUM(review <> 'none'), 0) "
        "FROM orders",
        "journals": "SELECT COUNT(*) FROM journals",
        "entries": "SELECT COUNT(*), COALESCE(SUM(ABS(amount)), 0) FROM ledger_entries",
        "balances": "SELECT COUNT(*), COALESCE(SUM(ABS(balance)), 0) FROM accounts",
        "payouts": "SELECT COUNT(*), COALESCE(SUM(amount), 0) FROM payouts",
    }
    connection = MySqlDatabase(config).raw_connection()
    try:
        with connection.cursor() as cursor:
            result = {}
            for name, sql in queries.items():
                cursor.execute(sql)
                result[name] = tuple(int(v) for v in cursor.fetchone())
            return result
    finally:
        connection.close()


def web_process(config: MySqlConfig, port: int, workers: int = 1, **extra: str) -> subprocess.Popen:
    """`flamepay web` as a real process (or several workers) on `port`."""
    env = {
        **os.environ,
        **settings_values(config, WEBHOOK_PORT=str(port), **extra),
        "FLAMEPAY_ENV_FILE": str(ROOT / "tests/data/empty.env"),
    }
    # A drill's commit delay is injected by the slow_commits launcher (one worker only).
    slow = "FLAMEPAY_TEST_COMMIT_DELAY_MS" in extra
    launcher = "tests.helpers.slow_commits" if slow else "entrypoints"
    return subprocess.Popen(
        [sys.executable, "-m", launcher, "web", "--workers", str(workers)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
    )
