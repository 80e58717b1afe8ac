"""Applying provider reports: the match rule, review, unknown orders, duplicates, fast notifies."""

from __future__ import annotations

import pytest

from flamepay import ledger
from flamepay.apply_report import Outcome, apply_provider_report
from flamepay.expire_orders import expire_due_orders
from flamepay.open_order import open_recharge_order
from flamepay.order import OrderState, ReviewFlag
from flamepay.ports import UnitOfWork
from flamepay.records import ReviewKind
from flamepay.report import ProviderReport, ReportSource
from tests.helpers.core_checks import (
    USER,
    admin_rows,
    assert_books_balanced,
    audit_actions,
    entries,
    journal_keys,
    notify,
    open_order,
    outbox,
    reviews,
    stored_order,
    user_rows,
    with_fields,
)
from tests.helpers.support import MERCHANT, make_world

AMOUNT = 100_00

# Each way a report can fail the match rule, as a change to an otherwise correct report.
MISMATCHES = {
    "wrong amount": dict(amount=AMOUNT + 1),
    "amount missing": dict(amount=None),
    "wrong realAmount": dict(real_amount=AMOUNT - 1),
    "wrong currency": dict(currency="EUR"),
    "currency missing": dict(currency=None),
    "notify without merchant": dict(merchant=None),
    "another merchant": dict(merchant="M999"),
    "other provider order number": dict(provider_order_no="P9999999999"),
}


def _paid_report(world, number, **changes) -> ProviderReport:
    return with_fields(world.provider.pay(number), **changes)


@pytest.mark.parametrize("changes", MISMATCHES.values(), ids=MISMATCHES.keys())
def test_a_report_failing_the_match_is_flagged_and_moves_nothing(changes):
    world = make_world()
    number = open_order(world, AMOUNT)
    bad = _paid_report(world, number, **changes)

    first = apply_provider_report(world.core, bad, ReportSource.NOTIFY)
    again = apply_provider_report(world.core, bad, ReportSource.NOTIFY)

    assert first.outcome is Outcome.REVIEW
    assert first.reason
    assert again.outcome is Outcome.UNDER_REVIEW
    order = stored_order(world, number)
    assert order.state is OrderState.PAYING
    assert order.review is ReviewFlag.PENDING
    assert journal_keys(world) == set()
    assert world.state.balances == {}
    assert [(r.kind, r.order_id) for r in reviews(world)] == [(ReviewKind.MISMATCH, order.id)]
    assert [m.kind for m in admin_rows(world)] == ["review_opened"]
    assert number in admin_rows(world)[0].text
    assert user_rows(world) == []
    assert audit_actions(world).count("report_mismatch") == 1
    assert audit_actions(world).count("report_while_under_review") == 1


@pytest.mark.parametrize("changes", MISMATCHES.values(), ids=MISMATCHES.keys())
def test_later_reports_on_a_flagged_order_even_correct_ones_are_only_logged(changes):
    world = make_world()
    number = open_order(world, AMOUNT)
    apply_provider_report(world.core, _paid_report(world, number, **changes), ReportSource.NOTIFY)

    results = [notify(world, number, source) for source in ReportSource if source.carries_amounts]
    world.provider.set_state(number, OrderState.REFUNDED)
    results.append(notify(world, number))

    assert {r.outcome for r in results} == {Outcome.UNDER_REVIEW}
    assert stored_order(world, number).state is OrderState.PAYING
    assert journal_keys(world) == set()
    assert len(reviews(world)) == 1
    assert len(admin_rows(world)) == 1
    assert user_rows(world) == []
    assert audit_actions(world).count("report_while_under_review") == len(results)


def test_a_flagged_order_leaves_the_expiry_sweep():
    world = make_world()
    number = open_order(world, AMOUNT)
    notify(world, number, amount=1)  # flagged
    world.clock.advance(hours=2)

    assert expire_due_orders(world.core) == []
    assert stored_order(world, number).state is OrderState.PAYING
    assert ("close", number) not in world.provider.calls
    # ... and the open-order count.
    assert world.read(lambda uow: uow.orders.open_for_user(USER)) == []


def test_a_lowercase_currency_matches():
    world = make_world()
    number = open_order(world, AMOUNT)
    assert stored_order(world, number).currency == "USD"

    result = apply_provider_report(
        world.core, _paid_report(world, number, currency="usd"), ReportSource.NOTIFY
    )

    assert result.outcome is Outcome.APPLIED
    assert stored_order(world, number).state is OrderState.SUCCESS
    assert world.available(USER) == 85_00
    assert reviews(world) == []


@pytest.mark.parametrize("source", [ReportSource.QUERY, ReportSource.RECONCILE])
def test_a_query_without_a_merchant_matches(source):
    # Only a notify must carry the merchant; a query answer may leave it out.
    world = make_world()
    number = open_order(world, AMOUNT)

    result = apply_provider_report(world.core, _paid_report(world, number, merchant=None), source)

    assert result.outcome is Outcome.APPLIED
    assert world.available(USER) == 85_00


@pytest.mark.parametrize("source", [ReportSource.QUERY, ReportSource.RECONCILE])
def test_a_query_naming_another_merchant_is_flagged(source):
    world = make_world()
    number = open_order(world, AMOUNT)

    result = apply_provider_report(world.core, _paid_report(world, number, merchant="M999"), source)

    assert result.outcome is Outcome.REVIEW
    assert journal_keys(world) == set()
    assert stored_order(world, number).review is ReviewFlag.PENDING


def test_a_report_without_real_amount_matches_on_amount():
    world = make_world()
    number = open_order(world, AMOUNT)
    report = with_fields(world.provider.pay(number), real_amount=None, merchant=MERCHANT)

    result = apply_provider_report(world.core, report, ReportSource.NOTIFY)

    assert result.outcome is Outcome.APPLIED
    assert world.available(USER) == 85_00


def test_an_unknown_order_is_reported_as_such_and_changes_nothing():
    world = make_world()
    number = open_order(world, AMOUNT)
    report = with_fields(world.provider.pay(number), mch_order_no="FP99999999")

    result = apply_provider_report(world.core, report, ReportSource.NOTIFY)

    assert result.outcome is Outcome.UNKNOWN_ORDER
    assert not result.acknowledged
    assert stored_order(world, number).state is OrderState.PAYING
    assert journal_keys(world) == set()
    assert outbox(world) == []
    assert reviews(world) == []
    last = world.state.audit[-1]
    assert (last.actor, last.action, last.target) == (
        "notify",
        "report_unknown_order",
        "FP99999999",
    )


def test_order_numbers_are_exact_not_case_folded():
    world = make_world()
    number = open_order(world, AMOUNT)
    report = with_fields(world.provider.pay(number), mch_order_no=number.lower())

    result = apply_provider_report(world.core, report, ReportSource.NOTIFY)

    assert result.outcome is Outcome.UNKNOWN_ORDER
    assert journal_keys(world) == set()


def test_a_duplicate_success_notify_credits_once():
    world = make_world()
    number = open_order(world, AMOUNT)
    report = world.provider.pay(number)

    results = [apply_provider_report(world.core, report, ReportSource.NOTIFY) for _ in range(3)]
    results.append(notify(world, number, ReportSource.RECONCILE))

    assert [r.outcome for r in results] == [Outcome.APPLIED] + [Outcome.UNCHANGED] * 3
    assert journal_keys(world) == {f"payin:{number}"}
    assert world.available(USER) == 85_00
    assert world.balance(ledger.FEES) == 15_00
    assert world.balance(ledger.CLEARING) == -100_00
    assert [m.kind for m in user_rows(world)] == ["order_credited"]
    assert admin_rows(world) == []
    assert audit_actions(world).count("report_credit") == 1
    assert audit_actions(world).count("report_noop") == 3
    assert_books_balanced(world)


@pytest.mark.parametrize("fast_state", [OrderState.SUCCESS, OrderState.PAYING])
def test_a_fast_notify_before_the_create_response(fast_state):
    world = make_world()
    real_create = world.provider.create_order

    def create_with_fast_notify(request):
        # The gateway stores the order, the payer pays and the notify lands before the
        # create response is applied (the create call runs outside any transaction).
        response = real_create(request)
        if fast_state is OrderState.SUCCESS:
            world.provider.pay(request.mch_order_no)
        notify(world, request.mch_order_no)
        return response

    world.provider.create_order = create_with_fast_notify
    opened = open_recharge_order(world.core, USER, world.add_package(AMOUNT))

    number = opened.order.mch_order_no
    pay_no = world.provider.orders[number].pay_order_no
    order = stored_order(world, number)
    assert order.state is fast_state  # the create response (1) did not move it back
    assert order.provider_order_no == pay_no
    assert order.cashier_url == f"https://pay.example.test/cashier/{pay_no}"  # filled, empty
    if fast_state is OrderState.SUCCESS:
        assert journal_keys(world) == {f"payin:{number}"}
        assert entries(world, f"payin:{number}")[ledger.available(USER)] == 85_00
        assert [m.kind for m in user_rows(world)] == ["order_credited"]
    else:
        assert journal_keys(world) == set()
    assert reviews(world) == []
    assert_books_balanced(world)


def test_a_create_response_does_not_overwrite_filled_provider_details():
    world = make_world()
    number = open_order(world, AMOUNT)
    before = stored_order(world, number)

    result = apply_provider_report(
        world.core,
        ProviderReport(number, OrderState.PAYING, cashier_url="https://evil.example/pay"),
        ReportSource.CREATE,
    )

    assert result.outcome is Outcome.UNCHANGED
    after = stored_order(world, number)
    assert after.cashier_url == before.cashier_url
    assert after.provider_order_no == before.provider_order_no


def test_a_new_mismatch_after_the_review_was_resolved_opens_a_second_review():
    # Issue 15 fault 3 changed this: a resolved order is back under the rules, so a report
    # that differs from the one resolved is flagged again (the same one is only logged).
    world = make_world()
    number = open_order(world, AMOUNT)
    notify(world, number, amount=AMOUNT + 1)  # flagged: one review, one alert

    def resolved_as_rejected(uow: UnitOfWork) -> None:
        # What an admin's "reject" leaves (the review use case is tested elsewhere).
        order = uow.orders.get_for_update(number)
        order.review = ReviewFlag.REJECTED
        order.state = OrderState.FAILED
        uow.orders.save(order)

    world.core.transaction(resolved_as_rejected)

    same = notify(world, number, amount=AMOUNT + 1)
    result = notify(world, number, amount=AMOUNT + 2)

    assert same.outcome is result.outcome is Outcome.REVIEW
    assert stored_order(world, number).state is OrderState.FAILED
    assert stored_order(world, number).review is ReviewFlag.PENDING
    assert journal_keys(world) == set()
    assert len(reviews(world, ReviewKind.MISMATCH)) == 2
    assert [m.kind for m in admin_rows(world)] == ["review_opened", "review_opened"]
    assert audit_actions(world).count("report_mismatch") == 2
    assert audit_actions(world).count("report_mismatch_resolved_before") == 1


def test_a_report_naming_another_orders_provider_number_is_flagged_not_raised():
    world = make_world()
    world.provider.create_timeout_after_storing = True
    world.provider.query_timeouts = 1  # the order stays 0 with no provider number yet
    number = open_recharge_order(world.core, USER, world.add_package(AMOUNT)).order.mch_order_no
    other = open_order(world, AMOUNT)
    taken = stored_order(world, other).provider_order_no
    report = _paid_report(world, number, provider_order_no=taken)

    result = apply_provider_report(world.core, report, ReportSource.NOTIFY)

    assert result.outcome is Outcome.REVIEW
    assert stored_order(world, number).review is ReviewFlag.PENDING
    assert journal_keys(world) == set()
