"""The rules that have one home in the core: review moves, journal keys, credited totals."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from flamepay import ledger
from flamepay.errors import AlreadyResolved, Refused
from flamepay.records import Review, ReviewKind, ReviewStatus

NOW = datetime(2024, 1, 1, tzinfo=UTC)


def _review(kind: ReviewKind) -> Review:
    return Review(7, 1, kind, "why", NOW, key=f"{kind.value}:1")


def test_a_review_is_resolved_once_and_says_how() -> None:
    review = _review(ReviewKind.MISMATCH)
    review.resolve(ReviewStatus.REJECTED, 42, NOW, "dup")
    assert (review.status, review.resolved_by, review.resolved_at, review.note) == (
        ReviewStatus.REJECTED,
        42,
        NOW,
        "dup",
    )
    with pytest.raises(AlreadyResolved, match="already rejected by 42"):
        review.resolve(ReviewStatus.CREDITED, 43, NOW)
    assert review.status is ReviewStatus.REJECTED and review.resolved_by == 42


@pytest.mark.parametrize(
    ("kind", "status"),
    [
        (ReviewKind.MISMATCH, ReviewStatus.ACKNOWLEDGED),
        (ReviewKind.ALERT, ReviewStatus.CREDITED),
        (ReviewKind.ALERT, ReviewStatus.REJECTED),
    ],
)
def test_a_resolution_must_fit_the_review_kind(kind: ReviewKind, status: ReviewStatus) -> None:
    review = _review(kind)
    with pytest.raises(Refused):
        review.resolve(status, 42, NOW)
    assert review.status is ReviewStatus.OPEN and review.resolved_by is None


def test_order_journal_keys_and_what_counts_as_credited() -> None:
    payin = ledger.payin(" ab", 1, 5, 10000, 1500)
    refund = ledger.refund(" ab", 1, 5, payin.entries)
    assert (payin.key, refund.key) == (ledger.payin_key(" ab"), ledger.refund_key(" ab"))
    assert ledger.payin_key("AB") != ledger.payin_key("ab")
    assert payin.credited() == {ledger.available(5): 8500}
    assert refund.credited() == {ledger.available(5): -8500}
    assert ledger.payout_hold(3, 5, 100).credited() == {}
