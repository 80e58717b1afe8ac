"""Close the orders whose time ran out, at the provider first (the closing path)."""

from __future__ import annotations

from datetime import timedelta

from flamepay.closing import Closed, close_at_provider
from flamepay.context import Core
from flamepay.order import Order
from flamepay.ports import UnitOfWork
from flamepay.report import ReportSource

DEFAULT_BATCH = 50
# A claimed order is not claimed again by another runner for this long (the close and its
# fallback query take seconds; a close that did not settle is retried on a later pass).
CLAIM_WINDOW = timedelta(minutes=1)


def expire_due_orders(core: Core, batch: int = DEFAULT_BATCH) -> list[Closed]:
    """One bounded batch; orders under review are left out (an admin decides those). Each
    order is claimed first, so two job runners never close the same order twice."""
    now = core.now()

    def due(uow: UnitOfWork) -> list[Order]:
        return uow.orders.due_for_expiry(now, batch)

    closed = []
    for order in core.transaction(due):

        def take(uow: UnitOfWork, order: Order = order) -> bool:
            return uow.orders.claim_reconcile(order.id, core.now(), core.now() - CLAIM_WINDOW)

        if core.transaction(take):
            closed.append(close_at_provider(core, order, ReportSource.RECONCILE))
            if closed[-1].merchant_error:
                break  # the gateway refuses our credentials: every further close would fail
    return closed
