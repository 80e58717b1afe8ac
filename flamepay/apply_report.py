"""Apply a provider report: the single path for notify, reconcile, verify-by-query, create
responses and close confirmations. The state table decides; this module moves the money."""

from __future__ import annotations

import enum

import attrs

from flamepay import ledger, notices
from flamepay.alerts import alert_once
from flamepay.context import Core
from flamepay.errors import FlamePayError
from flamepay.money import format_money, same_currency
from flamepay.order import Decision, Move, Order, OrderState, ReviewFlag
from flamepay.policy import PaymentPolicy
from flamepay.ports import UnitOfWork
from flamepay.records import Review, ReviewKind, ReviewStatus
from flamepay.report import ProviderReport, ReportSource

# What a report matched by order number alone (create response, close) may do.
UNMATCHED_MOVES = frozenset({Move.MOVE, Move.NOOP, Move.NOOP_ALERT})


class Outcome(enum.Enum):
    APPLIED = "applied"  # the state (and maybe money) moved
    UNCHANGED = "unchanged"  # a no-op of the table: already applied, or nothing to do
    REVIEW = "review"  # the match rule failed: flagged, nothing moved
    UNDER_REVIEW = "under_review"  # flagged earlier: this report is only logged
    UNKNOWN_ORDER = "unknown_order"
    NEEDS_QUERY = "needs_query"  # a create response said 2: only a query may credit


@attrs.frozen
class ReportResult:
    outcome: Outcome
    state: OrderState | None = None
    decision: Decision | None = None
    reason: str = ""

    @property
    def acknowledged(self) -> bool:
        """What the notify endpoint answers 'success' to: handled, one way or another."""
        return self.outcome is not Outcome.UNKNOWN_ORDER


class LedgerIntegrityError(FlamePayError):
    """A reversal found no pay-in to negate: the books disagree with the order's state."""


def match_problems(
    order: Order,
    report: ProviderReport,
    source: ReportSource,
    policy: PaymentPolicy,
    accepted: Review | None = None,
) -> list[str]:
    """Why a report does not describe this order; empty when it matches.

    A create response (and a close confirmation) is matched by order number only: it never
    credits. Every report that carries amounts must agree on currency and amount, the real
    amount when present, and the merchant where the report names one (a notify must).
    `accepted` is the mismatch an admin credited: its amount and what it says was paid are
    what this order's later reports (a refund, a dispute) carry, so they match too.
    """
    problems: list[str] = []
    if report.mch_order_no != order.mch_order_no:
        problems.append("order number differs")
    if (
        report.provider_order_no
        and order.provider_order_no
        and report.provider_order_no != order.provider_order_no
    ):
        problems.append("provider order number differs")
    if not source.carries_amounts:
        return problems
    if report.merchant is None:
        if source is ReportSource.NOTIFY:
            problems.append("no merchant number")
    elif policy.merchant_no and report.merchant != policy.merchant_no:
        problems.append("another merchant number")
    if report.currency is None or not same_currency(report.currency, order.currency):
        problems.append(f"currency {report.currency!r}, expected {order.currency}")
    amounts, paid = {order.amount}, order.amount
    if accepted is not None and accepted.reported_paid is not None:
        accepted_amount = accepted.report.get("amount")
        if isinstance(accepted_amount, int) and not isinstance(accepted_amount, bool):
            amounts.add(accepted_amount)
        paid = accepted.reported_paid
    if report.amount not in amounts:
        problems.append(f"amount {report.amount}, expected {order.amount}")
    if report.real_amount is not None and report.real_amount != paid:
        problems.append(f"real amount {report.real_amount}, expected {paid}")
    return problems


def accepted_review(uow: UnitOfWork, order: Order) -> Review | None:
    """The mismatch review an admin resolved as 'credit', if this order had one."""
    if order.review is not ReviewFlag.CREDITED:
        return None
    credited = [
        r
        for r in uow.reviews.for_order(order.id)
        if r.kind is ReviewKind.MISMATCH and r.status is ReviewStatus.CREDITED
    ]
    return credited[-1] if credited else None


def apply_provider_report(core: Core, report: ProviderReport, source: ReportSource) -> ReportResult:
    def body(uow: UnitOfWork) -> ReportResult:
        return apply_in(uow, core, report, source)

    return core.transaction(body)


def apply_in(
    uow: UnitOfWork, core: Core, report: ProviderReport, source: ReportSource
) -> ReportResult:
    """The body, for callers that already hold a unit of work."""
    now = core.now()
    actor = source.value
    order = uow.orders.get_for_update(report.mch_order_no)
    if order is None:
        core.audit(uow, actor, "report_unknown_order", report.mch_order_no, state=int(report.state))
        return ReportResult(Outcome.UNKNOWN_ORDER, reason="unknown order")

    if order.under_review:
        core.audit(
            uow,
            actor,
            "report_while_under_review",
            order.mch_order_no,
            state=int(report.state),
            **_amounts(report),
        )
        return ReportResult(Outcome.UNDER_REVIEW, order.state, reason="order under review")

    problems = match_problems(order, report, source, core.policy, accepted_review(uow, order))
    if report.provider_order_no and not order.provider_order_no:
        owner = uow.orders.get_by_number(report.provider_order_no)
        if owner is not None and owner.id != order.id:
            problems.append("provider order number belongs to another order")
    if problems:
        return _refuse_mismatch(uow, core, order, report, source, problems)

    decision = order.decide(report.state)
    order.fill_provider_details(report.provider_order_no, report.cashier_url)
    if not source.carries_amounts and decision.move not in UNMATCHED_MOVES:
        # A create response or close confirmation is matched by order number only: it may
        # open, fail or close an order, never move money or a dispute. A 2 in it is
        # confirmed by a query; anything else it says about a paid order is only logged.
        uow.orders.save(order)
        core.audit(
            uow,
            actor,
            "create_reported_success" if decision.move.credits else "report_not_trusted",
            order.mch_order_no,
            from_state=int(order.state),
            reported=int(report.state),
        )
        if decision.move.credits:
            return ReportResult(Outcome.NEEDS_QUERY, order.state, decision)
        return ReportResult(Outcome.UNCHANGED, order.state, decision)

    if decision.move.lifts_block and not source.answers_a_query:
        # A notify may be a replay (a payer can keep a signed copy of their own success
        # notify): a release waits for the gateway's own answer, which the caller asks for
        # outside this transaction (confirm_by_query). Nothing changes here.
        core.audit(
            uow,
            actor,
            "release_needs_query",
            order.mch_order_no,
            from_state=int(order.state),
            reported=int(report.state),
        )
        return ReportResult(Outcome.NEEDS_QUERY, order.state, decision)

    order.apply(decision, now)  # first, so the messages below name the new state
    uow.orders.save(order)
    core.audit(
        uow,
        actor,
        f"report_{decision.move.value}",
        order.mch_order_no,
        from_state=int(decision.from_state),
        reported=int(decision.reported),
        to_state=int(decision.to_state),
    )
    # Money last: the shared accounts (clearing, fees) are locked from here to the commit,
    # so everything that does not need them is done before.
    _move_money(uow, core, order, decision)
    outcome = Outcome.APPLIED if decision.move.changes_state else Outcome.UNCHANGED
    return ReportResult(outcome, order.state, decision)


def _move_money(uow: UnitOfWork, core: Core, order: Order, decision: Decision) -> None:
    now = core.now()
    move = decision.move
    if move.credits:
        credit_order(uow, core, order, order.amount)
        if move is Move.LATE_SUCCESS:
            _alert(uow, core, order, "late success", f"credited after {decision.from_state.name}")
    elif move.reverses:
        payin_entries = uow.ledger.entries_of(ledger.payin_key(order.mch_order_no))
        if payin_entries is None:
            raise LedgerIntegrityError(f"order {order.mch_order_no} has no pay-in to reverse")
        journal = ledger.refund(order.mch_order_no, order.id, order.user_id, payin_entries)
        uow.ledger.post(journal, now)
        taken = -journal.amount_of(ledger.available(order.user_id))
        balance = uow.ledger.balance(ledger.available(order.user_id))
        uow.outbox.add(notices.credit_reversed(order, taken, balance, now))
        open_payouts = uow.payouts.pending(order.user_id)
        extra = (
            "Open payouts of this user: "
            + ", ".join(f"#{p.id} {format_money(p.amount, order.currency)}" for p in open_payouts)
            if open_payouts
            else "The user has no open payout."
        )
        if balance < 0:
            extra += f" Available is now {format_money(balance, order.currency)}."
        _alert(uow, core, order, "refund", extra)
    elif move is Move.DISPUTE:
        _alert(uow, core, order, "dispute", "The user's payouts are blocked until it is released.")
    elif move is Move.RELEASE:
        _alert(uow, core, order, "dispute released", "Payouts are unblocked.")
    elif move is Move.NOOP_ALERT:
        _alert(
            uow,
            core,
            order,
            f"state {int(decision.reported)} reported",
            f"ignored in state {int(decision.from_state)}",
        )


def credit_order(uow: UnitOfWork, core: Core, order: Order, paid: int) -> int:
    """Post `payin:<order>` for `paid` cents at the order's stored fee and tell the user.

    Shared by the state table's credit and a review resolved as 'credit'.
    """
    now = core.now()
    fee, credit = order.split(paid)
    uow.ledger.post(ledger.payin(order.mch_order_no, order.id, order.user_id, paid, fee), now)
    balance = uow.ledger.balance(ledger.available(order.user_id))
    uow.outbox.add(notices.order_credited(order, credit, balance, now))
    return credit


def _alert(uow: UnitOfWork, core: Core, order: Order, what: str, extra: str) -> None:
    """One message per (order, kind) within ALERT_INTERVAL_MINUTES (repeats are counted);
    the money has moved already, whatever the alert key says."""
    now = core.now()
    message = notices.order_alert(order, what, now, extra)
    alert_once(uow, core, _alert_key(order, what), message, "system")
    if what in ("late success", "refund", "dispute"):
        # An alert an admin acknowledges; one per order and event.
        uow.reviews.open(
            Review(
                None,
                order.id,
                ReviewKind.ALERT,
                f"{what}: {extra}",
                now,
                key=f"alert:{what}:{order.id}",
            )
        )


def _refuse_mismatch(
    uow: UnitOfWork,
    core: Core,
    order: Order,
    report: ProviderReport,
    source: ReportSource,
    problems: list[str],
) -> ReportResult:
    """Nothing moves. An unpaid order is flagged for review (an admin credits or rejects it);
    an order already credited gets an alert instead, so no credited order is ever "under
    review" and a later genuine refund still applies. One review row and one message each."""
    now = core.now()
    reason = "; ".join(problems)
    paid = order.is_paid
    fields = _report_fields(report, source)
    earlier = uow.reviews.for_order(order.id) if order.review is not ReviewFlag.NONE else []
    if paid:
        text = f"report did not match a paid order: {reason}"
        uow.reviews.open(
            Review(
                None,
                order.id,
                ReviewKind.ALERT,
                text,
                now,
                key=f"alert:mismatch:{order.id}",
                report=fields,
            )
        )
        alert_once(
            uow,
            core,
            _alert_key(order, "mismatch"),
            notices.order_alert(order, "mismatch", now, reason),
            "system",
        )
        action = "report_mismatch_on_paid"
    elif any(r.kind is ReviewKind.MISMATCH and r.same_report(fields) for r in earlier):
        # An admin already resolved this very report (a replay, or the gateway retrying):
        # it is only logged.
        action = "report_mismatch_resolved_before"
    else:
        # A first mismatch, or a new one after an earlier review was resolved: the order is
        # back under the rules, so it is flagged again, with a review of its own.
        order.flag_for_review(now)
        uow.orders.save(order)
        mismatches = sum(r.kind is ReviewKind.MISMATCH for r in earlier)
        key = f"mismatch:{order.id}" + (f":{mismatches + 1}" if mismatches else "")
        review = Review(None, order.id, ReviewKind.MISMATCH, reason, now, key=key, report=fields)
        if uow.reviews.open(review):
            uow.outbox.add(notices.review_opened(order, reason, now))
        action = "report_mismatch"
    core.audit(
        uow,
        source.value,
        action,
        order.mch_order_no,
        reason=reason,
        state=int(report.state),
        **_amounts(report),
    )
    return ReportResult(Outcome.REVIEW, order.state, reason=reason)


def _alert_key(order: Order, what: str) -> str:
    return f"order:{order.id}:{what.replace(' ', '_')}"


def _report_fields(report: ProviderReport, source: ReportSource) -> dict[str, object]:
    return {
        "source": source.value,
        "state": int(report.state),
        "merchant": report.merchant,
        "currency": report.currency,
        **_amounts(report),
    }


def _amounts(report: ProviderReport) -> dict[str, object]:
    return {"amount": report.amount, "real_amount": report.real_amount}
