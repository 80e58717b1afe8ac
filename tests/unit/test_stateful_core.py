"""A Hypothesis state machine over the payment core's use cases, checked against a model.

The model here is written from docs/design.md ("Money and fees", "Order states and what
each move does", "Ledger: double entry") and shares no code with flamepay: its own fee
arithmetic, its own copy of the state table, its own refusal rules, and the journals it
expects (with the balances they imply). The machine drives the real use cases on the
in-memory adapters and the fake gateway; after every step the implementation's books are
compared with their own entries and with the model.

Besides orders and payouts it drives admin adjustments (credit, a debit refused below zero)
and review resolution (credit, reject, a second resolution refused), and its model holds the
rules of issue 15: a notify never lifts a dispute (only the gateway's answer to a query,
which the notify path then asks for, does); a review is credited only for a report that says
it was paid, for what it says was paid (a real amount of 0 is nothing, not "absent"); and a
resolved order is back under the state table (a later refund, dispute or late success
applies; the report an admin already resolved is only logged, a new mismatch is flagged).

The run counts how often each rule fired and how often each hard path really happened (read
from what the use cases returned), shows the counts in the terminal summary
(tests/conftest.py) and fails when a hard path was reached fewer than its floor
times: a machine that never reaches a refund says nothing about refunds.

FLAMEPAY_STATEFUL_EXAMPLES=5000 raises the number of examples for a long run (it never
lowers it below the normal 200).
"""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import pytest
from hypothesis import HealthCheck, Phase, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from adapters.memory import MemoryOrders
from flamepay import apply_report, ledger, money
from flamepay.adjust_balance import adjust_balance
from flamepay.apply_report import Outcome, ReportResult, apply_provider_report
from flamepay.approve_payout import approve_payout
from flamepay.cancel_order import cancel_order
from flamepay.closing import Closed
from flamepay.confirm_by_query import confirm_by_query
from flamepay.errors import AlreadyResolved, NotFound, Refused, TransactionConflict
from flamepay.expire_orders import expire_due_orders
from flamepay.open_order import open_recharge_order
from flamepay.order import STATE_TABLE, Move, Order, OrderState, ReviewFlag
from flamepay.payout import Network, PayoutStatus
from flamepay.records import Review, ReviewKind
from flamepay.reject_payout import reject_payout
from flamepay.report import ProviderReport, ReportSource
from flamepay.request_payout import request_payout
from flamepay.resolve_review import Resolution, resolve_review
from flamepay.see_user import see_user
from tests.helpers.support import MERCHANT, make_world

# --- the world the machine plays in ---------------------------------------------------------
USERS = (7, 8, 9)
ADMIN = 1
# Odd amounts and fees on purpose: 9 at 50% is a half cent (rounds up to 5), 333 at 15% is
# 49.95 (50), 12345 at 33.33% is 4114.5885 (4115).
PACKAGE_AMOUNTS = (9, 333, 1_001, 10_000, 12_345, 50_000)
FEE_BP_CHOICES = (0, 1, 1_250, 1_500, 3_333, 5_000, 9_999, 10_000)
START_FEE_BP = 1_500
NETWORK_FEE = {Network.TRC20: 150, Network.BEP20: 1_200}
NETWORK_FEE_CHOICES = (0, 150, 999, 1_200, 2_500)
PAYOUT_MIN = 10_00
PAYOUT_MAX = 1_000_00
EXPIRE_MINUTES = 30
EXPIRY_BATCH = 50
TRANSACTION_ATTEMPTS = 5  # run_in_transaction's bound: this many conflicts and it gives up
OUR_CURRENCY = "usd"  # compared without case
AMOUNT_SOURCES = (ReportSource.NOTIFY, ReportSource.RECONCILE, ReportSource.QUERY)

# --- run settings and the hard paths the run must reach --------------------------------------
NORMAL_EXAMPLES = 200
EXAMPLES = max(NORMAL_EXAMPLES, int(os.environ.get("FLAMEPAY_STATEFUL_EXAMPLES") or 0))
HARD_PATH_MINIMUM = 20
LATE_SUCCESS = "path: late success"
REFUND = "path: refund reversal"
DISPUTE = "path: dispute"
MISMATCH = "path: mismatch, order flagged for review"
DOUBLE_APPROVE = "path: double approve refused"
FEE_CHANGE = "path: credit at a fee changed since opening"
RELEASE_WAITS = "path: a notify would release a dispute, the gateway is asked"
REVIEW_CREDITED = "path: review credited"
REVIEW_REJECTED = "path: review rejected"
CREDIT_REFUSED = "path: review credit refused, the report is not creditable"
SECOND_RESOLUTION = "path: second resolution refused"
ADJUST_CREDIT = "path: adjustment credit"
ADJUST_DEBIT = "path: adjustment debit"
ADJUST_BELOW_ZERO = "path: adjustment debit refused below zero"
# Each hard path and the times a run must reach it. The review and adjustment paths take two
# steps of one example (a review opened, then resolved) and were reached 16 to 450 times in a
# run of 200 examples (the fewest of each: 16 to 51, over 30 runs): their floor is 10, so a
# short run does not fail by chance, while a machine that stopped reaching them still does.
LATER_PATH_MINIMUM = 10
HARD_PATHS = {
    **dict.fromkeys(
        (LATE_SUCCESS, REFUND, DISPUTE, MISMATCH, DOUBLE_APPROVE, FEE_CHANGE), HARD_PATH_MINIMUM
    ),
    **dict.fromkeys(
        (
            RELEASE_WAITS,
            REVIEW_CREDITED,
            REVIEW_REJECTED,
            CREDIT_REFUSED,
            SECOND_RESOLUTION,
            ADJUST_CREDIT,
            ADJUST_DEBIT,
            ADJUST_BELOW_ZERO,
        ),
        LATER_PATH_MINIMUM,
    ),
}

RUN_SETTINGS = settings(
    max_examples=EXAMPLES,
    stateful_step_count=50,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)

# --- the model: accounts, fee, state table (from the design, not from flamepay) --------------
CLEARING = "provider:clearing"
FEES = "platform:fees"
SENT = "payouts:sent"
ADJUSTMENTS = "platform:adjustments"
OPEN = (0, 1)
CLOSING = (3, 4, 6)
PAID = (2, 5, 7)  # states an order reaches only through a credit
ALL_STATES = tuple(range(8))


def available(user: int) -> str:
    return f"user:{user}:available"


def held(user: int) -> str:
    return f"user:{user}:held"


def model_fee(amount: int, bp: int) -> int:
    """round_half_up(amount * bp / 10000), in integers."""
    whole, rest = divmod(amount * bp, 10_000)
    return whole + (1 if rest * 2 >= 10_000 else 0)


def model_cell(current: int, reported: int) -> tuple[str, int]:
    """(move, next state) for `reported` arriving at an order in `current`: the design's table."""
    if current in OPEN:
        if reported in OPEN:
            return ("move", 1) if (current, reported) == (0, 1) else ("noop", current)
        if reported == 2:
            return "credit", 2
        if reported in CLOSING:
            return "move", reported
        return "noop_alert", current  # 5, 7
    if current == 2:
        if reported == 5:
            return "reverse", 5
        if reported == 7:
            return "dispute", 7
        if reported in CLOSING:
            return "noop_alert", 2
        return "noop", 2
    if current in CLOSING:
        if reported == 2:
            return "late_success", 2
        if reported in (5, 7):
            return "noop_alert", current
        return "noop", current
    if current == 5:
        return ("noop_alert", 5) if reported == 2 else ("noop", 5)
    assert current == 7
    if reported == 2:
        return "release", 2
    if reported == 5:
        return "reverse_release", 5
    if reported in CLOSING:
        return "noop_alert", 7
    return "noop", 7


@dataclass
class ModelOrder:
    number: str
    seq: int
    user: int
    amount: int
    fee_bp: int  # the model's fee when it was opened
    opened_at: int  # model minutes
    at_gateway: bool  # the gateway stored it
    state: int
    review: bool = False  # a mismatch review is pending
    # After a review credited: (the reported amount, what it said was paid); later reports
    # of that payment (a refund, a dispute) match with these.
    accepted: tuple[int | None, int] | None = None
    resolved: list[Facts] = field(default_factory=list)  # reports an admin resolved
    claimed_at: int | None = None  # model minute expiry last claimed it


# What a stored report says: (state, merchant, currency, amount, real amount).
Facts = tuple[int, "str | None", "str | None", "int | None", "int | None"]


@dataclass
class ModelReview:
    id: int
    number: str
    facts: Facts
    status: str = "open"  # open | credited | rejected


@dataclass
class ModelPayout:
    id: int
    user: int
    amount: int
    network_fee: int
    status: str = "pending"


@dataclass(frozen=True)
class Expect:
    """What apply_provider_report should answer."""

    outcome: str  # applied | unchanged | review | under_review | needs_query
    move: str | None
    state: int
    flag: bool = False  # the order is flagged for review


@dataclass(frozen=True)
class Carried:
    """What a report carries besides the state (reports matched by number carry nothing)."""

    amount: int | None
    real_amount: int | None
    currency: str | None
    merchant: str | None

    @classmethod
    def of(cls, report: ProviderReport) -> Carried:
        return cls(report.amount, report.real_amount, report.currency, report.merchant)


CREATE_MODES = {
    # name: (create_timeout_after_storing, create_rejection, create_reports_success,
    #        query_timeouts, expected state, stored at the gateway)
    "ok": (None, None, False, 0, 1, True),
    "create says 2": (None, None, True, 0, 1, True),
    "timeout after storing": (True, None, False, 0, 1, True),
    "timeout after storing, query times out": (True, None, False, 1, 0, True),
    "timeout before storing": (False, None, False, 0, 3, False),
    "timeout before storing, query times out": (False, None, False, 1, 0, False),
    "rejected": (None, (1001, "channel closed"), False, 0, 3, False),
    "rate guard 2008": (None, (2008, "too many requests"), False, 0, 3, False),
}
PAYOUT_AMOUNTS = (
    *("all", "all", "half", "one over", "random", "minimum", "below minimum"),
    *("maximum", "above maximum", "network fee", "network fee + 1"),
)
MISMATCH_TAMPERS = ("wrong amount", "wrong real amount", "real amount zero", "wrong currency")
BIG_PACKAGES = tuple(i for i, amount in enumerate(PACKAGE_AMOUNTS) if amount >= 10_000)
CREATE_MODE_CHOICES = ("ok",) * 6 + tuple(CREATE_MODES)
TAMPERS = ("none",) * 4 + (
    "currency upper case",
    "real amount present",
    "wrong amount",
    "wrong real amount",
    "real amount zero",
    "wrong currency",
)


def _candidates(states: tuple[int, ...]) -> Callable[[CoreMachine], bool]:
    return lambda self: bool(self.orders_in(states))


class CoreMachine(RuleBasedStateMachine):
    def __init__(self, counts: Counter | None = None) -> None:
        super().__init__()
        self.counts: Counter = Counter() if counts is None else counts
        self.world = make_world(
            fee_bp=START_FEE_BP,
            payout_fees=dict(NETWORK_FEE),
            payout_min=PAYOUT_MIN,
            payout_max=PAYOUT_MAX,
            order_expire_minutes=EXPIRE_MINUTES,
        )
        self.packages = [self.world.add_package(amount) for amount in PACKAGE_AMOUNTS]
        self.fee_bp = START_FEE_BP
        self.network_fees = dict(NETWORK_FEE)
        self.minutes = 0
        self.orders: dict[str, ModelOrder] = {}
        self.payouts: dict[int, ModelPayout] = {}
        self.journals: dict[str, dict[str, int]] = {}  # key -> account -> amount (no zeros)
        self.balances: Counter = Counter()
        self.txids: list[str] = []
        self.inbox: list[ProviderReport] = []  # built, not yet delivered (late, reordered)
        # What the invariant saw last time.
        self.seen_journals: set[str] = set()
        self.last_available = dict.fromkeys(USERS, 0)
        self.flagged: dict[str, tuple[object, ...]] = {}
        self.resolved: dict[int, tuple[object, ...]] = {}
        self.reviews: dict[int, ModelReview] = {}
        for user in USERS:  # adjustments name users who have talked to the bot
            see_user(self.world.core, user, f"user{user}")

    # --- model bookkeeping ---------------------------------------------------------------------
    def fired(self, name: str) -> None:
        self.counts[f"rule: {name}"] += 1

    def post(self, key: str, legs: dict[str, int]) -> None:
        legs = {account: amount for account, amount in legs.items() if amount}
        assert key not in self.journals, f"model: {key} posted twice"
        assert sum(legs.values()) == 0, f"model: {key} does not balance"
        self.journals[key] = legs
        for account, amount in legs.items():
            self.balances[account] += amount

    def orders_in(self, states: tuple[int, ...], *, review: bool = False) -> list[str]:
        """Numbers of orders in `states` that the gateway knows, flagged or not as asked."""
        return sorted(
            mo.number
            for mo in self.orders.values()
            if mo.state in states and mo.at_gateway and mo.review is review
        )

    def at_gateway(self) -> list[str]:
        return sorted(mo.number for mo in self.orders.values() if mo.at_gateway)

    def disputed(self, user: int) -> bool:
        return any(mo.user == user and mo.state == 7 for mo in self.orders.values())

    def blocked(self, user: int) -> str | None:
        if self.disputed(user):
            return "a disputed order"
        if self.balances[available(user)] < 0:
            return "negative available"
        return None

    def expect(
        self,
        mo: ModelOrder,
        reported: int,
        carried: Carried | None,
        source: ReportSource | None = None,
    ) -> Expect:
        """Predict apply_provider_report; `carried` is None for a report matched by number."""
        if mo.review:
            return Expect("under_review", None, mo.state)
        if carried is not None and not self.matches(mo, carried):
            # Flagged for review; an order already paid (2, 5, 7) is not flagged, since an
            # admin's "credit" or "reject" makes no sense for it: the admins get an alert. A
            # report an admin already resolved is only logged.
            facts = (
                reported,
                carried.merchant,
                carried.currency,
                carried.amount,
                carried.real_amount,
            )
            unpaid = mo.state not in PAID
            return Expect("review", None, mo.state, flag=unpaid and facts not in mo.resolved)
        move, state = model_cell(mo.state, reported)
        if carried is None and move not in ("move", "noop", "noop_alert"):
            # A create response or close confirmation never moves money or a dispute.
            return Expect(
                "needs_query" if move in ("credit", "late_success") else "unchanged", move, mo.state
            )
        if source is ReportSource.NOTIFY and move in ("release", "reverse_release"):
            # A notify may be a replay: it never lifts a dispute; the gateway is asked.
            return Expect("needs_query", move, mo.state)
        return Expect("applied" if state != mo.state else "unchanged", move, state)

    def matches(self, mo: ModelOrder, carried: Carried) -> bool:
        amounts, paid = {mo.amount}, mo.amount
        if mo.accepted is not None:
            if mo.accepted[0] is not None:
                amounts.add(mo.accepted[0])
            paid = mo.accepted[1]
        return (
            carried.amount in amounts
            and carried.real_amount in (None, paid)
            and carried.currency is not None
            and carried.currency.lower() == OUR_CURRENCY
            and carried.merchant == MERCHANT
        )

    def settle(self, mo: ModelOrder, expected: Expect, result: ReportResult | None) -> None:
        """Check one ReportResult against the prediction, then move the model."""
        assert result is not None, f"{mo.number}: no report applied, expected {expected}"
        seen = (
            result.outcome.value,
            result.decision.move.value if result.decision else None,
            None if result.state is None else int(result.state),
        )
        assert seen == (expected.outcome, expected.move, expected.state), (
            f"{mo.number} in state {mo.state} (review={mo.review}): got {seen}, "
            f"expected {expected}; reason {result.reason!r}"
        )
        self.advance(mo, expected)
        self.observe(mo, result)
        if expected.flag:
            self.note_review(mo)

    def note_review(self, mo: ModelOrder) -> None:
        """The review the flag opened: its id is the implementation's, its facts the model's."""
        order_id = next(
            o.id for o in self.world.state.orders.values() if o.mch_order_no == mo.number
        )
        new = [
            r
            for r in self.world.state.reviews.values()
            if r.order_id == order_id and r.kind is ReviewKind.MISMATCH and r.id not in self.reviews
        ]
        assert len(new) == 1, f"{mo.number}: flagged, {len(new)} new reviews"
        report = new[0].report
        facts = (
            report["state"],
            report["merchant"],
            report["currency"],
            report["amount"],
            report["real_amount"],
        )
        self.reviews[new[0].id] = ModelReview(new[0].id, mo.number, facts)  # type: ignore[arg-type]

    def advance(self, mo: ModelOrder, expected: Expect) -> None:
        if expected.flag:
            mo.review = True
        if expected.outcome == "applied":  # every move that moves money changes the state
            if expected.move in ("credit", "late_success"):
                fee = model_fee(mo.amount, mo.fee_bp)
                self.post(
                    f"payin:{mo.number}",
                    {CLEARING: -mo.amount, available(mo.user): mo.amount - fee, FEES: fee},
                )
            elif expected.move in ("reverse", "reverse_release"):
                payin = self.journals[f"payin:{mo.number}"]
                self.post(f"refund:{mo.number}", {a: -v for a, v in payin.items()})
        mo.state = expected.state

    def observe(self, mo: ModelOrder, result: ReportResult) -> None:
        """Count the paths a result shows really happened (after the model moved)."""
        if result.outcome is Outcome.REVIEW:
            if mo.review:
                self.counts[MISMATCH] += 1
            elif mo.state in PAID:
                self.counts["path: mismatch on a paid order, alert"] += 1
            else:
                self.counts["path: mismatch resolved before, only logged"] += 1
        elif result.outcome is Outcome.UNDER_REVIEW:
            self.counts["path: report on an order under review, only logged"] += 1
        if result.outcome is not Outcome.APPLIED or result.decision is None:
            return
        move = result.decision.move
        if move is Move.LATE_SUCCESS:
            self.counts[LATE_SUCCESS] += 1
        elif move in (Move.REVERSE, Move.REVERSE_RELEASE):
            self.counts[REFUND] += 1
            if move is Move.REVERSE_RELEASE:
                self.counts["path: refund of a disputed order"] += 1
            if self.balances[available(mo.user)] < 0:
                self.counts["path: refund taking available below zero"] += 1
        elif move is Move.DISPUTE:
            self.counts[DISPUTE] += 1
        elif move is Move.RELEASE:
            self.counts["path: dispute released"] += 1
        if move in (Move.CREDIT, Move.LATE_SUCCESS) and mo.fee_bp != self.fee_bp:
            self.counts[FEE_CHANGE] += 1

    def deliver(self, data: st.DataObject, report: ProviderReport, source: ReportSource) -> None:
        """Apply a report, sometimes through database conflicts (the body is re-run whole)."""
        mo = self.orders[report.mch_order_no]
        expected = self.expect(mo, int(report.state), Carried.of(report), source)
        conflicts = self.conflicts(data, up_to=TRANSACTION_ATTEMPTS)
        try:
            result = apply_provider_report(self.world.core, report, source)
        except TransactionConflict:
            assert conflicts >= TRANSACTION_ATTEMPTS, f"{mo.number}: gave up after {conflicts}"
            self.counts["path: report given up after conflicts, nothing moved"] += 1
            return
        finally:
            self.world.uow.conflicts_to_inject = 0
        assert conflicts < TRANSACTION_ATTEMPTS, f"{mo.number}: {conflicts} conflicts, applied"
        self.settle(mo, expected, result)
        if expected.outcome == "needs_query" and source is ReportSource.NOTIFY:
            # What the notify endpoint does next: ask the gateway, and apply its answer.
            self.counts[RELEASE_WAITS] += 1
            if data.draw(st.booleans(), label="the gateway answers"):
                answer = self.world.provider.report(mo.number)
                then = self.expect(mo, int(answer.state), Carried.of(answer), ReportSource.QUERY)
                self.settle(mo, then, confirm_by_query(self.world.core, mo.number))

    def conflicts(self, data: st.DataObject, up_to: int) -> int:
        """Make the next `n` commits fail like a deadlock; returns n."""
        n = data.draw(st.sampled_from([0] * 12 + list(range(1, up_to + 1))), label="conflicts")
        self.world.uow.conflicts_to_inject = n
        if n:
            self.counts["path: transaction re-run after a conflict"] += 1
        return n

    def build_report(
        self, data: st.DataObject, mo: ModelOrder, state: int | None
    ) -> ProviderReport:
        tamper = data.draw(st.sampled_from(TAMPERS), label="tamper")
        return self.tampered(data, mo, state, tamper)

    def tampered(
        self, data: st.DataObject, mo: ModelOrder, state: int | None, tamper: str
    ) -> ProviderReport:
        changes: dict[str, object] = {}
        if tamper == "currency upper case":
            changes["currency"] = "USD"  # the same currency: matches
        elif tamper == "real amount present":
            changes["real_amount"] = mo.amount
        elif tamper == "wrong amount":
            changes["amount"] = mo.amount + data.draw(st.sampled_from([-1, 1, 100, mo.amount]))
        elif tamper == "wrong real amount":
            changes["real_amount"] = mo.amount + data.draw(st.sampled_from([-1, 1, 50]))
        elif tamper == "real amount zero":
            changes["real_amount"] = 0  # nothing was paid
        elif tamper == "wrong currency":
            changes["currency"] = data.draw(st.sampled_from(["EUR", "usdt", "CNY"]))
        return self.world.provider.report(
            mo.number, state=None if state is None else OrderState(state), **changes
        )

    def gateway_says(self, data: st.DataObject, number: str, state: int) -> None:
        """The gateway moves the order, and tells us (once, twice, or under other sources)."""
        mo = self.orders[number]
        real = mo.amount if state == 2 and data.draw(st.booleans(), label="real amount") else None
        self.world.provider.set_state(number, OrderState(state), real)
        report = self.world.provider.report(number)
        self.deliver(data, report, data.draw(st.sampled_from(AMOUNT_SOURCES), label="source"))
        if data.draw(st.integers(0, 3), label="duplicate") == 0:
            self.counts["path: duplicate delivery"] += 1
            self.deliver(data, report, data.draw(st.sampled_from(AMOUNT_SOURCES), label="source"))

    def expect_close(
        self, mo: ModelOrder, close_fails: bool, query_fails: bool
    ) -> tuple[str, Expect | None]:
        """Predict the closing path (cancel, expiry): close at the gateway, else query."""
        gateway = self.world.provider.orders.get(mo.number)
        assert (gateway is not None) == mo.at_gateway, f"{mo.number}: gateway knows it?"
        if not close_fails and gateway is not None and int(gateway.state) in OPEN:
            return "closed", self.expect(mo, 6, None)
        if query_fails:
            return "unknown", None
        if gateway is None:
            return "never_placed", self.expect(mo, 3, None)
        carried = Carried(gateway.amount, gateway.real_amount, gateway.currency, MERCHANT)
        return "provider_said", self.expect(mo, int(gateway.state), carried)

    def reset_faults(self) -> None:
        provider = self.world.provider
        provider.create_timeout_after_storing = None
        provider.create_rejection = None
        provider.create_reports_success = False
        provider.query_timeouts = 0
        provider.close_failures = 0
        provider.close_timeouts = 0

    # --- orders ---------------------------------------------------------------------------
    @rule(
        user=st.sampled_from(USERS),
        package=st.integers(0, len(PACKAGE_AMOUNTS) - 1),
        mode=st.sampled_from(CREATE_MODE_CHOICES),
    )
    def open_order(self, user: int, package: int, mode: str) -> None:
        self.fired("open order")
        self.open(user, package, mode)

    @initialize(
        data=st.data(),
        paid=st.lists(st.sampled_from(USERS), min_size=1, max_size=3),
        unpaid=st.lists(st.sampled_from(USERS), min_size=1, max_size=4),
        odd=st.lists(st.sampled_from(USERS), min_size=1, max_size=2),
    )
    def first_orders(
        self, data: st.DataObject, paid: list[int], unpaid: list[int], odd: list[int]
    ) -> None:
        """Start each run with a few paid orders (money for payouts and refunds), a few
        open ones (for payments, late successes and fee changes to happen to) and perhaps
        one or two paid with another amount (a review for an admin to resolve)."""
        for user in paid:
            package = data.draw(st.sampled_from(BIG_PACKAGES), label="package")
            self.gateway_says(data, self.open(user, package, "ok"), 2)
        for user in unpaid:
            package = data.draw(st.integers(0, len(PACKAGE_AMOUNTS) - 1), label="package")
            self.open(user, package, "ok")
        for user in odd:
            package = data.draw(st.integers(0, len(PACKAGE_AMOUNTS) - 1), label="package")
            self.paid_another_amount(data, self.open(user, package, "ok"))

    def open(self, user: int, package: int, mode: str) -> str:
        """Open an order through the use case, with the gateway misbehaving as `mode` says."""
        timeout, rejection, says_success, query_timeouts, state, stored = CREATE_MODES[mode]
        provider = self.world.provider
        self.reset_faults()
        provider.create_timeout_after_storing = timeout
        provider.create_rejection = rejection
        provider.create_reports_success = says_success
        provider.query_timeouts = query_timeouts
        try:
            opened = open_recharge_order(self.world.core, user, self.packages[package])
        finally:
            self.reset_faults()
        order = opened.order
        number = order.mch_order_no
        assert number not in self.orders and not opened.reused
        amount = PACKAGE_AMOUNTS[package]
        seen = (order.user_id, order.amount, order.fee_bp, int(order.state))
        assert seen == (user, amount, self.fee_bp, state), f"{mode}: opened {seen}"
        assert (number in provider.orders) == stored, f"{mode}: stored at the gateway?"
        creates = sum(1 for kind, n in provider.calls if kind == "create" and n == number)
        assert creates == 1, f"{mode}: {creates} create calls for {number}"
        self.orders[number] = ModelOrder(
            number, len(self.orders), user, amount, self.fee_bp, self.minutes, stored, state
        )
        if mode != "ok":
            self.counts[f"path: open, {mode}"] += 1
        return number

    @precondition(lambda self: self.at_gateway())
    @rule(data=st.data())
    def report(self, data: st.DataObject) -> None:
        """Any state, any source, maybe tampered; now or kept for later."""
        self.fired("report any state")
        number = data.draw(st.sampled_from(self.at_gateway()), label="order")
        state = data.draw(st.sampled_from([int(s) for s in OrderState]), label="state")
        report = self.build_report(data, self.orders[number], state)
        if data.draw(st.booleans(), label="keep for later"):
            self.inbox.append(report)
        else:
            self.deliver(data, report, data.draw(st.sampled_from(AMOUNT_SOURCES), label="source"))

    @precondition(lambda self: self.at_gateway())
    @rule(data=st.data())
    def gateway_moves(self, data: st.DataObject) -> None:
        """The gateway's own state moves; we hear now, later (reconcile, expiry) or never."""
        self.fired("gateway moves")
        number = data.draw(st.sampled_from(self.at_gateway()), label="order")
        mo = self.orders[number]
        state = data.draw(st.sampled_from([int(s) for s in OrderState]), label="state")
        real = data.draw(st.sampled_from([None] * 4 + [mo.amount, mo.amount + 1]), label="real")
        self.world.provider.set_state(number, OrderState(state), real)
        how = data.draw(st.sampled_from(["notify now", "keep for later", "silent"]), label="how")
        report = self.world.provider.report(number)
        if how == "notify now":
            self.deliver(data, report, ReportSource.NOTIFY)
        elif how == "keep for later":
            self.inbox.append(report)

    @precondition(lambda self: self.inbox)
    @rule(data=st.data())
    def deliver_kept(self, data: st.DataObject) -> None:
        """A report built earlier arrives now: late, out of order, perhaps again later."""
        self.fired("deliver a kept report")
        index = data.draw(st.integers(0, len(self.inbox) - 1), label="which")
        report = self.inbox[index]
        if data.draw(st.integers(0, 2), label="keep a copy") > 0:
            del self.inbox[index]
        else:
            self.counts["path: duplicate delivery"] += 1
        self.deliver(data, report, data.draw(st.sampled_from(AMOUNT_SOURCES), label="source"))

    @precondition(lambda self: self.at_gateway())
    @rule(data=st.data())
    def reconcile(self, data: st.DataObject) -> None:
        self.fired("reconcile")
        number = data.draw(st.sampled_from(self.at_gateway()), label="order")
        self.deliver(data, self.world.provider.report(number), ReportSource.RECONCILE)

    @precondition(_candidates(ALL_STATES))
    @rule(data=st.data(), tamper=st.sampled_from(MISMATCH_TAMPERS))
    def mismatched_report(self, data: st.DataObject, tamper: str) -> None:
        self.fired("mismatched report")
        unpaid = self.orders_in(OPEN + CLOSING)
        pool = unpaid if unpaid and data.draw(st.integers(0, 2)) else self.orders_in(ALL_STATES)
        number = data.draw(st.sampled_from(pool), label="order")
        state = data.draw(st.sampled_from([None, 2, 5, 7]), label="state")
        report = self.tampered(data, self.orders[number], state, tamper)
        self.deliver(data, report, data.draw(st.sampled_from(AMOUNT_SOURCES), label="source"))

    @precondition(_candidates(OPEN))
    @rule(data=st.data())
    def pay(self, data: st.DataObject) -> None:
        self.fired("pay")
        self.gateway_says(data, data.draw(st.sampled_from(self.orders_in(OPEN))), 2)

    @precondition(_candidates(OPEN))
    @rule(data=st.data())
    def pay_another_amount(self, data: st.DataObject) -> None:
        """The payer types another amount (realAmount differs), or pays nothing at all: a
        paid report that fails the match, for an admin to credit or reject."""
        self.fired("pay another amount")
        self.paid_another_amount(
            data, data.draw(st.sampled_from(self.orders_in(OPEN)), label="order")
        )

    @precondition(_candidates(OPEN))
    @rule(data=st.data())
    def check_status_other_amount(self, data: st.DataObject) -> None:
        """A user's Check status gets an answer for an unpaid order with another amount: a
        review that must never be creditable (issue 15 fault 2)."""
        self.fired("check status, another amount")
        number = data.draw(st.sampled_from(self.orders_in(OPEN)), label="order")
        mo = self.orders[number]
        report = self.world.provider.report(number, amount=mo.amount + 1)
        self.deliver(data, report, ReportSource.QUERY)

    def paid_another_amount(self, data: st.DataObject, number: str) -> None:
        mo = self.orders[number]
        amounts = [mo.amount // 2 or 1, mo.amount - 1 or 2, mo.amount + 1, 0]
        real = data.draw(st.sampled_from(amounts), label="real amount")
        self.world.provider.set_state(number, OrderState.SUCCESS, real)
        report = self.world.provider.report(number)
        self.deliver(data, report, data.draw(st.sampled_from(AMOUNT_SOURCES), label="source"))

    @precondition(_candidates(OPEN))
    @rule(data=st.data(), state=st.sampled_from(CLOSING))
    def gateway_gives_up(self, data: st.DataObject, state: int) -> None:
        self.fired("gateway fails, cancels or closes")
        self.gateway_says(data, data.draw(st.sampled_from(self.orders_in(OPEN))), state)

    @precondition(_candidates(OPEN + CLOSING))
    @rule(data=st.data())
    def pay_late(self, data: st.DataObject) -> None:
        """The payer pays an order that failed or was closed (an open one is cancelled first)."""
        self.fired("pay after failure or close")
        number = data.draw(st.sampled_from(self.orders_in(OPEN + CLOSING)), label="order")
        mo = self.orders[number]
        if mo.state in OPEN:
            self.cancel_as(mo, mo.user, "none")
        if mo.state in CLOSING and not mo.review:
            self.gateway_says(data, number, 2)

    @precondition(_candidates((2, 7)))
    @rule(data=st.data())
    def refund(self, data: st.DataObject) -> None:
        self.fired("refund")
        self.gateway_says(data, data.draw(st.sampled_from(self.orders_in((2, 7)))), 5)

    @precondition(_candidates((2,)))
    @rule(data=st.data())
    def dispute(self, data: st.DataObject) -> None:
        self.fired("dispute")
        self.gateway_says(data, data.draw(st.sampled_from(self.orders_in((2,)))), 7)

    @precondition(_candidates((7,)))
    @rule(data=st.data())
    def replay_success(self, data: st.DataObject) -> None:
        """The payer replays the signed success notify they kept, on a disputed order."""
        self.fired("replay a success notify")
        number = data.draw(st.sampled_from(self.orders_in((7,))), label="order")
        mo = self.orders[number]
        kept = self.world.provider.report(number, state=OrderState.SUCCESS)
        if mo.accepted is not None:  # credited through a review: the paid amount it carried
            kept = self.world.provider.report(
                number,
                state=OrderState.SUCCESS,
                amount=mo.accepted[0] or mo.amount,
                real_amount=mo.accepted[1],
            )
        self.deliver(data, kept, ReportSource.NOTIFY)

    @precondition(_candidates((7,)))
    @rule(data=st.data())
    def release(self, data: st.DataObject) -> None:
        self.fired("release dispute")
        self.gateway_says(data, data.draw(st.sampled_from(self.orders_in((7,)))), 2)

    @rule(bp=st.sampled_from(FEE_BP_CHOICES))
    def change_fee(self, bp: int) -> None:
        self.fired("change fee")
        self.world.set_policy(fee_bp=bp)
        self.fee_bp = bp

    @rule(network=st.sampled_from(list(Network)), fee=st.sampled_from(NETWORK_FEE_CHOICES))
    def change_network_fee(self, network: Network, fee: int) -> None:
        """A payout keeps the network fee in force when it was requested."""
        self.fired("change network fee")
        self.network_fees[network] = fee
        self.world.set_policy(payout_fees=dict(self.network_fees))

    @precondition(_candidates(OPEN + CLOSING))
    @rule(data=st.data())
    def change_fee_then_pay(self, data: st.DataObject) -> None:
        """The fee changes while an order is unpaid (or closed); then the payer pays."""
        self.fired("change fee, then pay")
        number = data.draw(st.sampled_from(self.orders_in(OPEN + CLOSING)), label="order")
        opened_at = self.orders[number].fee_bp
        bp = data.draw(st.sampled_from([b for b in FEE_BP_CHOICES if b != opened_at]), label="bp")
        self.world.set_policy(fee_bp=bp)
        self.fee_bp = bp
        self.gateway_says(data, number, 2)

    @rule(minutes=st.sampled_from([0, 1, 10, 29, 30, 31, 45, 61]))
    def expire(self, minutes: int) -> None:
        self.fired("expire")
        self.world.clock.advance(minutes=minutes)
        self.minutes += minutes
        due = sorted(
            (
                mo
                for mo in self.orders.values()
                if mo.state in OPEN
                and not mo.review
                and mo.opened_at + EXPIRE_MINUTES <= self.minutes
                # A claim holds for a minute (expire_orders.CLAIM_WINDOW, strictly).
                and (mo.claimed_at is None or self.minutes - mo.claimed_at > 1)
            ),
            key=lambda mo: (mo.opened_at, mo.seq),
        )[:EXPIRY_BATCH]
        predicted = [(mo, *self.expect_close(mo, False, False)) for mo in due]
        for mo in due:
            mo.claimed_at = self.minutes
        closed = expire_due_orders(self.world.core)
        # Which Closed belongs to which order is not said; compare them as a multiset.
        assert Counter(map(_closed_key, closed)) == Counter(
            _predicted_key(outcome, expected, mo) for mo, outcome, expected in predicted
        ), f"expiry of {[mo.number for mo in due]}"
        by_key = {}
        for result in closed:
            by_key.setdefault(_closed_key(result), []).append(result)
        for mo, outcome, expected in predicted:
            result = by_key[_predicted_key(outcome, expected, mo)].pop()
            if expected is not None:
                assert result.result is not None
                self.advance(mo, expected)
                self.observe(mo, result.result)
            self.counts[f"path: expiry, {outcome}"] += 1

    @precondition(lambda self: self.orders)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        self.fired("cancel")
        cancellable = sorted(
            mo.number for mo in self.orders.values() if mo.state in OPEN and not mo.review
        )
        pool = cancellable if cancellable and data.draw(st.booleans()) else sorted(self.orders)
        mo = self.orders[data.draw(st.sampled_from(pool), label="order")]
        user = mo.user if data.draw(st.integers(0, 4)) else data.draw(st.sampled_from(USERS))
        fault = data.draw(
            st.sampled_from(["none", "none", "close times out", "close garbage", "both time out"]),
            label="fault",
        )
        self.cancel_as(mo, user, fault)

    def cancel_as(self, mo: ModelOrder, user: int, fault: str) -> None:
        if user != mo.user:
            refusal: type[Refused] | None = NotFound
        elif mo.state not in OPEN or mo.review:
            refusal = Refused
        else:
            refusal = None
        provider = self.world.provider
        self.reset_faults()
        provider.close_timeouts = int(fault in ("close times out", "both time out"))
        provider.close_failures = int(fault == "close garbage")
        provider.query_timeouts = int(fault == "both time out")
        predicted = None
        if refusal is None:
            predicted = self.expect_close(mo, fault != "none", fault == "both time out")
        try:
            closed = cancel_order(self.world.core, user, mo.number)
        except Refused as refused:
            assert refusal is not None, f"cancel of {mo.number} refused: {refused}"
            assert isinstance(refused, refusal) and not isinstance(refused, AlreadyResolved)
            assert refusal is NotFound or not isinstance(refused, NotFound)
            self.counts["refused: cancel"] += 1
            return
        finally:
            self.reset_faults()
        assert refusal is None, f"cancel of {mo.number} (state {mo.state}) should be refused"
        assert predicted is not None
        outcome, expected = predicted
        assert closed.outcome.value == outcome, f"cancel {mo.number}: {closed}"
        if expected is None:
            assert closed.result is None and int(closed.state) == mo.state
        else:
            self.settle(mo, expected, closed.result)
            assert int(closed.state) == mo.state
        self.counts[f"path: cancel, {outcome}"] += 1

    # --- payouts --------------------------------------------------------------------------
    @rule(user=st.sampled_from(USERS), network=st.sampled_from(list(Network)), data=st.data())
    def request(self, user: int, network: Network, data: st.DataObject) -> None:
        self.fired("request payout")
        how = data.draw(st.sampled_from(PAYOUT_AMOUNTS), label="amount")
        self.request_payout(user, network, how, data)

    @precondition(lambda self: self.funded())
    @rule(network=st.sampled_from(list(Network)), data=st.data())
    def request_within_balance(self, network: Network, data: st.DataObject) -> None:
        self.fired("request payout within available")
        user = data.draw(st.sampled_from(self.funded()), label="user")
        self.request_payout(user, network, "within available", data)

    def funded(self) -> list[int]:
        return [u for u in USERS if self.balances[available(u)] >= PAYOUT_MIN]

    def request_payout(self, user: int, network: Network, how: str, data: st.DataObject) -> None:
        have = self.balances[available(user)]
        fee = self.network_fees[network]
        amount = {
            "all": have,
            "half": have // 2,
            "one over": have + 1,
            "minimum": PAYOUT_MIN,
            "below minimum": PAYOUT_MIN - 1,
            "maximum": PAYOUT_MAX,
            "above maximum": PAYOUT_MAX + 1,
            "network fee": fee,
            "network fee + 1": fee + 1,
        }.get(how)
        if how == "within available":
            amount = data.draw(st.integers(PAYOUT_MIN, max(PAYOUT_MIN, have)), label="amount")
        elif amount is None:
            amount = data.draw(st.integers(PAYOUT_MIN, PAYOUT_MAX), label="random amount")
        if amount < PAYOUT_MIN:
            reason = "below minimum"
        elif amount > PAYOUT_MAX:
            reason = "above maximum"
        elif amount <= fee:
            reason = "not above the network fee"
        elif (blocked := self.blocked(user)) is not None:
            reason = f"blocked by {blocked}"
        elif amount > have:
            reason = "above available"
        else:
            reason = None
        self.conflicts(data, up_to=TRANSACTION_ATTEMPTS - 1)
        try:
            payout = request_payout(self.world.core, user, amount, network, "TAddress")
        except Refused as refused:
            assert reason is not None, f"payout of {amount} (available {have}) refused: {refused}"
            assert not isinstance(refused, (AlreadyResolved, NotFound)), refused
            self.counts[f"refused: payout request, {reason}"] += 1
            return
        finally:
            self.world.uow.conflicts_to_inject = 0
        assert reason is None, f"payout of {amount} (available {have}) accepted; expected {reason}"
        assert payout.id not in self.payouts
        seen = (payout.user_id, payout.amount, payout.network_fee, payout.status)
        assert seen == (user, amount, fee, PayoutStatus.PENDING), seen
        self.payouts[payout.id] = ModelPayout(payout.id, user, amount, fee)
        self.post(f"payout-hold:{payout.id}", {available(user): -amount, held(user): amount})

    def approve(self, data: st.DataObject, payout_id: int, txid: str | None) -> None:
        mp = self.payouts.get(payout_id)
        if mp is None:
            refusal: type[Refused] | None = NotFound
        elif mp.status != "pending":
            refusal = AlreadyResolved
        elif self.blocked(mp.user) is not None or (txid is not None and txid in self.txids):
            refusal = Refused
        else:
            refusal = None
        self.conflicts(data, up_to=TRANSACTION_ATTEMPTS - 1)
        try:
            payout = approve_payout(self.world.core, ADMIN, payout_id, txid)
        except Refused as refused:
            assert refusal is not None, f"approve #{payout_id} refused: {refused}"
            assert isinstance(refused, refusal), f"approve #{payout_id}: {refused!r}"
            for narrower in (AlreadyResolved, NotFound):
                assert refusal is narrower or not isinstance(refused, narrower), repr(refused)
            if refusal is AlreadyResolved:
                assert mp is not None
                approved = mp.status == "approved"
                self.counts[DOUBLE_APPROVE if approved else "path: approve after reject"] += 1
            else:
                self.counts[f"refused: approve, {refusal.__name__}"] += 1
            return
        finally:
            self.world.uow.conflicts_to_inject = 0
        assert refusal is None and mp is not None, f"approve #{payout_id} should be refused"
        assert payout.status is PayoutStatus.APPROVED and payout.txid == txid
        mp.status = "approved"
        if mp.network_fee != self.network_fees[payout.network]:
            self.counts["path: approve at a network fee changed since the request"] += 1
        if txid is not None:
            self.txids.append(txid)
        self.post(
            f"payout-post:{mp.id}",
            {held(mp.user): -mp.amount, SENT: mp.amount - mp.network_fee, FEES: mp.network_fee},
        )

    def draw_txid(self, data: st.DataObject) -> str | None:
        how = data.draw(st.sampled_from(["fresh", "fresh", "none", "taken"]), label="txid")
        if how == "none":
            return None
        if how == "taken" and self.txids:
            return data.draw(st.sampled_from(self.txids))
        return f"tx{len(self.txids)}-{len(self.payouts)}-{self.minutes}"

    @precondition(lambda self: any(mp.status == "pending" for mp in self.payouts.values()))
    @rule(data=st.data())
    def approve_pending(self, data: st.DataObject) -> None:
        self.fired("approve pending payout")
        pending = sorted(i for i, mp in self.payouts.items() if mp.status == "pending")
        payout_id = data.draw(st.sampled_from(pending), label="payout")
        self.approve(data, payout_id, self.draw_txid(data))
        if data.draw(st.booleans(), label="admin taps approve again"):
            self.approve(data, payout_id, self.draw_txid(data))

    @precondition(lambda self: self.approvable())
    @rule(data=st.data())
    def approve_twice(self, data: st.DataObject) -> None:
        """Two admins (or one impatient one) approve the same payout."""
        self.fired("approve twice")
        payout_id = data.draw(st.sampled_from(self.approvable()), label="payout")
        self.approve(data, payout_id, self.draw_txid(data))
        self.approve(data, payout_id, self.draw_txid(data))

    def approvable(self) -> list[int]:
        return sorted(
            i
            for i, mp in self.payouts.items()
            if mp.status == "pending" and self.blocked(mp.user) is None
        )

    @precondition(lambda self: any(mp.status != "pending" for mp in self.payouts.values()))
    @rule(data=st.data())
    def approve_resolved(self, data: st.DataObject) -> None:
        """Double approve, approve after reject, and now and then a payout that is not there."""
        self.fired("approve resolved payout")
        approved = sorted(i for i, mp in self.payouts.items() if mp.status == "approved")
        rejected = sorted(i for i, mp in self.payouts.items() if mp.status == "rejected")
        pool = data.draw(
            st.sampled_from([p for p in (approved, approved, rejected, [0]) if p]), label="kind"
        )
        payout_id = data.draw(st.sampled_from(pool), label="payout")
        self.approve(data, payout_id, self.draw_txid(data))

    @precondition(lambda self: self.payouts)
    @rule(data=st.data(), reason=st.sampled_from(["wrong address", "limit", "  "]))
    def reject(self, data: st.DataObject, reason: str) -> None:
        self.fired("reject payout")
        payout_id = data.draw(st.sampled_from([*sorted(self.payouts), 0]), label="payout")
        mp = self.payouts.get(payout_id)
        if not reason.strip():
            refusal: type[Refused] | None = Refused
        elif mp is None:
            refusal = NotFound
        elif mp.status != "pending":
            refusal = AlreadyResolved
        else:
            refusal = None
        self.conflicts(data, up_to=TRANSACTION_ATTEMPTS - 1)
        try:
            reject_payout(self.world.core, ADMIN, payout_id, reason)
        except Refused as refused:
            assert refusal is not None, f"reject #{payout_id} refused: {refused}"
            assert isinstance(refused, refusal), f"reject #{payout_id}: {refused!r}"
            for narrower in (AlreadyResolved, NotFound):
                assert refusal is narrower or not isinstance(refused, narrower), repr(refused)
            self.counts[f"refused: reject, {refusal.__name__}"] += 1
            return
        finally:
            self.world.uow.conflicts_to_inject = 0
        assert refusal is None and mp is not None, f"reject #{payout_id} should be refused"
        mp.status = "rejected"
        self.post(
            f"payout-void:{mp.id}", {held(mp.user): -mp.amount, available(mp.user): mp.amount}
        )
        if data.draw(st.booleans(), label="another admin approves it"):
            self.approve(data, payout_id, self.draw_txid(data))

    # --- reviews and adjustments ------------------------------------------------------------
    @precondition(lambda self: self.reviews)
    @rule(data=st.data(), how=st.sampled_from([Resolution.CREDIT] * 2 + [Resolution.REJECT]))
    def resolve(self, data: st.DataObject, how: Resolution) -> None:
        """An admin credits or rejects a mismatch review; now and then one already resolved."""
        self.fired("resolve review")
        pending = sorted(i for i, mr in self.reviews.items() if mr.status == "open")
        pool = sorted(self.reviews)
        if pending and data.draw(st.integers(0, 3), label="open"):
            pool = pending
            if how is Resolution.CREDIT:
                # An admin credits one that looks right, or tries one that does not.
                right = data.draw(st.booleans(), label="looks right")
                wanted = [i for i in pending if _creditable(self.reviews[i].facts) is right]
                pool = wanted or pending
        mr = self.reviews[data.draw(st.sampled_from(pool), label="review")]
        mo = self.orders[mr.number]
        amount, real = mr.facts[3], mr.facts[4]
        paid = real if real is not None else amount  # 0 means nothing was paid
        if mr.status != "open":
            refusal: type[Refused] | None = AlreadyResolved
        elif how is Resolution.CREDIT and not _creditable(mr.facts):
            refusal = Refused
        else:
            refusal = None
        self.conflicts(data, up_to=TRANSACTION_ATTEMPTS - 1)
        try:
            resolve_review(self.world.core, ADMIN, mr.id, how)
        except Refused as refused:
            assert refusal is not None, f"review #{mr.id} {mr.facts}: {how.value}: {refused}"
            assert isinstance(refused, refusal) and not isinstance(refused, NotFound), refused
            assert refusal is AlreadyResolved or not isinstance(refused, AlreadyResolved)
            self.counts[SECOND_RESOLUTION if refusal is AlreadyResolved else CREDIT_REFUSED] += 1
            return
        finally:
            self.world.uow.conflicts_to_inject = 0
        assert refusal is None, f"review #{mr.id} {mr.facts}: {how.value} should be refused"
        assert mo.review and mo.state not in PAID
        mo.review = False
        self.flagged.pop(mo.number, None)  # an admin's resolution is the one move allowed
        mo.resolved.append(mr.facts)
        if how is Resolution.CREDIT:
            assert paid is not None
            fee = model_fee(paid, mo.fee_bp)
            self.post(
                f"payin:{mo.number}", {CLEARING: -paid, available(mo.user): paid - fee, FEES: fee}
            )
            mo.state, mo.accepted, mr.status = 2, (amount, paid), "credited"
            self.counts[REVIEW_CREDITED] += 1
        else:
            mo.state, mr.status = 3, "rejected"
            self.counts[REVIEW_REJECTED] += 1

    @rule(
        user=st.sampled_from(USERS),
        how=st.sampled_from(["credit", "debit within", "debit all", "debit over"]),
        data=st.data(),
    )
    def adjust(self, user: int, how: str, data: st.DataObject) -> None:
        """An admin credits or debits a user's available balance; never below zero."""
        self.fired("adjust balance")
        funded = [u for u in USERS if self.balances[available(u)] > 0]
        if how != "credit" and funded and data.draw(st.booleans(), label="a funded user"):
            user = data.draw(st.sampled_from(funded), label="user")
        have = self.balances[available(user)]
        if how == "credit":
            amount = data.draw(st.integers(1, 100_00), label="amount")
        elif how == "debit within" and have > 0:
            amount = -data.draw(st.integers(1, have), label="amount")
        elif how == "debit all" and have > 0:
            amount = -have
        else:
            amount = -(max(have, 0) + data.draw(st.integers(1, 500), label="over"))
        refused_below_zero = amount < 0 and have + amount < 0
        self.conflicts(data, up_to=TRANSACTION_ATTEMPTS - 1)
        try:
            journal = adjust_balance(self.world.core, ADMIN, user, amount, "drill")
        except Refused as refused:
            assert refused_below_zero, f"adjust {amount} of {have} refused: {refused}"
            assert "below zero" in str(refused), refused
            self.counts[ADJUST_BELOW_ZERO] += 1
            return
        finally:
            self.world.uow.conflicts_to_inject = 0
        assert not refused_below_zero, f"adjust {amount} of available {have} accepted"
        self.post(journal.key, {ADJUSTMENTS: -amount, available(user): amount})
        self.counts[ADJUST_CREDIT if amount > 0 else ADJUST_DEBIT] += 1

    # --- invariants -----------------------------------------------------------------------
    @invariant()
    def books_agree(self) -> None:
        s = self.world.state
        # Each journal sums to zero; it is exactly the journal the model expects.
        assert set(s.journals) == set(self.journals), (
            f"journals: extra {sorted(set(s.journals) - set(self.journals))}, "
            f"missing {sorted(set(self.journals) - set(s.journals))}"
        )
        sums: Counter = Counter()
        for key, stored in s.journals.items():
            entries = stored.journal.entries
            assert sum(e.amount for e in entries) == 0, f"{key} does not sum to zero"
            legs = {e.account: e.amount for e in entries if e.amount}
            assert legs == self.journals[key], f"{key}: {legs}, expected {self.journals[key]}"
            for e in entries:
                sums[e.account] += e.amount
        # Each balance equals the sum of its entries and the model.
        for account in set(s.balances) | set(sums) | set(self.balances):
            balance = s.balances.get(account, 0)
            assert balance == sums[account], f"{account}: {balance}, entries {sums[account]}"
            assert balance == self.balances[account], (
                f"{account}: {balance}, model {self.balances[account]}"
            )
        # Available goes below zero (or further below) only through a refund reversal.
        new = set(s.journals) - self.seen_journals
        for user in USERS:
            now = s.balances.get(available(user), 0)
            if now < 0 and now < self.last_available[user]:
                refunded = any(
                    key.startswith("refund:")
                    and any(e.account == available(user) for e in s.journals[key].journal.entries)
                    for key in new
                )
                assert refunded, f"user {user}: available {now} without a refund reversal"
            self.last_available[user] = now
        self.seen_journals = set(s.journals)
        # Orders: state and flag as modelled; credited exactly once iff accepted into 2.
        stored_orders = {o.mch_order_no: o for o in s.orders.values()}
        assert set(stored_orders) == set(self.orders)
        for number, mo in self.orders.items():
            order = stored_orders[number]
            seen = (int(order.state), order.under_review, order.fee_bp, order.amount)
            assert seen == (mo.state, mo.review, mo.fee_bp, mo.amount), f"{number}: {seen}, {mo}"
            credited = f"payin:{number}" in s.journals
            refunded = f"refund:{number}" in s.journals
            assert credited == (int(order.state) in PAID), f"{number}: state {order.state}"
            assert refunded == (order.state is OrderState.REFUNDED), number
        # Nothing under review moves: no credit, no reversal, no state change while flagged.
        for number, before in self.flagged.items():
            order = stored_orders[number]
            after = (
                order.under_review,
                order.state,
                f"payin:{number}" in s.journals,
                f"refund:{number}" in s.journals,
            )
            assert after == before, f"{number} changed under review: {before} -> {after}"
        self.flagged = {
            number: (
                True,
                o.state,
                f"payin:{number}" in s.journals,
                f"refund:{number}" in s.journals,
            )
            for number, o in stored_orders.items()
            if o.under_review
        }
        # Reviews: each resolved at most once, as modelled; the order's flag follows it.
        for review_id, mr in self.reviews.items():
            review = s.reviews[review_id]
            assert review.status.value == mr.status, f"review #{review_id}: {review.status}"
            flag = stored_orders[mr.number].review
            if mr.status == "open":
                assert flag is ReviewFlag.PENDING, f"review #{review_id} open, order {flag}"
        # Payouts: resolved at most once, never changed after; held is the open payouts.
        assert set(s.payouts) == set(self.payouts)
        for payout_id, mp in self.payouts.items():
            payout = s.payouts[payout_id]
            seen = (payout.user_id, payout.amount, payout.network_fee, payout.status.value)
            assert seen == (mp.user, mp.amount, mp.network_fee, mp.status), f"#{payout_id}: {seen}"
            post = f"payout-post:{payout_id}" in s.journals
            void = f"payout-void:{payout_id}" in s.journals
            assert f"payout-hold:{payout_id}" in s.journals
            assert (post, void) == (
                payout.status is PayoutStatus.APPROVED,
                payout.status is PayoutStatus.REJECTED,
            ), f"#{payout_id} {payout.status}: post {post}, void {void}"
            if payout_id in self.resolved:
                after = (payout.status, payout.resolved_by, payout.resolved_at, payout.txid)
                assert after == self.resolved[payout_id], f"#{payout_id} resolved again"
            elif payout.status is not PayoutStatus.PENDING:
                self.resolved[payout_id] = (
                    payout.status,
                    payout.resolved_by,
                    payout.resolved_at,
                    payout.txid,
                )
        for user in USERS:
            open_stored = sum(
                p.amount
                for p in s.payouts.values()
                if p.user_id == user and p.status is PayoutStatus.PENDING
            )
            open_model = sum(
                mp.amount
                for mp in self.payouts.values()
                if mp.user == user and mp.status == "pending"
            )
            balance = s.balances.get(held(user), 0)
            assert balance == open_stored == open_model, (
                f"user {user}: held {balance}, open payouts {open_stored}, model {open_model}"
            )


def _creditable(facts: Facts) -> bool:
    """The design (and issue 15): credit only a report that says it was paid, by our
    merchant, in our currency, for more than nothing (a real amount of 0 is nothing)."""
    state, merchant, currency, amount, real = facts
    paid = real if real is not None else amount
    return (
        state == 2
        and merchant == MERCHANT
        and currency is not None
        and currency.lower() == OUR_CURRENCY
        and paid is not None
        and paid > 0
    )


def _closed_key(closed: Closed) -> tuple[object, ...]:
    result = closed.result
    return (
        closed.outcome.value,
        None if result is None else result.outcome.value,
        None if result is None or result.decision is None else result.decision.move.value,
        int(closed.state),
    )


def _predicted_key(outcome: str, expected: Expect | None, mo: ModelOrder) -> tuple[object, ...]:
    if expected is None:
        return (outcome, None, None, mo.state)
    return (outcome, expected.outcome, expected.move, expected.state)


@pytest.mark.stateful
def test_core_agrees_with_the_model(stateful_counts: Counter) -> None:
    """Property: under any sequence of orders, gateway reports (duplicated, late, reordered,
    mismatched), create faults, fee changes, expiry, cancels and payout decisions, the core's
    answers, refusals and books are exactly what the design-derived model predicts, and the
    ledger invariants hold after every step. The run must also really reach each hard path."""
    run_state_machine_as_test(lambda: CoreMachine(stateful_counts), settings=RUN_SETTINGS)
    short = {
        f"{path} (floor {floor})": stateful_counts[path]
        for path, floor in HARD_PATHS.items()
        if stateful_counts[path] < floor
    }
    assert not short, f"hard paths reached too rarely in {EXAMPLES} examples: {short}"


# --- the model can fail: break the core in one place and the machine must notice -----------
def _truncating_fee(amount: int, fee_bp: int) -> int:
    return amount * fee_bp // 10_000


# Enough examples that each mutant below is caught on every run (each was run 10 times).
MUTANT_EXAMPLES = 300
MUTANTS: dict[str, Callable[[pytest.MonkeyPatch], None]] = {
    "fee rounds down": lambda mp: mp.setattr(money, "fee_for", _truncating_fee),
    "no balance floors": lambda mp: mp.setattr(ledger.Journal, "floors", lambda self: frozenset()),
    "late success ignored": lambda mp: mp.setitem(
        STATE_TABLE[OrderState.CLOSED], OrderState.SUCCESS, Move.NOOP_ALERT
    ),
    "disputes do not block payouts": lambda mp: mp.setattr(
        MemoryOrders, "has_disputed", lambda self, user_id: False
    ),
    "balances skip the fees account": lambda mp: mp.setattr(
        ledger,
        "apply_to_balances",
        _skipping(ledger.apply_to_balances, FEES),
    ),
    "review flag ignored": lambda mp: mp.setattr(
        Order, "under_review", property(lambda self: False)
    ),
    "currency not compared": lambda mp: mp.setattr(
        apply_report,
        "match_problems",
        _ignoring(apply_report.match_problems, "currency"),
    ),
    # Issue 15, faults 1-3, each put back in one place.
    "a notify releases a dispute": lambda mp: mp.setattr(
        ReportSource, "answers_a_query", property(lambda self: True)
    ),
    "unpaid reports creditable": lambda mp: mp.setattr(
        Review, "reported_state", property(lambda self: 2)
    ),
    "real amount 0 read as absent": lambda mp: mp.setattr(
        Review,
        "reported_paid",
        property(lambda self: self.report.get("real_amount") or self.report.get("amount")),
    ),
    "the credited report forgotten by the match": lambda mp: mp.setattr(
        apply_report, "accepted_review", lambda uow, order: None
    ),
    "a resolved order is never flagged again": lambda mp: mp.setattr(
        Order, "flag_for_review", _flag_once(Order.flag_for_review)
    ),
}


def _flag_once(flag: Callable) -> Callable:
    def flag_for_review(self, now):
        return False if self.review is not ReviewFlag.NONE else flag(self, now)

    return flag_for_review


def _ignoring(match: Callable, word: str) -> Callable:
    def match_problems(*args, **kwargs):
        return [problem for problem in match(*args, **kwargs) if word not in problem]

    return match_problems


def _skipping(apply: Callable, account: str) -> Callable:
    def apply_to_balances(balances, journal):
        result = apply(balances, journal)
        result[account] = balances.get(account, 0)
        return result

    return apply_to_balances


@pytest.mark.stateful
@pytest.mark.parametrize("mutant", MUTANTS.values(), ids=MUTANTS.keys())
def test_the_machine_notices_a_broken_core(
    mutant: Callable[[pytest.MonkeyPatch], None], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Property of the test itself: with the core broken in one place, the machine fails."""
    mutant(monkeypatch)
    quick = settings(
        RUN_SETTINGS,
        max_examples=MUTANT_EXAMPLES,
        database=None,
        phases=[Phase.generate],
        report_multiple_bugs=False,
        print_blob=False,
    )
    with pytest.raises(AssertionError):
        run_state_machine_as_test(CoreMachine, settings=quick)
