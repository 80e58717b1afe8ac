"""Opening a recharge order: store, call the gateway outside the transaction, apply the answer."""

from __future__ import annotations

import pytest

from flamepay import ledger
from flamepay.errors import NotEligible, ProviderRejected
from flamepay.open_order import open_recharge_order
from flamepay.order import OrderState
from flamepay.ports import UnitOfWork
from flamepay.report import ReportSource
from tests.helpers.core_checks import (
    USER,
    assert_books_balanced,
    entries,
    journal_keys,
    notify,
    outbox,
    report_state,
    stored_order,
    user_rows,
)
from tests.helpers.support import START, World, make_world

AMOUNT = 100_00


def _open(world: World, amount: int = AMOUNT):
    return open_recharge_order(world.core, USER, world.add_package(amount))


def _calls(world: World, number: str) -> list[str]:
    return [kind for kind, no in world.provider.calls if no == number]


def test_a_normal_order_is_paying_with_the_providers_number_and_cashier_url():
    world = make_world()
    opened = _open(world)

    number = opened.order.mch_order_no
    order = stored_order(world, number)
    pay_no = world.provider.orders[number].pay_order_no
    assert order.state is OrderState.PAYING
    assert order.provider_order_no == pay_no
    assert order.cashier_url == f"https://pay.example.test/cashier/{pay_no}"
    assert order.fee_bp == 1500
    assert order.amount == AMOUNT and order.currency == "USD" and order.user_id == USER
    assert order.expires_at == START.replace(minute=30)
    assert opened.payable and not opened.reused and opened.message == ""
    assert _calls(world, number) == ["create"]
    assert world.order(pay_no).mch_order_no == number  # findable by the provider's number
    assert journal_keys(world) == set()
    assert outbox(world) == []
    opened_audit = [a for a in world.state.audit if a.action == "order_opened"]
    assert len(opened_audit) == 1
    assert opened_audit[0].actor == f"user:{USER}"
    assert opened_audit[0].target == number
    assert opened_audit[0].details["fee_bp"] == 1500
    assert opened_audit[0].details["amount"] == AMOUNT
    assert [a.action for a in world.state.audit if a.actor == "create"] == ["report_move"]


def test_the_fee_in_force_is_stored_and_a_later_change_does_not_touch_the_order():
    world = make_world(fee_bp=1250)
    number = _open(world, 100_10).order.mch_order_no
    world.set_policy(fee_bp=3000)

    report_state(world, number, OrderState.SUCCESS)

    assert stored_order(world, number).fee_bp == 1250
    # 12.5% of 100.10 is 12.5125 -> 12.51 (round half up, at the stored fee)
    assert entries(world, f"payin:{number}") == {
        ledger.CLEARING: -100_10,
        ledger.available(USER): 100_10 - 12_51,
        ledger.FEES: 12_51,
    }
    # A new order takes the fee in force now.
    assert _open(world).order.fee_bp == 3000


def test_create_timeout_with_the_order_at_the_provider_is_resolved_by_one_query():
    world = make_world()
    world.provider.create_timeout_after_storing = True

    opened = _open(world)

    number = opened.order.mch_order_no
    assert _calls(world, number) == ["create", "query"]
    order = stored_order(world, number)
    assert order.state is OrderState.PAYING
    assert order.provider_order_no == world.provider.orders[number].pay_order_no
    # Confirmed by a query, which carries no payment page: the user is told so.
    assert "no payment page" in opened.message
    assert journal_keys(world) == set()


def test_create_timeout_with_the_order_paid_meanwhile_credits_through_the_query():
    world = make_world()
    world.provider.create_timeout_after_storing = True
    real_create = world.provider.create_order

    def create_then_paid(request):
        try:
            return real_create(request)
        finally:
            world.provider.pay(request.mch_order_no)

    world.provider.create_order = create_then_paid
    number = _open(world).order.mch_order_no

    assert _calls(world, number) == ["create", "query"]
    assert stored_order(world, number).state is OrderState.SUCCESS
    assert journal_keys(world) == {f"payin:{number}"}
    assert world.available(USER) == 85_00


def test_create_timeout_without_the_order_at_the_provider_fails_it():
    world = make_world()
    world.provider.create_timeout_after_storing = False

    opened = _open(world)

    number = opened.order.mch_order_no
    assert _calls(world, number) == ["create", "query"]
    assert number not in world.provider.orders  # never created twice
    assert stored_order(world, number).state is OrderState.FAILED
    assert not opened.payable
    assert "try again" in opened.message
    assert journal_keys(world) == set()


def test_a_rejected_create_fails_the_order_and_tells_the_admins_the_gateways_message():
    # Issue 15 fault 11: the gateway's text goes to the admins, never to the user.
    world = make_world()
    world.provider.create_rejection = (9999, "channel closed for maintenance")

    opened = _open(world)

    number = opened.order.mch_order_no
    assert stored_order(world, number).state is OrderState.FAILED
    assert "channel closed for maintenance" not in opened.message and opened.message
    assert _calls(world, number) == ["create"]
    assert journal_keys(world) == set()
    [notice] = outbox(world)
    assert notice.kind == "order_refused" and "channel closed for maintenance" in notice.text


def test_2008_then_an_unknown_order_fails_it_and_says_try_again_in_a_minute():
    world = make_world()
    world.provider.create_rejection = (2008, "too frequent")

    opened = _open(world)

    number = opened.order.mch_order_no
    assert _calls(world, number) == ["create", "query"]
    assert stored_order(world, number).state is OrderState.FAILED
    assert "try again in a minute" in opened.message


@pytest.mark.parametrize(
    ("paid", "expected"), [(False, OrderState.PAYING), (True, OrderState.SUCCESS)]
)
def test_2008_with_the_order_at_the_provider_is_applied_from_the_query(paid, expected):
    world = make_world()
    real_create = world.provider.create_order

    def stored_then_2008(request):
        # An earlier attempt reached the gateway; this one is refused as a duplicate.
        real_create(request)
        if paid:
            world.provider.pay(request.mch_order_no)
        raise ProviderRejected(2008, "duplicate submission")

    world.provider.create_order = stored_then_2008
    opened = _open(world)

    number = opened.order.mch_order_no
    assert _calls(world, number) == ["create", "query"]
    order = stored_order(world, number)
    assert order.state is expected
    assert order.provider_order_no == world.provider.orders[number].pay_order_no
    assert opened.message == (
        ""
        if paid
        else "The gateway has the order but sent no payment page yet; check /status soon."
    )
    assert (f"payin:{number}" in journal_keys(world)) is paid


def test_a_create_response_saying_success_credits_only_through_a_query():
    world = make_world()
    world.provider.create_reports_success = True  # the gateway itself still says 1

    opened = _open(world)

    number = opened.order.mch_order_no
    assert _calls(world, number) == ["create", "query"]
    assert stored_order(world, number).state is OrderState.PAYING
    assert journal_keys(world) == set()
    assert world.available(USER) == 0
    assert "create_reported_success" in [a.action for a in world.state.audit]


def test_a_create_response_saying_success_confirmed_by_the_query_credits_once():
    world = make_world()
    world.provider.create_reports_success = True
    real_create = world.provider.create_order

    def create_and_pay(request):
        response = real_create(request)
        world.provider.pay(request.mch_order_no)
        return response

    world.provider.create_order = create_and_pay
    number = _open(world).order.mch_order_no

    assert _calls(world, number) == ["create", "query"]
    assert stored_order(world, number).state is OrderState.SUCCESS
    assert journal_keys(world) == {f"payin:{number}"}
    assert [m.kind for m in user_rows(world)] == ["order_credited"]
    assert [a.actor for a in world.state.audit if a.action == "report_credit"] == ["query"]
    assert_books_balanced(world)


# Found failing on d72889c (NEEDS_QUERY returned before fill_provider_details); now fixed.
def test_a_create_response_saying_success_still_fills_the_cashier_url():
    world = make_world()
    world.provider.create_reports_success = True

    opened = _open(world)

    number = opened.order.mch_order_no
    pay_no = world.provider.orders[number].pay_order_no
    order = stored_order(world, number)
    assert order.state is OrderState.PAYING
    assert order.cashier_url == f"https://pay.example.test/cashier/{pay_no}"
    assert opened.payable


def test_create_and_query_both_timing_out_leave_the_order_created_and_open():
    world = make_world()
    world.provider.create_timeout_after_storing = True
    world.provider.query_timeouts = 1

    opened = _open(world)

    number = opened.order.mch_order_no
    assert _calls(world, number) == ["create", "query"]
    order = stored_order(world, number)
    assert order.state is OrderState.CREATED
    assert order.is_open
    assert order.provider_order_no is None and order.cashier_url is None
    assert opened.message  # the user is told it is not confirmed yet
    assert journal_keys(world) == set()
    # A later query (the reconciler) resolves it through the same table.
    notify(world, number, ReportSource.RECONCILE)
    assert stored_order(world, number).state is OrderState.PAYING


def _disable(world: World, package_id: int) -> None:
    def body(uow: UnitOfWork) -> None:
        package = uow.catalogue.package(package_id)
        package.enabled = False
        uow.catalogue.save_package(package)

    world.core.transaction(body)


@pytest.mark.parametrize("which", ["disabled", "missing"])
def test_a_disabled_or_missing_package_is_refused_and_nothing_is_stored(which):
    world = make_world()
    package_id = world.add_package(AMOUNT)
    if which == "disabled":
        _disable(world, package_id)
    else:
        package_id += 1

    with pytest.raises(NotEligible, match="not available"):
        open_recharge_order(world.core, USER, package_id)

    assert world.state.orders == {}
    assert world.state.order_numbers == {}
    assert world.provider.calls == []
    assert outbox(world) == []
    assert not [a for a in world.state.audit if a.action == "order_opened"]
