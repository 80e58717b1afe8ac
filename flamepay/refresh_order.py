"""A user asks the provider about an order of theirs: query outside any transaction, then
apply the answer through the one report path (source: query)."""

from __future__ import annotations

from flamepay.apply_report import apply_provider_report
from flamepay.context import Core
from flamepay.errors import ProviderError
from flamepay.order import Order
from flamepay.report import ReportSource
from flamepay.user_orders import user_order


def refresh_order(core: Core, user_id: int, number: str) -> tuple[Order, bool]:
    """(the order as stored after the query, whether the provider answered)."""
    order = user_order(core, user_id, number)  # ownership first: NotFound for others' orders
    try:
        report = core.provider.query_order(order.mch_order_no)
    except ProviderError:
        return order, False
    apply_provider_report(core, report, ReportSource.QUERY)
    return user_order(core, user_id, order.mch_order_no), True
