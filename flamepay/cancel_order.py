"""A user cancels an unpaid order of theirs: the closing path, after ownership and state."""

from __future__ import annotations

from flamepay.closing import Closed, close_at_provider
from flamepay.context import Core
from flamepay.errors import NotFound, Refused
from flamepay.order import STATE_LABELS, Order
from flamepay.ports import UnitOfWork
from flamepay.report import ReportSource


def cancel_order(core: Core, user_id: int, number: str) -> Closed:
    def load(uow: UnitOfWork) -> Order:
        order = uow.orders.get_by_number(number)
        # Another user's order is reported exactly like a missing one: no probing.
        if order is None or order.user_id != user_id:
            raise NotFound("No such order of yours. Expected an order number from /orders.")
        if not order.is_open:
            raise Refused(
                f"Order {order.mch_order_no} is {STATE_LABELS[order.state]}; "
                "only an unpaid order can be cancelled."
            )
        if order.under_review:
            raise Refused(f"Order {order.mch_order_no} is being checked by an admin.")
        core.audit(uow, f"user:{user_id}", "order_cancel_requested", order.mch_order_no)
        return order

    order = core.audited_transaction(load, f"user:{user_id}", "order_cancel_refused", number[:64])
    return close_at_provider(core, order, ReportSource.QUERY)
