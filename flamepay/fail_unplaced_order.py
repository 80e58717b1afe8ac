"""An order the gateway does not know was never placed: it can never be paid, so it fails.

Failed (3), not closed (6): a close needs the provider's word. It goes through the same
table as a create response would (matched by order number only, never credits), so an order
that moved meanwhile (a fast notify) is treated as the table says.
"""

from __future__ import annotations

from flamepay.apply_report import ReportResult, apply_in
from flamepay.context import Core
from flamepay.order import OrderState
from flamepay.ports import UnitOfWork
from flamepay.report import ProviderReport, ReportSource


def never_placed(mch_order_no: str) -> ProviderReport:
    """The report that says so, applied with ReportSource.CREATE."""
    return ProviderReport(mch_order_no, OrderState.FAILED)


def fail_unplaced_order(core: Core, mch_order_no: str) -> ReportResult:
    return core.transaction(lambda uow: fail_unplaced_in(uow, core, mch_order_no))


def fail_unplaced_in(uow: UnitOfWork, core: Core, mch_order_no: str) -> ReportResult:
    """The body, for callers that already hold a unit of work."""
    return apply_in(uow, core, never_placed(mch_order_no), ReportSource.CREATE)
