"""Issue 15, fault 6: a slow gateway must not starve /notify or the bot's database work.

The real bot on the Bot API emulator and the real callback app over loopback, on SQLite; the
gateway's create hangs (as a gateway that accepts and never answers does, with a long
PROVIDER_TIMEOUT_SECONDS) while more users than the database executor has threads press Pay.
"""

from __future__ import annotations

import contextlib
import threading
import time

import httpx
import pytest

from adapters.provider import signing
from entrypoints.bootstrap import GATEWAY_WORKERS, build, pool_size
from entrypoints.settings import load_settings
from flamepay.errors import ProviderTimeout
from flamepay.open_order import open_recharge_order
from flamepay.order import OrderState
from flamepay.user import User
from tests.helpers.bot_support import ask
from tests.helpers.sqlite_product import ADMIN, start_sqlite_product
from tests.helpers.web_support import settings_values

HANG_SECONDS = 10.0
BOUND_SECONDS = 1.5


class HangingCreate:
    """The real sandbox gateway, except that create never answers until released."""

    def __init__(self, real) -> None:
        self.real = real
        self.release = threading.Event()
        self.waiting = 0
        self._lock = threading.Lock()

    def create_order(self, request):
        with self._lock:
            self.waiting += 1
        self.release.wait(HANG_SECONDS)
        raise ProviderTimeout("the test gateway did not answer")

    def __getattr__(self, name: str):
        return getattr(self.real, name)


def _wait(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.02)
    return predicate()


def test_fault6_a_hung_gateway_does_not_starve_notify(tmp_path) -> None:
    """Issue 15 fault 6: gateway calls shared the database executor, so with a hung gateway
    and a few users pressing Pay, a notify (and any bot reply) waited for the gateway. A
    signed notify must be answered, and a /balance replied to, well under the hang."""
    product = start_sqlite_product(tmp_path, PROVIDER_TIMEOUT_SECONDS="60")
    app, core = product.app, product.app.core
    hanging = None
    try:
        ask(product, ADMIN, "/gateway ALI_QR Alipay on", "is on")
        ask(product, ADMIN, "/package_add ALI_QR Basic 100", "added")
        package_id = core.transaction(lambda uow: uow.catalogue.packages())[0].id
        users = list(range(601, 601 + app.executor._max_workers + 3))
        payer = 700

        def activate(uow) -> None:
            for user_id in (*users, payer):
                uow.users.add(User(user_id, activated_at=core.now()))

        core.transaction(activate)
        # An order opened while the gateway still answers: the one the notify pays.
        order = open_recharge_order(core, payer, package_id).order
        assert order.provider_order_no
        choose = {u: ask(product, u, "/pay", "Choose an amount") for u in users}

        hanging = HangingCreate(core.provider)
        core.provider = hanging
        for user_id, message in choose.items():  # everyone presses Pay at once
            data = next(d for text, d in message.buttons() if "100.00 USD" in text)
            product.emulator.press_button(user_id, message.message_id, data)
        expected_waiting = min(len(users), app.executor._max_workers)
        assert _wait(lambda: hanging.waiting >= expected_waiting, 10), hanging.waiting
        time.sleep(0.3)  # the rest of the presses reach their executor too

        fields = signing.signed(
            {
                "mchNo": app.merchant.mch_no,
                "mchOrderNo": order.mch_order_no,
                "payOrderNo": order.provider_order_no,
                "amount": str(order.amount),
                "realAmount": str(order.amount),
                "currency": "usd",
                "state": "2",
                "wayCode": "ALI_QR",
                "timestamp": "1700000000000",
            },
            app.merchant.key,
        )
        started = time.monotonic()
        try:
            answer = httpx.post(f"{product.web_url}/notify", data=fields, timeout=4)
        except httpx.TimeoutException:
            pytest.fail(
                f"/notify did not answer within 4 s while the gateway hung "
                f"({hanging.waiting} calls waiting on it)"
            )
        took = time.monotonic() - started
        assert (answer.status_code, answer.text) == (200, "success")
        assert took < BOUND_SECONDS, f"/notify took {took:.2f} s behind a hung gateway"
        with core.uow() as uow:
            assert uow.orders.get_by_number(order.mch_order_no).state is OrderState.SUCCESS

        # The bot's own database work is not stuck behind the gateway either.
        started = time.monotonic()
        ask(product, payer, "/balance", "Available: 85.00 USD")
        assert time.monotonic() - started < BOUND_SECONDS + 1
        assert hanging.waiting == len(users)  # every press reached the gateway, none queued
    finally:
        if hanging is not None:
            hanging.release.set()
        product.close()


def test_fault6_the_pool_holds_a_connection_for_every_executor_thread(monkeypatch) -> None:
    """Issue 15 fault 6: gateway threads take pool connections for their short transactions;
    the MySQL pool is sized to both executors, so a notify's database thread never waits on
    a connection a gateway thread holds."""
    from adapters.mysql import MySqlConfig, MySqlDatabase

    settings = load_settings(settings_values(MySqlConfig("127.0.0.1"), MYSQL_POOL_SIZE="3"))
    database = MySqlDatabase(settings.storage.mysql)

    class Stop(Exception):
        pass

    def no_installation(db):
        raise Stop  # the pool is sized before the first connection; no server needed

    monkeypatch.setattr("entrypoints.bootstrap.read_installation", no_installation)
    with pytest.raises(Stop):
        build(settings, database)
    assert pool_size(settings) == 3
    assert database.max_connections == 3 + GATEWAY_WORKERS


class HangingQuery(HangingCreate):
    """The real sandbox gateway, except that query never answers until released."""

    def query_order(self, number: str):
        return self.create_order(number)


def test_fault6_verify_by_query_runs_on_the_gateway_executor(tmp_path) -> None:
    """Issue 15 fault 6, web side: with PROVIDER_VERIFY_NOTIFY_BY_QUERY=1 each notify asks the
    gateway. Notifies stuck on a hung query (more than the database executor has threads)
    must leave the database executor free: /healthz and the bot answer at once."""
    product = start_sqlite_product(
        tmp_path, PROVIDER_TIMEOUT_SECONDS="60", PROVIDER_VERIFY_NOTIFY_BY_QUERY="1"
    )
    app, core = product.app, product.app.core
    hanging = HangingQuery(core.provider)
    core.provider = hanging
    stuck: list[threading.Thread] = []
    try:
        count = app.executor._max_workers + 2
        fields = signing.signed(
            {
                "mchNo": app.merchant.mch_no,
                "mchOrderNo": "FPNOSUCH",
                "payOrderNo": "P1",
                "amount": "100",
                "currency": "usd",
                "state": "2",
                "timestamp": "1700000000000",
            },
            app.merchant.key,
        )

        def post() -> None:
            # The answer does not matter here; the hang does.
            with contextlib.suppress(httpx.HTTPError):
                httpx.post(f"{product.web_url}/notify", data=fields, timeout=HANG_SECONDS + 5)

        stuck = [threading.Thread(target=post, daemon=True) for _ in range(count)]
        for thread in stuck:
            thread.start()
        assert _wait(lambda: hanging.waiting >= min(count, app.executor._max_workers), 10)
        time.sleep(0.3)
        started = time.monotonic()
        try:
            health = httpx.get(f"{product.web_url}/healthz", timeout=4)
        except httpx.TimeoutException:
            pytest.fail("/healthz did not answer within 4 s while verify-by-query hung")
        assert health.status_code == 200
        assert time.monotonic() - started < BOUND_SECONDS
        started = time.monotonic()
        ask(product, ADMIN, "/help", "What you can do")
        assert time.monotonic() - started < BOUND_SECONDS + 1
        assert hanging.waiting == count
    finally:
        hanging.release.set()
        for thread in stuck:
            thread.join(HANG_SECONDS + 5)
        product.close()
