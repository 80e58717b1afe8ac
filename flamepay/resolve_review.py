"""An admin resolves a review item, once.

A mismatch (the match rule failed): "credit" is offered only when the stored report says the
order was paid (state 2), from our merchant number, in the order's currency, for more than
nothing; it writes the order's pay-in journal for the real amount (or the reported amount
when there is none; a real amount of 0 means nothing was paid, never "absent") at the
order's stored fee and sets 2. "reject" sets 3 and moves no money. Either way the order is
then back under the state table: a later refund or dispute applies as for any paid order.
An alert (late success, refund, dispute) is acknowledged; that moves no money.
"""

from __future__ import annotations

import enum

from flamepay import ledger
from flamepay.admin import require_admin
from flamepay.apply_report import credit_order
from flamepay.context import Core
from flamepay.errors import NotFound, Refused
from flamepay.money import require_cents, same_currency
from flamepay.order import OrderState
from flamepay.ports import UnitOfWork
from flamepay.records import Review, ReviewKind, ReviewStatus


class Resolution(enum.Enum):
    CREDIT = "credit"
    REJECT = "reject"
    ACKNOWLEDGE = "acknowledge"


RESOLVED_AS = {
    Resolution.CREDIT: ReviewStatus.CREDITED,
    Resolution.REJECT: ReviewStatus.REJECTED,
    Resolution.ACKNOWLEDGE: ReviewStatus.ACKNOWLEDGED,
}


def creditable(review: Review, order_currency: str, merchant_no: str) -> str | None:
    """None when 'credit' may be offered, else why not."""
    if review.kind is not ReviewKind.MISMATCH:
        return "only a mismatch can be credited"
    if review.reported_state != int(OrderState.SUCCESS):
        return "the report says the order was not paid"
    report = review.report
    currency = report.get("currency")
    if not isinstance(currency, str) or not same_currency(currency, order_currency):
        return "the reported currency differs from the order's"
    merchant = report.get("merchant")
    if merchant is None or (merchant_no and merchant != merchant_no):
        return "the report did not come from our merchant number"
    paid = review.reported_paid
    if paid is None:
        return "the report carries no usable amount"
    if paid <= 0:
        return "the report says nothing was paid"
    return None


def resolve_review(
    core: Core, admin_id: int, review_id: int, resolution: Resolution, note: str = ""
) -> Review:
    require_admin(core, admin_id, f"review_{resolution.value}", f"review:{review_id}")
    note = " ".join(note.split())[:200]

    def body(uow: UnitOfWork) -> Review:
        # Lock order: the order first (as every report does), then the review row.
        first_look = uow.reviews.get_for_update(review_id)
        if first_look is None:
            raise NotFound(f"No review #{review_id}.")
        found = uow.orders.get(first_look.order_id)
        order = uow.orders.get_for_update(found.mch_order_no) if found else None
        review = uow.reviews.get_for_update(review_id)
        if order is None or review is None:  # pragma: no cover - rows are never deleted
            raise NotFound(f"No review #{review_id}.")
        now = core.now()
        paid_before = uow.ledger.entries_of(ledger.payin_key(order.mch_order_no)) is not None
        # Refuses a second resolution, and a resolution that does not fit the review's kind.
        review.resolve(RESOLVED_AS[resolution], admin_id, now, note)
        if resolution is Resolution.CREDIT:
            why_not = creditable(review, order.currency, core.policy.merchant_no)
            if why_not is None and paid_before:
                why_not = "the order was credited already"
            if why_not:
                raise Refused(f"Review #{review_id} cannot be credited: {why_not}.")
            paid = review.reported_paid
            assert paid is not None  # creditable() said so
            require_cents(paid)
            order.settle_review(credited=True, paid_before=False, now=now)
            uow.orders.save(order)
            credit_order(uow, core, order, paid)
        elif resolution is Resolution.REJECT:
            order.settle_review(credited=False, paid_before=paid_before, now=now)
            uow.orders.save(order)
        uow.reviews.save(review)
        core.audit(
            uow,
            f"admin:{admin_id}",
            f"review_{review.status.value}",
            f"review:{review_id}",
            order=order.mch_order_no,
            note=note,
        )
        return review

    return core.audited_transaction(
        body, f"admin:{admin_id}", "review_refused", f"review:{review_id}"
    )
