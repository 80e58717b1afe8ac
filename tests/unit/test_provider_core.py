"""The core's open-order and apply-report use cases run against HttpProviderGateway, over an
httpx.MockTransport that plays a small in-memory gateway of the Jeepay family."""

from __future__ import annotations

import pytest

from adapters.provider.dialects import GGUSONEPAY, JEEPAY, Dialect
from adapters.provider.notify import parse_notify
from flamepay import ledger
from flamepay.apply_report import Outcome, apply_provider_report
from flamepay.open_order import open_recharge_order
from flamepay.order import OrderState
from flamepay.report import ReportSource
from tests.helpers.core_checks import (
    USER,
    assert_books_balanced,
    entries,
    journal_keys,
    stored_order,
    user_rows,
)
from tests.helpers.mini_gateway import (
    CREATE,
    KEY,
    QUERY,
    world_on,
)
from tests.helpers.support import MERCHANT

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
