"""An admin credits or debits a user's available balance, with a reason, against
platform:adjustments. A debit may not take available below zero (the ledger's floor)."""

from __future__ import annotations

from flamepay import ledger
from flamepay.admin import require_admin
from flamepay.context import Core
from flamepay.errors import InsufficientFunds, NotFound, Refused
from flamepay.ledger import Journal
from flamepay.money import MAX_USER_AMOUNT, format_money, require_cents
from flamepay.ports import UnitOfWork

MAX_REASON = 200
# What an admin can type; checked here too, because a larger int from another caller would
# otherwise reach the ledger columns (BIGINT / SQLite INTEGER) and fail there.
MAX_ADJUSTMENT = MAX_USER_AMOUNT


def adjust_balance(core: Core, admin_id: int, user_id: int, amount: int, reason: str) -> Journal:
    require_admin(core, admin_id, "adjust", f"user:{user_id}")
    require_cents(amount)
    reason = " ".join(reason.split())
    if amount == 0:
        raise Refused("Expected a non-zero amount like +10.00 or -5.")
    if abs(amount) > MAX_ADJUSTMENT:
        maximum = format_money(MAX_ADJUSTMENT, core.policy.currency)
        raise Refused(f"Expected an adjustment of at most {maximum} either way, like +10.00 or -5.")
    if not reason or len(reason) > MAX_REASON:
        raise Refused(f"An adjustment needs a reason of 1 to {MAX_REASON} characters.")
    currency = core.policy.currency
    journal = ledger.adjustment(core.ids.token(), user_id, amount, reason)

    def body(uow: UnitOfWork) -> Journal:
        if uow.users.get(user_id) is None:
            raise NotFound(f"No user {user_id}: they have not talked to the bot yet.")
        try:
            uow.ledger.post(journal, core.now())
        except InsufficientFunds:
            balance = uow.ledger.balance(ledger.available(user_id))
            raise Refused(
                f"A debit of {format_money(-amount, currency)} would take user {user_id} below "
                f"zero (available {format_money(balance, currency)})."
            ) from None
        core.audit(
            uow,
            f"admin:{admin_id}",
            "balance_adjusted",
            f"user:{user_id}",
            amount=amount,
            reason=reason,
            journal=journal.key,
        )
        return journal

    return core.audited_transaction(
        body, f"admin:{admin_id}", "adjust_refused", f"user:{user_id}", amount=amount
    )
