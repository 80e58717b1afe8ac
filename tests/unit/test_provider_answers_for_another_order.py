"""Issue 15 fault 12: an answer about another order is never applied. A query (or create)
answer whose mchOrderNo, or provider order number where the order has one, differs from the
order asked about is a bad response; and a sign carried by an answer is verified by default
in both dialects."""

from __future__ import annotations

import pytest

from adapters.provider import signing
from adapters.provider.dialects import GGUSONEPAY, JEEPAY, Dialect
from flamepay.errors import ProviderBadResponse
from flamepay.open_order import open_recharge_order
from flamepay.order import OrderState
from flamepay.reconcile_stale import reconcile_one
from tests.helpers.core_checks import USER, journal_keys, open_order, stored_order
from tests.helpers.gateway_doubles import (
    KEY,
    NUMBER,
    REQUEST,
    Gateway,
    client,
    create_data,
    ok,
    query_data,
)
from tests.helpers.support import make_world

DIALECTS = pytest.mark.parametrize("dialect", [GGUSONEPAY, JEEPAY], ids=lambda d: d.name)
OTHER = "R20260101000002"


def _id_field(dialect: Dialect) -> str:
    return "payOrderNo" if dialect is GGUSONEPAY else "payOrderId"


# --- the client -----------------------------------------------------------------------------
@DIALECTS
def test_a_query_answer_about_another_order_is_a_bad_response(dialect: Dialect) -> None:
    """Issue 15 fault 12: a signed query answer naming another mchOrderNo is refused."""
    gateway = Gateway(ok(query_data(dialect, mchOrderNo=OTHER)))
    with pytest.raises(ProviderBadResponse):
        client(dialect, gateway).query_order(NUMBER)
    assert len(gateway.requests) == 1


@DIALECTS
def test_a_create_answer_about_another_order_is_a_bad_response(dialect: Dialect) -> None:
    """Issue 15 fault 12: a create answer naming another mchOrderNo is not applied."""
    gateway = Gateway(ok({**create_data(dialect), "mchOrderNo": OTHER}))
    with pytest.raises(ProviderBadResponse):
        client(dialect, gateway).create_order(REQUEST)
    assert len(gateway.requests) == 1


@DIALECTS
def test_a_query_answer_with_another_provider_number_is_a_bad_response(dialect: Dialect) -> None:
    """Issue 15 fault 12: when the order has a provider number, an answer naming another one
    is refused; the same one is accepted."""
    data = query_data(dialect, **{_id_field(dialect): "P0002"})
    with pytest.raises(ProviderBadResponse):
        client(dialect, Gateway(ok(data))).query_order(NUMBER, provider_order_no="P0001")
    report = client(dialect, Gateway(ok(query_data(dialect)))).query_order(
        NUMBER, provider_order_no="P0001"
    )
    assert report.mch_order_no == NUMBER and report.provider_order_no == "P0001"


@DIALECTS
@pytest.mark.parametrize("how", ["tampered", "other-key"])
def test_a_carried_sign_is_verified_by_default_in_both_dialects(dialect: Dialect, how: str) -> None:
    """Issue 15 fault 12: with the default settings (no required sign), a query answer that
    carries a wrong sign is refused in ggusonepay as in jeepay."""
    data = query_data(dialect)
    good = signing.sign(data, KEY)
    sign = {
        "tampered": ("0" if good[0] != "0" else "1") + good[1:],
        "other-key": signing.sign(data, KEY + "x"),
    }[how]
    gateway = Gateway(ok(data, sign=sign))
    with pytest.raises(ProviderBadResponse):
        client(dialect, gateway, sleeps=[]).query_order(NUMBER)


# --- the core -------------------------------------------------------------------------------
@DIALECTS
def test_the_sweep_never_applies_an_answer_about_another_order(dialect: Dialect) -> None:
    """Issue 15 fault 12: the reconciler asks about one order and the gateway answers
    "paid" for another one of ours: neither order changes and nothing is credited."""
    world = make_world()
    asked = open_order(world, 100_00)
    other = open_order(world, 100_00)
    pay_no = world.provider.orders[other].pay_order_no
    paid_other = query_data(dialect, mchOrderNo=other, **{_id_field(dialect): pay_no})
    world.core.provider = client(dialect, Gateway(ok(paid_other)), sleeps=[])
    world.clock.advance(minutes=4)

    outcome = reconcile_one(world.core, stored_order(world, asked))

    for number in (asked, other):
        assert stored_order(world, number).state is OrderState.PAYING
        assert not stored_order(world, number).under_review
    assert outcome == "no answer"
    assert journal_keys(world) == set()
    assert world.available(USER) == 0


@DIALECTS
def test_a_create_answer_about_another_order_is_not_applied_to_it(dialect: Dialect) -> None:
    """Issue 15 fault 12: a create answer naming another of our orders (failed, here) is not
    applied to that order; the new order is resolved by a query instead."""
    world = make_world()
    earlier = open_order(world, 100_00)
    pay_no = world.provider.orders[earlier].pay_order_no
    failed_other = {**create_data(dialect), "mchOrderNo": earlier, _id_field(dialect): pay_no}
    failed_other["state" if dialect is GGUSONEPAY else "orderState"] = 3
    world.core.provider = client(
        dialect, Gateway(ok(failed_other), {"code": 9999, "msg": "订单不存在"}), sleeps=[]
    )

    opened = open_recharge_order(world.core, USER, world.add_package(100_00))

    assert opened.order.mch_order_no != earlier
    assert stored_order(world, earlier).state is OrderState.PAYING
    assert not stored_order(world, earlier).under_review
