"""An admin rejects a pending payout: held goes back to available. Always allowed."""

from __future__ import annotations

from flamepay import ledger, notices
from flamepay.admin import require_admin
from flamepay.context import Core
from flamepay.errors import NotFound, Refused
from flamepay.payout import Payout
from flamepay.ports import UnitOfWork


def reject_payout(core: Core, admin_id: int, payout_id: int, reason: str) -> Payout:
    require_admin(core, admin_id, "payout_reject", f"payout:{payout_id}")
    reason = reason.strip()

    def body(uow: UnitOfWork) -> Payout:
        if not reason:
            raise Refused("A rejection needs a reason; the user is told it.")
        payout = uow.payouts.get_for_update(payout_id)
        if payout is None:
            raise NotFound(f"No payout #{payout_id}.")
        now = core.now()
        payout.reject(admin_id, now, reason)  # AlreadyResolved when it was resolved
        uow.payouts.save(payout)
        uow.ledger.post(ledger.payout_void(payout.id, payout.user_id, payout.amount), now)
        uow.outbox.add(notices.payout_rejected(payout, core.policy.currency, now))
        uow.outbox.add(notices.payout_resolved_for_admins(payout, core.policy.currency, now))
        core.audit(
            uow,
            f"admin:{admin_id}",
            "payout_rejected",
            f"payout:{payout.id}",
            amount=payout.amount,
            reason=reason,
        )
        return payout

    return core.audited_transaction(
        body, f"admin:{admin_id}", "payout_reject_refused", f"payout:{payout_id}"
    )
