"""Cancel and expiry: close at the provider first, and apply 6 only on its word."""

from __future__ import annotations

import pytest

from flamepay.cancel_order import cancel_order
from flamepay.closing import CloseOutcome
from flamepay.errors import NotFound, Refused
from flamepay.expire_orders import expire_due_orders
from flamepay.open_order import open_recharge_order
from flamepay.order import OrderState
from flamepay.report import ReportSource
from tests.helpers.core_checks import (
    OTHER_USER,
    USER,
    assert_books_balanced,
    journal_keys,
    notify,
    open_order,
    paid_order,
    snapshot,
    stored_order,
    user_rows,
)
from tests.helpers.support import World, make_world

AMOUNT = 100_00


def _calls(world: World, number: str) -> list[str]:
    return [kind for kind, no in world.provider.calls if no == number]


def _new_calls(world: World, number: str, since: int) -> list[str]:
    return [kind for kind, no in world.provider.calls[since:] if no == number]


# --- cancel --------------------------------------------------------------------------------
def test_cancel_closes_at_the_provider_then_sets_6():
    world = make_world()
    number = open_order(world, AMOUNT)

    closed = cancel_order(world.core, USER, number)

    assert closed.outcome is CloseOutcome.CLOSED
    assert stored_order(world, number).state is OrderState.CLOSED
    assert world.provider.orders[number].state is OrderState.CLOSED
    assert _calls(world, number) == ["create", "close"]
    assert journal_keys(world) == set()
    actions = [(a.actor, a.action) for a in world.state.audit if a.target == number]
    assert (f"user:{USER}", "order_cancel_requested") in actions
    assert ("close", "report_move") in actions


def test_cancel_by_the_providers_order_number():
    world = make_world()
    number = open_order(world, AMOUNT)
    pay_no = world.provider.orders[number].pay_order_no

    cancel_order(world.core, USER, pay_no)

    assert stored_order(world, number).state is OrderState.CLOSED


def test_cancel_of_an_order_paid_meanwhile_is_credited_by_the_query():
    world = make_world()
    number = open_order(world, AMOUNT)
    world.provider.pay(number)  # paid at the gateway; the notify has not arrived

    closed = cancel_order(world.core, USER, number)

    assert closed.outcome is CloseOutcome.PROVIDER_SAID
    assert closed.state is OrderState.SUCCESS
    assert stored_order(world, number).state is OrderState.SUCCESS
    assert _calls(world, number) == ["create", "close", "query"]
    assert journal_keys(world) == {f"payin:{number}"}
    assert world.available(USER) == 85_00
    assert [m.kind for m in user_rows(world)] == ["order_credited"]
    assert_books_balanced(world)


def test_close_and_query_both_timing_out_change_nothing():
    world = make_world()
    number = open_order(world, AMOUNT)
    world.provider.close_timeouts = 1
    world.provider.query_timeouts = 1
    before = snapshot(world)

    closed = cancel_order(world.core, USER, number)

    assert closed.outcome is CloseOutcome.UNKNOWN
    assert stored_order(world, number).state is OrderState.PAYING
    assert _calls(world, number) == ["create", "close", "query"]
    assert snapshot(world) == before


@pytest.mark.parametrize("fault", ["close_timeouts", "close_failures"])
def test_a_failed_close_with_the_order_still_open_at_the_provider_does_not_set_6(fault):
    # 6 only after a successful close or a query that reports 6.
    world = make_world()
    number = open_order(world, AMOUNT)
    setattr(world.provider, fault, 1)

    closed = cancel_order(world.core, USER, number)

    assert closed.outcome is CloseOutcome.PROVIDER_SAID
    assert stored_order(world, number).state is OrderState.PAYING
    assert _calls(world, number) == ["create", "close", "query"]


def test_a_failed_close_with_the_order_closed_at_the_provider_sets_6_from_the_query():
    world = make_world()
    number = open_order(world, AMOUNT)
    world.provider.set_state(number, OrderState.CLOSED)  # closed there, we were not told

    closed = cancel_order(world.core, USER, number)

    assert closed.outcome is CloseOutcome.PROVIDER_SAID
    assert stored_order(world, number).state is OrderState.CLOSED
    assert _calls(world, number) == ["create", "close", "query"]


def test_an_order_the_provider_never_had_fails_instead_of_closing():
    world = make_world()
    world.provider.create_timeout_after_storing = False  # never stored at the gateway
    world.provider.query_timeouts = 1  # and the first query did not answer: it stays 0
    opened = open_recharge_order(world.core, USER, world.add_package(AMOUNT))
    number = opened.order.mch_order_no
    assert stored_order(world, number).state is OrderState.CREATED

    closed = cancel_order(world.core, USER, number)

    assert closed.outcome is CloseOutcome.NEVER_PLACED
    assert stored_order(world, number).state is OrderState.FAILED
    assert _calls(world, number) == ["create", "query", "close", "query"]
    assert journal_keys(world) == set()


def test_cancel_of_another_users_order_looks_exactly_like_a_missing_one():
    world = make_world()
    number = open_order(world, AMOUNT, user_id=OTHER_USER)
    calls = len(world.provider.calls)
    before = snapshot(world)

    with pytest.raises(NotFound) as theirs:
        cancel_order(world.core, USER, number)
    with pytest.raises(NotFound) as missing:
        cancel_order(world.core, USER, "FP99999999")

    assert str(theirs.value) == str(missing.value)
    assert number not in str(theirs.value)
    assert stored_order(world, number).state is OrderState.PAYING
    assert world.provider.calls[calls:] == []
    assert snapshot(world) == before


def test_cancel_of_a_paid_order_is_refused_without_asking_the_provider():
    world = make_world()
    number = paid_order(world, AMOUNT)
    calls = len(world.provider.calls)
    before = snapshot(world)

    with pytest.raises(Refused, match="only an unpaid order can be cancelled"):
        cancel_order(world.core, USER, number)

    assert world.provider.calls[calls:] == []
    assert stored_order(world, number).state is OrderState.SUCCESS
    assert snapshot(world) == before


def test_cancel_of_an_order_under_review_is_refused():
    world = make_world()
    number = open_order(world, AMOUNT)
    notify(world, number, amount=1)
    calls = len(world.provider.calls)

    with pytest.raises(Refused, match="checked by an admin"):
        cancel_order(world.core, USER, number)

    assert world.provider.calls[calls:] == []
    assert stored_order(world, number).state is OrderState.PAYING


# --- expiry --------------------------------------------------------------------------------
def test_expiry_touches_only_due_open_orders_not_under_review_in_bounded_batches():
    world = make_world(order_expire_minutes=30)
    due = [open_order(world, AMOUNT + i) for i in range(5)]
    paid = paid_order(world, 200_00)
    flagged = open_order(world, 300_00)
    notify(world, flagged, amount=1)
    failed = open_order(world, 400_00)
    world.provider.set_state(failed, OrderState.FAILED)
    notify(world, failed)
    world.clock.advance(minutes=20)
    fresh = open_order(world, 500_00)  # expires 20 minutes after the others
    world.clock.advance(minutes=10)  # the first batch is exactly due now
    calls = len(world.provider.calls)

    first = expire_due_orders(world.core, batch=3)
    second = expire_due_orders(world.core, batch=3)
    third = expire_due_orders(world.core, batch=3)

    assert [c.outcome for c in first] == [CloseOutcome.CLOSED] * 3
    assert [c.outcome for c in second] == [CloseOutcome.CLOSED] * 2
    assert third == []
    closes = [no for kind, no in world.provider.calls[calls:] if kind == "close"]
    assert closes == due  # oldest first, each once, nothing else
    for number in due:
        assert stored_order(world, number).state is OrderState.CLOSED
    assert stored_order(world, paid).state is OrderState.SUCCESS
    assert stored_order(world, flagged).state is OrderState.PAYING
    assert stored_order(world, failed).state is OrderState.FAILED
    assert stored_order(world, fresh).state is OrderState.PAYING
    assert journal_keys(world) == {f"payin:{paid}"}

    world.clock.advance(minutes=20)
    assert [c.outcome for c in expire_due_orders(world.core)] == [CloseOutcome.CLOSED]
    assert stored_order(world, fresh).state is OrderState.CLOSED


def test_expiry_of_an_order_paid_meanwhile_credits_it():
    world = make_world()
    number = open_order(world, AMOUNT)
    world.provider.pay(number)
    world.clock.advance(minutes=31)

    [closed] = expire_due_orders(world.core)

    assert closed.outcome is CloseOutcome.PROVIDER_SAID
    assert stored_order(world, number).state is OrderState.SUCCESS
    assert world.available(USER) == 85_00
    assert [a.actor for a in world.state.audit if a.action == "report_credit"] == [
        ReportSource.RECONCILE.value
    ]


def test_expiry_with_close_and_query_timing_out_leaves_the_order_for_the_next_run():
    world = make_world()
    number = open_order(world, AMOUNT)
    world.clock.advance(minutes=31)
    world.provider.close_timeouts = 1
    world.provider.query_timeouts = 1

    [closed] = expire_due_orders(world.core)

    assert closed.outcome is CloseOutcome.UNKNOWN
    assert stored_order(world, number).state is OrderState.PAYING
    # Claimed for a minute: a second runner right now leaves it alone...
    assert expire_due_orders(world.core) == []
    world.clock.advance(minutes=2)
    # ...and the next pass closes it.
    [again] = expire_due_orders(world.core)
    assert again.outcome is CloseOutcome.CLOSED
    assert stored_order(world, number).state is OrderState.CLOSED
