"""The admins' queues and the ledger export (read-only, admin only)."""

from __future__ import annotations

from collections.abc import Iterator

from flamepay.admin import require_admin
from flamepay.context import Core
from flamepay.ledger_views import LedgerLine
from flamepay.order import Order
from flamepay.payout import Payout
from flamepay.ports import UnitOfWork
from flamepay.records import Review

EXPORT_BATCH = 5000


def pending_payouts(core: Core, admin_id: int) -> list[Payout]:
    require_admin(core, admin_id, "payouts")
    return core.transaction(lambda uow: uow.payouts.pending())


def pending_reviews(core: Core, admin_id: int) -> list[tuple[Review, Order | None]]:
    require_admin(core, admin_id, "review")

    def body(uow: UnitOfWork) -> list[tuple[Review, Order | None]]:
        return [(r, uow.orders.get(r.order_id)) for r in uow.reviews.pending()]

    return core.transaction(body)


def export_ledger(core: Core, admin_id: int) -> Iterator[LedgerLine]:
    """Every ledger entry, oldest first, read in bounded batches (never all rows at once)."""
    require_admin(core, admin_id, "export")
    core.audit_alone(f"admin:{admin_id}", "ledger_exported", "ledger")
    after: int | None = None
    while True:

        def read(uow: UnitOfWork, a: int | None = after) -> list[LedgerLine]:
            return uow.ledger.export(a, EXPORT_BATCH)

        batch = core.transaction(read)
        yield from batch
        if len(batch) < EXPORT_BATCH:
            return
        after = batch[-1].id
