"""The texts of outbox messages. Plain text: the bot escapes and prefixes ([SANDBOX]) them."""

from __future__ import annotations

from datetime import datetime

from flamepay.money import format_money
from flamepay.order import STATE_LABELS, Order
from flamepay.payout import Payout
from flamepay.records import Audience, OutboxMessage


def to_user(user_id: int, kind: str, text: str, now: datetime, ref: str = "") -> OutboxMessage:
    return OutboxMessage(Audience.USER, kind, text, now, user_id=user_id, ref=ref)


def to_admins(kind: str, text: str, now: datetime, ref: str = "") -> OutboxMessage:
    return OutboxMessage(Audience.ADMINS, kind, text, now, ref=ref)


def order_credited(order: Order, credit: int, available: int, now: datetime) -> OutboxMessage:
    return to_user(
        order.user_id,
        "order_credited",
        f"Order {order.mch_order_no} is paid: {format_money(credit, order.currency)} credited. "
        f"Available: {format_money(available, order.currency)}.",
        now,
        ref=order.mch_order_no,
    )


def credit_reversed(order: Order, amount: int, available: int, now: datetime) -> OutboxMessage:
    return to_user(
        order.user_id,
        "credit_reversed",
        f"Order {order.mch_order_no} was refunded by the provider: "
        f"{format_money(amount, order.currency)} taken back. "
        f"Available: {format_money(available, order.currency)}.",
        now,
        ref=order.mch_order_no,
    )


def order_alert(order: Order, what: str, now: datetime, extra: str = "") -> OutboxMessage:
    text = (
        f"Alert: {what} on order {order.mch_order_no} (user {order.user_id}, "
        f"{format_money(order.amount, order.currency)}, now {STATE_LABELS[order.state]})."
    )
    return to_admins(
        f"alert_{what.replace(' ', '_')}",
        text + (" " + extra if extra else ""),
        now,
        ref=order.mch_order_no,
    )


def review_opened(order: Order, reason: str, now: datetime) -> OutboxMessage:
    return to_admins(
        "review_opened",
        f"Review: order {order.mch_order_no} (user {order.user_id}, "
        f"{format_money(order.amount, order.currency)}) did not match the provider's report: "
        f"{reason}. Nothing was credited; resolve it with /review.",
        now,
        ref=order.mch_order_no,
    )


def payout_requested(payout: Payout, currency: str, now: datetime) -> OutboxMessage:
    return to_admins(
        "payout_requested",
        f"Payout #{payout.id} requested by user {payout.user_id}: "
        f"{format_money(payout.amount, currency)} to {payout.network.label} {payout.address}; "
        f"to send: {format_money(payout.to_receive, 'USDT')}.",
        now,
        ref=f"payout:{payout.id}",
    )


def payout_approved(payout: Payout, now: datetime) -> OutboxMessage:
    txid = f" Transaction: {payout.txid}." if payout.txid else ""
    return to_user(
        payout.user_id,
        "payout_approved",
        f"Payout #{payout.id} was approved: {format_money(payout.to_receive, 'USDT')} sent to "
        f"{payout.network.label} {payout.address}.{txid}",
        now,
        ref=f"payout:{payout.id}",
    )


def payout_rejected(payout: Payout, currency: str, now: datetime) -> OutboxMessage:
    return to_user(
        payout.user_id,
        "payout_rejected",
        f"Payout #{payout.id} was rejected: {payout.note}. "
        f"{format_money(payout.amount, currency)} is back in your available balance.",
        now,
        ref=f"payout:{payout.id}",
    )


def payout_resolved_for_admins(payout: Payout, currency: str, now: datetime) -> OutboxMessage:
    # Tells the bot to edit every admin's copy of the request, so two admins cannot both pay.
    how = payout.status.value
    return to_admins(
        "payout_resolved",
        f"Payout #{payout.id} ({format_money(payout.amount, currency)}, user {payout.user_id}) "
        f"was {how} by {payout.resolved_by}.",
        now,
        ref=f"payout:{payout.id}",
    )
