"""Close the orders whose time ran out, at the provider first (the closing path)."""

from __future__ import annotations

from flamepay.closing import Closed, close_at_provider
from flamepay.context import Core
from flamepay.ports import UnitOfWork
from flamepay.report import ReportSource

DEFAULT_BATCH = 50


def expire_due_orders(core: Core, batch: int = DEFAULT_BATCH) -> list[Closed]:
    """One bounded batch; orders under review are left out (an admin decides those)."""
    now = core.now()

    def due(uow: UnitOfWork) -> list:
        return uow.orders.due_for_expiry(now, batch)

    return [
        close_at_provider(core, order, ReportSource.RECONCILE) for order in core.transaction(due)
    ]
