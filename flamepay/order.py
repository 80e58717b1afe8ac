"""The recharge order and its state table: the one home of what every reported state does."""

from __future__ import annotations

import enum
from datetime import datetime

import attrs

from flamepay.money import fee_for, require_cents, split_payment


class OrderState(enum.IntEnum):
    CREATED = 0
    PAYING = 1
    SUCCESS = 2
    FAILED = 3
    CANCELLED = 4
    REFUNDED = 5
    CLOSED = 6
    DISPUTED = 7


# The state sets, each written once: adapters and use cases name these, never the members.
TERMINAL_UNPAID = frozenset({OrderState.FAILED, OrderState.CANCELLED, OrderState.CLOSED})
OPEN_STATES = frozenset({OrderState.CREATED, OrderState.PAYING})
# States in which the order's pay-in journal exists.
PAID_STATES = frozenset({OrderState.SUCCESS, OrderState.REFUNDED, OrderState.DISPUTED})

STATE_LABELS = {
    OrderState.CREATED: "created",
    OrderState.PAYING: "waiting for payment",
    OrderState.SUCCESS: "paid",
    OrderState.FAILED: "failed",
    OrderState.CANCELLED: "cancelled",
    OrderState.REFUNDED: "refunded",
    OrderState.CLOSED: "closed",
    OrderState.DISPUTED: "disputed",
}


class Move(enum.Enum):
    """What a reported state does to an order (the cells of the design's table)."""

    MOVE = "move"  # state changes, no money
    CREDIT = "credit"  # payin journal, state 2
    LATE_SUCCESS = "late_success"  # credit from 3/4/6, plus an alert
    REVERSE = "reverse"  # refund journal (negation of the payin), state 5
    DISPUTE = "dispute"  # state 7, no money, payouts blocked
    RELEASE = "release"  # 7 -> 2, no money, payouts unblocked
    REVERSE_RELEASE = "reverse_release"  # 7 -> 5: refund journal, dispute released
    NOOP = "noop"
    NOOP_ALERT = "noop_alert"  # nothing changes, the admins are told

    @property
    def credits(self) -> bool:
        return self in (Move.CREDIT, Move.LATE_SUCCESS)

    @property
    def reverses(self) -> bool:
        return self in (Move.REVERSE, Move.REVERSE_RELEASE)

    @property
    def alerts(self) -> bool:
        return self in (
            Move.LATE_SUCCESS,
            Move.REVERSE,
            Move.REVERSE_RELEASE,
            Move.DISPUTE,
            Move.RELEASE,
            Move.NOOP_ALERT,
        )

    @property
    def changes_state(self) -> bool:
        return self not in (Move.NOOP, Move.NOOP_ALERT)

    @property
    def lifts_block(self) -> bool:
        """Releases a dispute, and with it the block on the user's payouts: taken only on
        the gateway's own answer to a query, never on a notify (which may be a replay)."""
        return self in (Move.RELEASE, Move.REVERSE_RELEASE)


S = OrderState


def _row(*cells: tuple[frozenset[OrderState] | OrderState, Move]) -> dict[OrderState, Move]:
    row: dict[OrderState, Move] = {}
    for reported, move in cells:
        for state in reported if isinstance(reported, frozenset) else (reported,):
            row[state] = move
    return row


# Rows: the state the order is in; columns: the state reported. Exactly the design's table.
STATE_TABLE: dict[OrderState, dict[OrderState, Move]] = {
    S.CREATED: _row(
        (S.CREATED, Move.NOOP),
        (S.PAYING, Move.MOVE),
        (S.SUCCESS, Move.CREDIT),
        (TERMINAL_UNPAID, Move.MOVE),
        (S.REFUNDED, Move.NOOP_ALERT),
        (S.DISPUTED, Move.NOOP_ALERT),
    ),
    S.PAYING: _row(
        (OPEN_STATES, Move.NOOP),
        (S.SUCCESS, Move.CREDIT),
        (TERMINAL_UNPAID, Move.MOVE),
        (S.REFUNDED, Move.NOOP_ALERT),
        (S.DISPUTED, Move.NOOP_ALERT),
    ),
    S.SUCCESS: _row(
        (OPEN_STATES, Move.NOOP),
        (S.SUCCESS, Move.NOOP),
        (TERMINAL_UNPAID, Move.NOOP_ALERT),
        (S.REFUNDED, Move.REVERSE),
        (S.DISPUTED, Move.DISPUTE),
    ),
    S.REFUNDED: _row(
        (OPEN_STATES, Move.NOOP),
        (S.SUCCESS, Move.NOOP_ALERT),
        (TERMINAL_UNPAID, Move.NOOP),
        (S.REFUNDED, Move.NOOP),
        (S.DISPUTED, Move.NOOP),
    ),
    S.DISPUTED: _row(
        (OPEN_STATES, Move.NOOP),
        (S.SUCCESS, Move.RELEASE),
        (TERMINAL_UNPAID, Move.NOOP_ALERT),
        (S.REFUNDED, Move.REVERSE_RELEASE),
        (S.DISPUTED, Move.NOOP),
    ),
}
for _closed in TERMINAL_UNPAID:
    STATE_TABLE[_closed] = _row(
        (OPEN_STATES, Move.NOOP),
        (S.SUCCESS, Move.LATE_SUCCESS),
        (TERMINAL_UNPAID, Move.NOOP),
        (S.REFUNDED, Move.NOOP_ALERT),
        (S.DISPUTED, Move.NOOP_ALERT),
    )


@attrs.frozen
class Decision:
    """What applying one reported state decided; returned so callers and the audit can say it."""

    move: Move
    from_state: OrderState
    reported: OrderState
    to_state: OrderState


class ReviewFlag(enum.Enum):
    NONE = "none"
    PENDING = "pending"  # the match rule failed: no automatic state or money change
    CREDITED = "credited"
    REJECTED = "rejected"


@attrs.define(eq=False)
class Order:
    """A recharge order. Identity is `id`; `mch_order_no` is the number the provider sees."""

    id: int
    mch_order_no: str
    user_id: int
    package_id: int
    way_code: str
    amount: int = attrs.field(validator=attrs.validators.instance_of(int))
    currency: str
    fee_bp: int  # the fee in force when the order was opened, kept for its whole life
    created_at: datetime
    expires_at: datetime
    state: OrderState = OrderState.CREATED
    provider_order_no: str | None = None
    cashier_url: str | None = None
    review: ReviewFlag = ReviewFlag.NONE
    updated_at: datetime | None = None
    reconciled_at: datetime | None = None  # written only by claim_reconcile

    def __attrs_post_init__(self) -> None:
        require_cents(self.amount)
        if self.amount <= 0:
            raise ValueError("an order amount must be above zero")

    @property
    def under_review(self) -> bool:
        return self.review is ReviewFlag.PENDING

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_STATES

    @property
    def is_paid(self) -> bool:
        """In a state whose pay-in journal exists (paid, refunded or disputed)."""
        return self.state in PAID_STATES

    @property
    def fee(self) -> int:
        return fee_for(self.amount, self.fee_bp)

    @property
    def credit(self) -> int:
        return self.amount - self.fee

    def split(self, paid: int) -> tuple[int, int]:
        """(fee, credit) for `paid` cents at this order's stored fee."""
        return split_payment(paid, self.fee_bp)

    def decide(self, reported: OrderState) -> Decision:
        """Look up the table; change nothing."""
        reported = OrderState(reported)
        move = STATE_TABLE[self.state][reported]
        to_state = _target(self.state, reported, move)
        return Decision(move=move, from_state=self.state, reported=reported, to_state=to_state)

    def apply(self, decision: Decision, now: datetime) -> None:
        """Take the state the decision names (money is the use case's job, in the same unit)."""
        if decision.from_state is not self.state:
            raise ValueError("a decision must be applied to the state it was made for")
        self.state = decision.to_state
        self.updated_at = now

    def flag_for_review(self, now: datetime) -> bool:
        """Flag; True when this call flagged it (so the admins are alerted once). An order
        whose earlier review was resolved is back under the rules and may be flagged again."""
        if self.review is ReviewFlag.PENDING:
            return False
        self.review = ReviewFlag.PENDING
        self.updated_at = now
        return True

    def settle_review(self, credited: bool, paid_before: bool, now: datetime) -> None:
        """An admin resolved the review: 'credit' sets 2; 'reject' sets 3 and moves no money
        (an order that was already paid before it was flagged keeps its state)."""
        if self.review is not ReviewFlag.PENDING:
            raise ValueError("only an order under review can be settled")
        self.review = ReviewFlag.CREDITED if credited else ReviewFlag.REJECTED
        if credited:
            self.state = OrderState.SUCCESS
        elif not paid_before:
            self.state = OrderState.FAILED
        self.updated_at = now

    def fill_provider_details(self, provider_order_no: str | None, cashier_url: str | None) -> None:
        """Fill only what is still empty: a fast notify may have landed first."""
        if provider_order_no and not self.provider_order_no:
            self.provider_order_no = provider_order_no
        if cashier_url and not self.cashier_url:
            self.cashier_url = cashier_url


def _target(current: OrderState, reported: OrderState, move: Move) -> OrderState:
    if move in (Move.NOOP, Move.NOOP_ALERT):
        return current
    if move in (Move.CREDIT, Move.LATE_SUCCESS, Move.RELEASE):
        return OrderState.SUCCESS
    if move.reverses:
        return OrderState.REFUNDED
    if move is Move.DISPUTE:
        return OrderState.DISPUTED
    return reported  # Move.MOVE
