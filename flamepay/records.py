"""Small records the use cases write besides orders, journals and payouts."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime

import attrs

from flamepay.errors import AlreadyResolved, Refused


class Audience(enum.Enum):
    USER = "user"
    ADMINS = "admins"


@attrs.define(eq=False)
class OutboxMessage:
    """A notification written in the use case's transaction and sent after commit.

    Delivery is at least once, so a message informs and never triggers anything.
    """

    audience: Audience
    kind: str  # e.g. 'order_credited', 'payout_requested', 'alert_late_success'
    text: str
    created_at: datetime
    user_id: int | None = None  # the recipient when audience is USER
    ref: str = ""  # what it is about (order number, payout id) for editing admin copies
    id: int | None = None
    sent_at: datetime | None = None
    attempts: int = 0


@attrs.frozen
class AuditEntry:
    actor: str  # 'user:<id>', 'admin:<id>', 'provider', 'system'
    action: str
    target: str
    details: Mapping[str, object]
    at: datetime


@attrs.frozen
class CallbackEvent:
    mch_order_no: str | None
    outcome: str
    remote: str
    fields: Mapping[str, str]  # never carries a key: the sign is a digest, not a secret
    at: datetime


class ReviewKind(enum.Enum):
    MISMATCH = "mismatch"  # the match rule failed: an admin credits or rejects
    ALERT = "alert"  # late success, refund after payout, dispute: an admin acknowledges


class ReviewStatus(enum.Enum):
    OPEN = "open"
    CREDITED = "credited"
    REJECTED = "rejected"
    ACKNOWLEDGED = "acknowledged"


@attrs.define(eq=False)
class Review:
    id: int | None
    order_id: int
    kind: ReviewKind
    reason: str
    created_at: datetime
    key: str  # unique: one mismatch review per order, one alert per order and event
    status: ReviewStatus = ReviewStatus.OPEN
    resolved_by: int | None = None
    resolved_at: datetime | None = None
    note: str = ""
    report: Mapping[str, object] = attrs.field(factory=dict)

    @property
    def reported_state(self) -> object:
        return self.report.get("state")

    @property
    def reported_paid(self) -> int | None:
        """What the stored report says was paid: its real amount when it carries one (0 means
        nothing was paid, never "absent"), else its amount; None when it names no amount."""
        for name in ("real_amount", "amount"):
            value = self.report.get(name)
            if value is None:
                continue
            if isinstance(value, bool) or not isinstance(value, int):
                return None
            return value
        return None

    def resolve(self, status: ReviewStatus, admin_id: int, now: datetime, note: str = "") -> None:
        """An admin resolves it, once: a mismatch is credited or rejected, an alert is
        acknowledged. A second resolution is refused, saying how the first one went."""
        if self.status is not ReviewStatus.OPEN:
            raise AlreadyResolved(
                f"Review #{self.id} was already {self.status.value} by {self.resolved_by}."
            )
        if status is ReviewStatus.OPEN:
            raise ValueError("a review is resolved to a final status")
        if self.kind is ReviewKind.MISMATCH and status is ReviewStatus.ACKNOWLEDGED:
            raise Refused("A mismatch is resolved with credit or reject, not acknowledged.")
        if self.kind is ReviewKind.ALERT and status is not ReviewStatus.ACKNOWLEDGED:
            raise Refused("An alert is acknowledged; it moves no money.")
        self.status = status
        self.resolved_by = admin_id
        self.resolved_at = now
        self.note = note

    def same_report(self, fields: Mapping[str, object]) -> bool:
        """Whether `fields` say what this review's report said (its source aside)."""
        return all(self.report.get(k) == fields.get(k) for k in REPORT_FACTS)


# What a stored report says about the payment; its source (notify, query) is not a fact.
REPORT_FACTS = ("state", "merchant", "currency", "amount", "real_amount")


@attrs.frozen
class AlertClaim:
    """AlertLog.claim's answer. `sent`: this caller sends the alert (one per key and
    interval, across processes). `repeats`: when sent, how many were held back since the
    last one went out; when held back, how many have been held back so far, this one too."""

    sent: bool
    repeats: int = 0
