"""The operator's numbers: pay-ins, refunds, payouts, users and what FlamePay owes."""

from __future__ import annotations

import attrs

from flamepay import ledger
from flamepay.admin import require_admin
from flamepay.context import Core
from flamepay.ledger import JournalKind
from flamepay.payout import PayoutStatus
from flamepay.ports import UnitOfWork, UserCounts


@attrs.frozen
class Stats:
    payins: int
    payin_gross: int  # what payers paid
    payin_fees: int
    payin_net: int  # credited to users
    refunds: int
    refund_gross: int
    payouts_pending: tuple[int, int]  # (count, sum)
    payouts_sent: tuple[int, int]
    payouts_rejected: tuple[int, int]
    users: UserCounts
    liability: int  # sum of every user balance, available and held


def read_stats(core: Core, admin_id: int) -> Stats:
    require_admin(core, admin_id, "stats")

    def body(uow: UnitOfWork) -> Stats:
        payin = uow.ledger.kind_totals(JournalKind.PAYIN)
        refund = uow.ledger.kind_totals(JournalKind.REFUND)
        payouts = uow.payouts.totals()
        return Stats(
            payins=payin.count,
            payin_gross=-payin.of(ledger.CLEARING),
            payin_fees=payin.of(ledger.FEES),
            payin_net=payin.of("user:available"),
            refunds=refund.count,
            refund_gross=refund.of(ledger.CLEARING),
            payouts_pending=payouts[PayoutStatus.PENDING],
            payouts_sent=payouts[PayoutStatus.APPROVED],
            payouts_rejected=payouts[PayoutStatus.REJECTED],
            users=uow.users.counts(),
            liability=uow.ledger.user_liability(),
        )

    return core.transaction(body)
