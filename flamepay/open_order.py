"""Open a recharge order: store it, call the provider outside any transaction, apply the answer.

Transaction 1 reserves the merchant order number (state 0). The create call happens outside
it. Transaction 2 applies the create response through the state table, filling the provider
number and cashier URL only where still empty (a fast notify may have landed in between).
A timeout is resolved by a query, never by a second create.

The user is told our own sentences only; what the gateway said in a refusal goes to the
admins (flamepay.provider_faults), in the transaction that fails the order.
"""

from __future__ import annotations

from datetime import timedelta

import attrs

from flamepay import notices
from flamepay.apply_report import Outcome, ReportResult, apply_provider_report
from flamepay.context import Core
from flamepay.errors import (
    NotEligible,
    ProviderBadResponse,
    ProviderError,
    ProviderMerchantError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnknownOrder,
)
from flamepay.fail_unplaced_order import fail_unplaced_in, fail_unplaced_order
from flamepay.money import format_money
from flamepay.order import Order
from flamepay.ports import CreateOrderRequest, UnitOfWork
from flamepay.provider_faults import describe_refusal, merchant_fault
from flamepay.report import ReportSource

DUPLICATE_SUBMISSION = 2008
REFUSED = (
    "The gateway refused the order; nothing was charged. Try again later or pick another package."
)
NOT_CONFIRMED = "The gateway has not confirmed the order yet; check its status in a minute."


@attrs.frozen
class OpenedOrder:
    order: Order
    reused: bool = False  # an open order for the same package was handed back
    message: str = ""  # for the user when the order could not be placed at the provider

    @property
    def payable(self) -> bool:
        return self.order.is_open and self.order.cashier_url is not None


def open_recharge_order(core: Core, user_id: int, package_id: int) -> OpenedOrder:
    reserved = core.transaction(lambda uow: _reserve(uow, core, user_id, package_id))
    if reserved.reused:
        return reserved
    order = reserved.order
    request = CreateOrderRequest(
        mch_order_no=order.mch_order_no,
        amount=order.amount,
        currency=order.currency,
        way_code=order.way_code,
        subject=f"Recharge {order.mch_order_no}",
        expired_seconds=core.policy.expired_time_seconds,
    )
    message = ""
    try:
        response = core.provider.create_order(request)
    except ProviderRejected as rejected:
        if rejected.code == DUPLICATE_SUBMISSION:
            # 2008 may be a rate guard rather than a duplicate number: ask what happened.
            message = _resolve_by_query(core, order, "Too many requests; try again in a minute.")
        else:
            _fail_refused(core, order, rejected)
            if isinstance(rejected, ProviderMerchantError):
                merchant_fault(core, rejected, "an order's creation")
            message = REFUSED
    except (ProviderTimeout, ProviderBadResponse):
        message = _resolve_by_query(core, order, "The gateway did not take the order; try again.")
    else:
        result = apply_provider_report(core, response, ReportSource.CREATE)
        if result.outcome is Outcome.NEEDS_QUERY:
            # A 2 in a create response is applied only through a query.
            message = _resolve_by_query(core, order, "")
        elif result.outcome is Outcome.UNKNOWN_ORDER:  # pragma: no cover - stored just above
            raise AssertionError("order vanished between transactions")
    stored = _reload(core, order.mch_order_no)
    if not message and stored.is_open and stored.cashier_url is None:
        # The query confirmed the order but carries no payment page (only create does).
        message = "The gateway has the order but sent no payment page yet; check /status soon."
    return OpenedOrder(stored, message=message)


def _reserve(uow: UnitOfWork, core: Core, user_id: int, package_id: int) -> OpenedOrder:
    package = uow.catalogue.package(package_id)
    if package is None or not package.enabled:
        raise NotEligible("That package is not available.")
    existing = core.eligibility.check_open_order(uow, user_id, package)
    if existing is not None:
        return OpenedOrder(existing, reused=True)
    now = core.now()
    order = Order(
        id=0,
        mch_order_no=core.ids.order_number(),
        user_id=user_id,
        package_id=package.id,
        way_code=package.way_code,
        amount=package.amount,
        currency=core.policy.currency,
        fee_bp=core.policy.fee_bp,
        created_at=now,
        expires_at=now + timedelta(minutes=core.policy.order_expire_minutes),
        updated_at=now,
    )
    order = uow.orders.add(order)
    core.audit(
        uow,
        f"user:{user_id}",
        "order_opened",
        order.mch_order_no,
        amount=order.amount,
        fee_bp=order.fee_bp,
        package=package.id,
    )
    return OpenedOrder(order)


def _resolve_by_query(core: Core, order: Order, if_unknown: str) -> str:
    """After an unknown create outcome: query; apply what it says. Returns a user message."""
    try:
        report = core.provider.query_order(order.mch_order_no, order.provider_order_no)
    except ProviderUnknownOrder:
        fail_unplaced_order(core, order.mch_order_no)
        return if_unknown or "The gateway did not take the order; try again."
    except ProviderMerchantError as error:
        # Says nothing about the order (it may be stored at the gateway): it stays open.
        merchant_fault(core, error, "the query after an unconfirmed create")
        return NOT_CONFIRMED
    except ProviderError:
        # Still unknown: the order stays open and the reconciler asks again later.
        return NOT_CONFIRMED
    result: ReportResult = apply_provider_report(core, report, ReportSource.QUERY)
    if result.outcome is Outcome.REVIEW:
        return "The order is being checked by an admin."
    return ""


def _fail_refused(core: Core, order: Order, rejected: ProviderRejected) -> None:
    # Failed as never placed, and the admins hear what the gateway said in the same transaction
    # (the user is shown only our sentence: the gateway's text is not written for them).
    text = (
        f"Order {order.mch_order_no} (user {order.user_id}, "
        f"{format_money(order.amount, order.currency)}) was refused by the gateway "
        f"({describe_refusal(core, rejected)}). It is marked failed; nothing was charged."
    )

    def body(uow: UnitOfWork) -> None:
        fail_unplaced_in(uow, core, order.mch_order_no)
        uow.outbox.add(notices.to_admins("order_refused", text, core.now(), ref=order.mch_order_no))

    core.transaction(body)


def _reload(core: Core, mch_order_no: str) -> Order:
    def body(uow: UnitOfWork) -> Order:
        order = uow.orders.get_by_number(mch_order_no)
        assert order is not None
        return order

    return core.transaction(body)
