"""An admin approves a pending payout: held moves to payouts:sent and fees (phase two)."""

from __future__ import annotations

from flamepay import ledger, notices
from flamepay.admin import require_admin
from flamepay.context import Core
from flamepay.errors import AlreadyDone, NotFound, Refused
from flamepay.payout import Payout
from flamepay.payout_rules import ensure_payouts_unblocked
from flamepay.ports import UnitOfWork


def approve_payout(
    core: Core, admin_id: int, payout_id: int, txid: str | None = None, note: str = ""
) -> Payout:
    require_admin(core, admin_id, "payout_approve", f"payout:{payout_id}")

    def body(uow: UnitOfWork) -> Payout:
        payout = uow.payouts.get_for_update(payout_id)
        if payout is None:
            raise NotFound(f"No payout #{payout_id}.")
        now = core.now()
        payout.approve(admin_id, now, txid, note)  # AlreadyResolved when it was resolved
        # Lock what the decision rests on (after the payout row, in ascending id) so the
        # balance checked is the one at our commit: a refund committed meanwhile is seen,
        # and one arriving later waits for us.
        journal = ledger.payout_post(payout.id, payout.user_id, payout.amount, payout.network_fee)
        uow.ledger.lock_balances(
            [ledger.available(payout.user_id), *(e.account for e in journal.entries)]
        )
        ensure_payouts_unblocked(uow, payout.user_id)
        try:
            uow.payouts.save(payout)
        except AlreadyDone:
            raise Refused(f"Transaction id {txid} is already recorded on another payout.") from None
        uow.ledger.post(journal, now)
        uow.outbox.add(notices.payout_approved(payout, now))
        uow.outbox.add(notices.payout_resolved_for_admins(payout, core.policy.currency, now))
        core.audit(
            uow,
            f"admin:{admin_id}",
            "payout_approved",
            f"payout:{payout.id}",
            amount=payout.amount,
            network_fee=payout.network_fee,
            txid=txid,
            note=note,
        )
        return payout

    return core.audited_transaction(
        body, f"admin:{admin_id}", "payout_approve_refused", f"payout:{payout_id}"
    )
