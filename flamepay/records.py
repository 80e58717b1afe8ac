"""Small records the use cases write besides orders, journals and payouts."""

from __future__ import annotations

import enum
from collections.abc import Mapping
from datetime import datetime

import attrs


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
