"""Closing an unpaid order at the provider: shared by cancel and expiry.

The provider is asked first. State 6 is applied only after a successful close or a query
that reports 6; when the close fails for any reason (paid meanwhile, already closed,
unknown, timeout) we query and apply whatever the provider says.
"""

from __future__ import annotations

import enum

import attrs

from flamepay.apply_report import ReportResult, apply_provider_report
from flamepay.context import Core
from flamepay.errors import ProviderError, ProviderMerchantError, ProviderUnknownOrder
from flamepay.fail_unplaced_order import fail_unplaced_order
from flamepay.order import Order, OrderState
from flamepay.provider_faults import merchant_fault
from flamepay.report import ProviderReport, ReportSource


class CloseOutcome(enum.Enum):
    CLOSED = "closed"  # the provider closed it; state 6 applied
    PROVIDER_SAID = "provider_said"  # the close failed; the query's answer was applied
    NEVER_PLACED = "never_placed"  # the provider does not know it: failed locally (3)
    UNKNOWN = "unknown"  # neither close nor query answered; nothing changed


@attrs.frozen
class Closed:
    outcome: CloseOutcome
    state: OrderState
    result: ReportResult | None = None
    merchant_error: bool = False  # the gateway refused our credentials (outcome UNKNOWN)


def close_at_provider(core: Core, order: Order, source: ReportSource) -> Closed:
    try:
        core.provider.close_order(order.mch_order_no)
    except ProviderMerchantError as error:
        return _merchant_refused(core, order, error)
    except ProviderError:
        return _settle_by_query(core, order, source)
    result = apply_provider_report(
        core, ProviderReport(order.mch_order_no, OrderState.CLOSED), ReportSource.CLOSE
    )
    return Closed(CloseOutcome.CLOSED, result.state or order.state, result)


def _settle_by_query(core: Core, order: Order, source: ReportSource) -> Closed:
    try:
        report = core.provider.query_order(order.mch_order_no, order.provider_order_no)
    except ProviderMerchantError as error:
        return _merchant_refused(core, order, error)
    except ProviderUnknownOrder:
        # Neither close nor query knows it: it never reached the provider.
        result = fail_unplaced_order(core, order.mch_order_no)
        return Closed(CloseOutcome.NEVER_PLACED, result.state or order.state, result)
    except ProviderError:
        return Closed(CloseOutcome.UNKNOWN, order.state)
    query_source = (
        ReportSource.RECONCILE if source is ReportSource.RECONCILE else ReportSource.QUERY
    )
    result = apply_provider_report(core, report, query_source)
    return Closed(CloseOutcome.PROVIDER_SAID, result.state or order.state, result)


def _merchant_refused(core: Core, order: Order, error: ProviderMerchantError) -> Closed:
    # Not "unknown order": the gateway did not look at the order at all. Asking again (the
    # fallback query) would be refused the same way.
    merchant_fault(core, error, "a close")
    return Closed(CloseOutcome.UNKNOWN, order.state, merchant_error=True)
