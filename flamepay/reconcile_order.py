"""An admin reconciles one order with the provider: query, apply through the report path
(source: reconcile), and say what it was before and after."""

from __future__ import annotations

import attrs

from flamepay.admin import require_admin
from flamepay.apply_report import ReportResult, apply_provider_report
from flamepay.context import Core
from flamepay.errors import NotFound, ProviderError, ProviderUnknownOrder, Refused
from flamepay.order import Order
from flamepay.ports import UnitOfWork
from flamepay.report import ReportSource


@attrs.frozen
class Reconciled:
    before: Order
    after: Order
    result: ReportResult | None
    provider_said: str


def reconcile_order(core: Core, admin_id: int, number: str) -> Reconciled:
    require_admin(core, admin_id, "reconcile", number[:64])
    return reconcile_as(core, f"admin:{admin_id}", number)


def reconcile_as(core: Core, actor: str, number: str) -> Reconciled:
    """The reconciliation itself, for an admin or the operator's command line."""

    def load(uow: UnitOfWork) -> Order:
        order = uow.orders.get_by_number(number.strip())
        if order is None:
            raise NotFound(f"No order {number[:64]}.")
        return order

    before = core.transaction(load)
    try:
        report = core.provider.query_order(before.mch_order_no)
    except ProviderUnknownOrder:
        return Reconciled(before, before, None, "the gateway does not know this order")
    except ProviderError as error:
        raise Refused(f"The gateway did not answer: {type(error).__name__}.") from None
    result = apply_provider_report(core, report, ReportSource.RECONCILE)
    after = core.transaction(load)
    core.audit_alone(
        actor,
        "reconcile",
        before.mch_order_no,
        before=int(before.state),
        after=int(after.state),
        outcome=result.outcome.value,
    )
    return Reconciled(before, after, result, f"state {int(report.state)}")
