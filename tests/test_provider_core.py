"""The core's open-order and apply-report use cases run against HttpProviderGateway, over an
httpx.MockTransport that plays a small in-memory gateway of the Jeepay family."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from adapters.provider import signing
from adapters.provider.client import HttpProviderGateway
from adapters.provider.dialects import GGUSONEPAY, JEEPAY, Dialect, Merchant
from adapters.provider.notify import parse_notify
from flamepay import ledger
from flamepay.apply_report import Outcome, apply_provider_report
from flamepay.open_order import open_recharge_order
from flamepay.order import OrderState
from flamepay.report import ReportSource
from tests.core_checks import (
    USER,
    assert_books_balanced,
    entries,
    journal_keys,
    stored_order,
    user_rows,
)
from tests.support import MERCHANT, World, make_world

KEY = "gateway-key-for-core-tests-0123"
NOW_MS = 1_767_268_800_000
NOTIFY_URL = "https://pay.example.com/notify"
CREATE, QUERY, CLOSE = "create", "query", "close"


class MiniGateway:
    """Stores orders on create, answers query with the stored state, signs every `data`."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.orders: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.create_timeout: str | None = None  # 'after-storing' | 'before-storing'
        self.query_timeouts = 0

    # --- what the test drives ---------------------------------------------------------------
    def kinds(self, number: str | None = None) -> list[str]:
        paths = {self.dialect.create_path: CREATE, "/api/pay/query": QUERY}
        paths["/api/pay/close"] = CLOSE
        return [
            paths[p] for p, body in self.requests if number is None or body["mchOrderNo"] == number
        ]

    def pay(self, number: str) -> None:
        self.orders[number].update(state=2, successTime=NOW_MS + 60_000)

    def notify_body(self, number: str) -> bytes:
        """What the gateway POSTs to notifyUrl: the query fields, a timestamp and the sign."""
        order = self.orders[number]
        assert order["notifyUrl"] == NOTIFY_URL
        fields = {k: str(v) for k, v in self._data(order).items()}
        fields[self.dialect.time_field] = str(NOW_MS + 61_000)
        return urlencode(signing.signed(fields, KEY)).encode()

    # --- the gateway ------------------------------------------------------------------------
    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content.decode("utf-8"))
        if not signing.verify(body, KEY, body.get("sign")):
            return httpx.Response(200, json={"code": 9999, "msg": "签名失败"})
        self.requests.append((request.url.path, body))
        number = body["mchOrderNo"]
        if request.url.path == self.dialect.create_path:
            return self._create(request, body)
        order = self.orders.get(number)
        if request.url.path == "/api/pay/query":
            if self.query_timeouts:
                self.query_timeouts -= 1
                raise httpx.ReadTimeout("no answer", request=request)
            if order is None:
                return httpx.Response(200, json={"code": 9999, "msg": "订单不存在"})
            return self._ok(self._data(order))
        if order is None:
            return httpx.Response(200, json={"code": 9999, "msg": "订单不存在"})
        order["state"] = 6
        return self._ok({} if self.dialect is JEEPAY else {"errCode": "", "errMsg": ""})

    def _create(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        number = body["mchOrderNo"]
        if self.create_timeout == "before-storing":
            self.create_timeout = None
            raise httpx.ReadTimeout("lost on the way", request=request)
        if number in self.orders:
            return httpx.Response(200, json={"code": 9999, "msg": "商户订单号重复"})
        pay_no = f"P{len(self.orders) + 1:010d}"
        self.orders[number] = {
            "payNo": pay_no,
            "mchNo": body["mchNo"],
            "mchOrderNo": number,
            "amount": body["amount"],
            "currency": body["currency"],
            "wayCode": body["wayCode"],
            "notifyUrl": body["notifyUrl"],
            "state": 1,
        }
        if self.create_timeout == "after-storing":
            self.create_timeout = None
            raise httpx.ReadTimeout("stored, then silence", request=request)
        cashier = f"https://cashier.example.test/{pay_no}"
        if self.dialect is GGUSONEPAY:
            data = {"payOrderNo": pay_no, "mchOrderNo": number, "state": 1, "cashierUrl": cashier}
        else:
            data = {"payOrderId": pay_no, "mchOrderNo": number, "orderState": 1}
            data.update(payDataType="payurl", payData=cashier)
        return self._ok(data)

    def _data(self, order: dict[str, Any]) -> dict[str, Any]:
        id_field = "payOrderNo" if self.dialect is GGUSONEPAY else "payOrderId"
        data = {
            id_field: order["payNo"],
            "mchNo": order["mchNo"],
            "mchOrderNo": order["mchOrderNo"],
            "amount": order["amount"],
            "currency": order["currency"],
            "state": order["state"],
            "wayCode": order["wayCode"],
        }
        if self.dialect is GGUSONEPAY:
            data["realAmount"] = order["amount"]
        if "successTime" in order:
            data["successTime"] = order["successTime"]
        return data

    def _ok(self, data: dict[str, Any]) -> httpx.Response:
        envelope = {"code": 0, "msg": "SUCCESS", "data": data, "sign": signing.sign(data, KEY)}
        return httpx.Response(200, json=envelope)


def world_on(dialect: Dialect) -> tuple[World, MiniGateway, HttpProviderGateway]:
    world = make_world()
    gateway = MiniGateway(dialect)
    client = HttpProviderGateway(
        "https://gw.example.test",
        dialect,
        Merchant(MERCHANT, KEY, app_id="app-1", client_ip="203.0.113.7", notify_url=NOTIFY_URL),
        require_query_sign=True,
        transport=httpx.MockTransport(gateway),
        clock_ms=lambda: NOW_MS,
        sleep=lambda seconds: None,
    )
    world.core.provider = client
    return world, gateway, client


DIALECTS = pytest.mark.parametrize("dialect", [GGUSONEPAY, JEEPAY], ids=lambda d: d.name)


@DIALECTS
def test_opening_an_order_stores_the_cashier_url_and_the_providers_number(
    dialect: Dialect,
) -> None:
    world, gateway, client = world_on(dialect)

    opened = open_recharge_order(world.core, USER, world.add_package(100_00))

    number = opened.order.mch_order_no
    order = stored_order(world, number)
    pay_no = gateway.orders[number]["payNo"]
    assert order.state is OrderState.PAYING
    assert order.provider_order_no == pay_no
    assert order.cashier_url == f"https://cashier.example.test/{pay_no}"
    assert opened.payable and opened.message == ""
    assert gateway.kinds() == [CREATE] and client.calls == 1
    assert gateway.orders[number]["amount"] == 100_00
    assert gateway.orders[number]["currency"] == "usd"
    assert journal_keys(world) == set()


@DIALECTS
def test_a_create_timeout_after_the_gateway_stored_it_is_resolved_by_one_query(
    dialect: Dialect,
) -> None:
    world, gateway, client = world_on(dialect)
    gateway.create_timeout = "after-storing"

    opened = open_recharge_order(world.core, USER, world.add_package(100_00))

    number = opened.order.mch_order_no
    assert gateway.kinds(number) == [CREATE, QUERY]  # exactly one create, never a second
    assert client.calls == 2
    order = stored_order(world, number)
    assert order.state is OrderState.PAYING
    assert order.provider_order_no == gateway.orders[number]["payNo"]
    assert order.cashier_url is None
    assert "no payment page" in opened.message

    # The payer pays; the gateway says so when asked.
    gateway.pay(number)
    report = world.core.provider.query_order(number)
    assert gateway.kinds(number) == [CREATE, QUERY, QUERY]
    result = apply_provider_report(world.core, report, ReportSource.QUERY)

    assert result.outcome is Outcome.APPLIED
    assert stored_order(world, number).state is OrderState.SUCCESS
    assert entries(world, f"payin:{number}") == {
        ledger.CLEARING: -100_00,
        ledger.available(USER): 85_00,
        ledger.FEES: 15_00,
    }
    assert world.available(USER) == 85_00
    assert [m.text for m in user_rows(world) if m.kind == "order_credited"] == [
        f"Order {number} is paid: 85.00 USD credited. Available: 85.00 USD."
    ]
    assert_books_balanced(world)


@DIALECTS
def test_a_create_lost_before_the_gateway_stored_it_fails_the_order(dialect: Dialect) -> None:
    world, gateway, _ = world_on(dialect)
    gateway.create_timeout = "before-storing"

    opened = open_recharge_order(world.core, USER, world.add_package(100_00))

    number = opened.order.mch_order_no
    assert gateway.kinds(number) == [CREATE, QUERY]
    assert gateway.orders == {}
    assert stored_order(world, number).state is OrderState.FAILED
    assert opened.message == "The gateway did not take the order; try again."


def test_a_create_timeout_and_a_silent_query_leave_the_order_open() -> None:
    world, gateway, client = world_on(GGUSONEPAY)
    gateway.create_timeout = "after-storing"
    gateway.query_timeouts = 3  # every attempt of the one query (attempts=3)

    opened = open_recharge_order(world.core, USER, world.add_package(100_00))

    number = opened.order.mch_order_no
    assert gateway.kinds(number) == [CREATE, QUERY, QUERY, QUERY]  # one create; query retried
    assert client.calls == 4
    assert stored_order(world, number).state is OrderState.CREATED
    assert "not confirmed" in opened.message


@DIALECTS
def test_a_signed_notify_credits_once_however_often_it_is_applied(dialect: Dialect) -> None:
    world, gateway, _ = world_on(dialect)
    number = open_recharge_order(world.core, USER, world.add_package(100_00)).order.mch_order_no
    gateway.pay(number)
    body = gateway.notify_body(number)

    notify = parse_notify(body, "application/x-www-form-urlencoded", b"", [KEY])
    assert notify.report.mch_order_no == number
    assert notify.report.merchant == MERCHANT
    first = apply_provider_report(world.core, notify.report, ReportSource.NOTIFY)
    again = parse_notify(body, "application/x-www-form-urlencoded", b"", [KEY])
    second = apply_provider_report(world.core, again.report, ReportSource.NOTIFY)

    assert first.outcome is Outcome.APPLIED and first.state is OrderState.SUCCESS
    assert second.outcome is Outcome.UNCHANGED and second.acknowledged
    assert world.available(USER) == 85_00
    assert world.balance(ledger.FEES) == 15_00
    assert [k for k in journal_keys(world) if k.startswith("payin:")] == [f"payin:{number}"]
    assert len([m for m in user_rows(world) if m.kind == "order_credited"]) == 1

    # A later query saying the same changes nothing either.
    report = world.core.provider.query_order(number)
    third = apply_provider_report(world.core, report, ReportSource.QUERY)
    assert third.outcome is Outcome.UNCHANGED
    assert world.available(USER) == 85_00
    assert gateway.kinds(number) == [CREATE, QUERY]
    assert_books_balanced(world)
