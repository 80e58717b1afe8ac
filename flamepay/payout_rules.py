"""Rules shared by payout request and approval."""

from __future__ import annotations

from flamepay import ledger
from flamepay.errors import Refused
from flamepay.ports import UnitOfWork


def ensure_payouts_unblocked(uow: UnitOfWork, user_id: int) -> None:
    """Payouts wait while any order of the user is disputed or their available is negative
    (a refund reversal took back money that already left)."""
    if uow.orders.has_disputed(user_id):
        raise Refused("Payouts are on hold while a payment of this user is disputed.")
    if uow.ledger.balance(ledger.available(user_id)) < 0:
        raise Refused("Payouts are on hold while the available balance is below zero.")
