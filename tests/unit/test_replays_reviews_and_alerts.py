"""Issue 15, faults 1, 2, 3 and 7: ways a replayed notify, a review or an alert storm could
mint money, lift a block on it, swallow a later report or flood the admins.

Each test names the fault it pins. They run on the in-memory adapters and the fake gateway;
the SQL adapters run the same use cases in the contract and MySQL suites.
"""

from __future__ import annotations

import pytest

from flamepay import ledger
from flamepay.apply_report import Outcome, apply_provider_report
from flamepay.confirm_by_query import confirm_by_query
from flamepay.errors import ProviderTimeout, Refused
from flamepay.order import OrderState, ReviewFlag
from flamepay.payout import Network
from flamepay.records import ReviewKind, ReviewStatus
from flamepay.report import ReportSource
from flamepay.request_payout import request_payout
from flamepay.resolve_review import Resolution, creditable, resolve_review
from tests.helpers.core_checks import (
    ADMIN,
    USER,
    admin_rows,
    assert_books_balanced,
    journal_keys,
    notify,
    open_order,
    paid_order,
    report_state,
    reviews,
    snapshot,
    stored_order,
    user_rows,
)
from tests.helpers.support import MERCHANT, make_world

AMOUNT = 100_00
CREDIT = 85_00  # at the default 15 %


def _disputed(world) -> tuple[str, object]:
    """A paid order that the gateway reports disputed (found by the reconciler), and the
    success notify the payer kept from when it was paid."""
    number = paid_order(world, AMOUNT)
    kept = world.provider.report(number)  # state 2, validly "signed": a replayable copy
    report_state(world, number, OrderState.DISPUTED, ReportSource.RECONCILE)
    assert stored_order(world, number).state is OrderState.DISPUTED
    return number, kept


def _payout_refused(world) -> bool:
    try:
        request_payout(world.core, USER, 10_00, Network.TRC20, "T" + "1" * 33)
    except Refused:
        return True
    return False


# --- fault 1: dispute release by replay --------------------------------------------------
@pytest.mark.parametrize("reported", [OrderState.SUCCESS, OrderState.REFUNDED])
def test_a_replayed_notify_never_lifts_a_dispute(reported):
    """Issue 15 fault 1: a reported 2 (or 5) on a disputed order released the dispute and
    unblocked payouts whatever the source. A notify may be a replay: it changes nothing and
    asks for the gateway's own answer to a query."""
    world = make_world()
    number, kept = _disputed(world)
    before = snapshot(world)
    replay = (
        kept
        if reported is OrderState.SUCCESS
        else world.provider.report(number, state=OrderState.REFUNDED)
    )

    result = apply_provider_report(world.core, replay, ReportSource.NOTIFY)

    assert result.outcome is Outcome.NEEDS_QUERY
    assert stored_order(world, number).state is OrderState.DISPUTED
    assert snapshot(world) == before
    assert world.state.audit[-1].action == "release_needs_query"
    assert _payout_refused(world)


def test_only_the_gateways_answer_to_a_query_releases_a_dispute():
    """Issue 15 fault 1: the query that follows the notify decides. While the gateway still
    says 7 nothing is released; once it says 2 the dispute is released."""
    world = make_world()
    number, kept = _disputed(world)
    apply_provider_report(world.core, kept, ReportSource.NOTIFY)

    still = confirm_by_query(world.core, number)  # the gateway still says 7
    assert still.outcome is Outcome.UNCHANGED
    assert stored_order(world, number).state is OrderState.DISPUTED
    assert _payout_refused(world)

    world.provider.set_state(number, OrderState.SUCCESS)
    released = confirm_by_query(world.core, number)
    assert released.outcome is Outcome.APPLIED
    assert stored_order(world, number).state is OrderState.SUCCESS
    assert not _payout_refused(world)
    assert_books_balanced(world)


def test_a_confirming_query_that_fails_changes_nothing_and_says_so():
    """Issue 15 fault 1: no answer from the gateway is no release."""
    world = make_world()
    number, kept = _disputed(world)
    assert apply_provider_report(world.core, kept, ReportSource.NOTIFY).outcome is (
        Outcome.NEEDS_QUERY
    )
    world.provider.query_timeouts = 1
    with pytest.raises(ProviderTimeout):
        confirm_by_query(world.core, number)
    assert stored_order(world, number).state is OrderState.DISPUTED


# --- fault 2: review credit creates money ------------------------------------------------
def _review_of(world, number):
    order = stored_order(world, number)
    found = [r for r in reviews(world, ReviewKind.MISMATCH) if r.order_id == order.id]
    assert len(found) == 1
    return found[0]


@pytest.mark.parametrize("state", [OrderState.PAYING, OrderState.FAILED, OrderState.CREATED])
def test_a_review_of_an_unpaid_report_cannot_be_credited(state):
    """Issue 15 fault 2: "Credit" was offered and accepted for a mismatch whose report said
    the order was not paid (a user's Check status answered 1 with another amount)."""
    world = make_world()
    number = open_order(world, AMOUNT)
    notify(world, number, ReportSource.QUERY, amount=AMOUNT + 1, state=state)
    review = _review_of(world, number)
    before = snapshot(world)

    assert creditable(review, "USD", MERCHANT) is not None  # no Credit button
    with pytest.raises(Refused, match="not paid"):
        resolve_review(world.core, ADMIN, review.id, Resolution.CREDIT)
    assert snapshot(world) == before
    assert world.available(USER) == 0


def test_a_real_amount_of_zero_means_nothing_was_paid():
    """Issue 15 fault 2: realAmount 0 was read as "absent" (`real_amount or amount`), and
    the credit paid the whole order amount."""
    world = make_world()
    number = open_order(world, AMOUNT)
    world.provider.pay(number, real_amount=0)
    notify(world, number)
    review = _review_of(world, number)
    before = snapshot(world)

    assert creditable(review, "USD", MERCHANT) is not None
    with pytest.raises(Refused, match="nothing was paid"):
        resolve_review(world.core, ADMIN, review.id, Resolution.CREDIT)
    assert snapshot(world) == before


def test_a_review_credit_is_what_the_report_says_was_paid():
    """Issue 15 fault 2: the credit is the reported real amount at the stored fee."""
    world = make_world()
    number = open_order(world, AMOUNT)
    world.provider.pay(number, real_amount=40_00)
    notify(world, number)
    review = _review_of(world, number)
    resolve_review(world.core, ADMIN, review.id, Resolution.CREDIT)
    assert world.available(USER) == 34_00  # 40.00 less 15 %
    assert world.balance(ledger.CLEARING) == -40_00
    assert_books_balanced(world)


# --- fault 3: later reports swallowed -------------------------------------------------------
def _credited_through_review(world, real: int = 80_00) -> str:
    number = open_order(world, AMOUNT)
    world.provider.pay(number, real_amount=real)
    notify(world, number)
    resolve_review(world.core, ADMIN, _review_of(world, number).id, Resolution.CREDIT)
    order = stored_order(world, number)
    assert order.state is OrderState.SUCCESS and order.review is ReviewFlag.CREDITED
    return number


@pytest.mark.parametrize("source", [ReportSource.RECONCILE, ReportSource.NOTIFY])
def test_a_refund_of_an_order_credited_through_a_review_is_reversed(source):
    """Issue 15 fault 3: after "credit", a later refund carrying the same amounts the admin
    accepted was treated as a mismatch and only alerted: the money stayed with the user."""
    world = make_world()
    number = _credited_through_review(world)
    assert world.available(USER) == 68_00

    result = report_state(world, number, OrderState.REFUNDED, source)

    assert result.outcome is Outcome.APPLIED
    assert stored_order(world, number).state is OrderState.REFUNDED
    assert f"refund:{number}" in journal_keys(world)
    assert world.available(USER) == 0
    assert_books_balanced(world)


def test_a_dispute_of_an_order_credited_through_a_review_blocks_payouts():
    """Issue 15 fault 3: a later dispute blocks payouts as for any paid order."""
    world = make_world()
    number = _credited_through_review(world)
    assert not _payout_refused(world)  # 10.00 of 68.00 held

    report_state(world, number, OrderState.DISPUTED, ReportSource.RECONCILE)

    assert stored_order(world, number).state is OrderState.DISPUTED
    assert _payout_refused(world)


def test_a_report_with_other_amounts_after_a_credit_still_does_not_match():
    """Issue 15 fault 3: what the admin accepted matches; anything else still does not."""
    world = make_world()
    number = _credited_through_review(world)
    result = report_state_with(world, number, OrderState.REFUNDED, real_amount=50_00)
    assert result.outcome is Outcome.REVIEW
    assert stored_order(world, number).state is OrderState.SUCCESS
    assert f"refund:{number}" not in journal_keys(world)


def report_state_with(world, number, state, **tamper):
    world.provider.set_state(number, state)
    return notify(world, number, ReportSource.RECONCILE, **tamper)


def test_a_genuine_success_after_a_rejected_review_is_a_late_success():
    """Issue 15 fault 3: after "reject" (state 3), a matching success is a late success:
    credit and alert, not a log line."""
    world = make_world()
    number = open_order(world, AMOUNT)
    notify(world, number, amount=AMOUNT + 1, state=OrderState.SUCCESS)
    resolve_review(world.core, ADMIN, _review_of(world, number).id, Resolution.REJECT)
    assert stored_order(world, number).state is OrderState.FAILED

    world.provider.pay(number)
    result = notify(world, number, ReportSource.RECONCILE)

    assert result.outcome is Outcome.APPLIED
    assert result.decision is not None and result.decision.move.credits
    assert stored_order(world, number).state is OrderState.SUCCESS
    assert world.available(USER) == CREDIT
    assert any("late success" in m.text for m in admin_rows(world))
    assert any(r.kind is ReviewKind.ALERT and r.status is ReviewStatus.OPEN for r in reviews(world))


def test_a_new_mismatch_after_a_rejected_review_opens_a_new_review():
    """Issue 15 fault 3: after "reject" the order is back under the rules, so another report
    that does not match is flagged again (a repeat of the rejected report is only logged)."""
    world = make_world()
    number = open_order(world, AMOUNT)
    notify(world, number, amount=AMOUNT + 1, state=OrderState.SUCCESS)
    resolve_review(world.core, ADMIN, _review_of(world, number).id, Resolution.REJECT)

    again = notify(world, number, amount=AMOUNT + 1, state=OrderState.SUCCESS)
    assert again.outcome is Outcome.REVIEW
    assert len(reviews(world, ReviewKind.MISMATCH)) == 1  # the same report: logged only

    other = notify(world, number, real_amount=70_00, state=OrderState.SUCCESS)
    assert other.outcome is Outcome.REVIEW
    assert stored_order(world, number).review is ReviewFlag.PENDING
    assert (
        len([r for r in reviews(world, ReviewKind.MISMATCH) if r.status is ReviewStatus.OPEN]) == 1
    )
    assert world.available(USER) == 0


# --- fault 7: alert floods ------------------------------------------------------------------
def test_replays_on_an_alerting_cell_send_one_alert_per_interval():
    """Issue 15 fault 7: 200 replays of a report on a "no-op + alert" cell queued 200 admin
    messages. One per (order, kind) within ALERT_INTERVAL_MINUTES; the repeats are counted
    in the audit log and named in the next alert."""
    world = make_world()
    number = paid_order(world, AMOUNT)
    world.provider.set_state(number, OrderState.FAILED)  # 2 <- 3: no-op + alert
    before = len(admin_rows(world))

    for _ in range(200):
        notify(world, number)

    new = admin_rows(world)[before:]
    assert len(new) == 1
    suppressed = [a for a in world.state.audit if a.action == "alert_suppressed"]
    assert len(suppressed) == 199
    assert suppressed[-1].details["repeats"] == 199

    world.clock.advance(minutes=world.core.alert_interval_minutes)
    notify(world, number)
    new = admin_rows(world)[before:]
    assert len(new) == 2
    assert "199 more times" in new[1].text
    assert stored_order(world, number).state is OrderState.SUCCESS
    assert user_rows(world)[-1].kind == "order_credited"  # the one credit, nothing else
