"""A fake ProviderGateway for tests: an in-process gateway with switchable faults.

It keeps orders the way the real gateway does (create once per number, close only from 0/1)
and lets a test pay, fail, refund or dispute them, and make the next calls misbehave.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass

from flamepay.errors import (
    ProviderBadResponse,
    ProviderMerchantError,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnknownOrder,
)
from flamepay.order import OPEN_STATES, OrderState
from flamepay.ports import CreateOrderRequest
from flamepay.report import ProviderReport


@dataclass
class FakeOrder:
    mch_order_no: str
    pay_order_no: str
    amount: int
    currency: str
    state: OrderState = OrderState.PAYING
    real_amount: int | None = None


class FakeProvider:
    def __init__(self, merchant: str = "M100", currency: str = "usd") -> None:
        self.merchant = merchant
        self.currency = currency
        self.orders: dict[str, FakeOrder] = {}
        self.calls: list[tuple[str, str]] = []
        self._ids = itertools.count(1)
        # Faults, each consumed by the next call of its kind.
        self.create_timeout_after_storing: bool | None = None  # True: stored, then timeout
        self.create_rejection: tuple[int, str] | None = None
        self.create_reports_success = False
        self.query_timeouts = 0
        self.close_failures = 0
        self.close_timeouts = 0
        # Not consumed: wrong credentials (mchNo, key) fail every call until fixed, the way a
        # Jeepay-family gateway answers them, e.g. (9999, "商户不存在") or (9999, "验签失败").
        self.merchant_error: tuple[int, str] | None = None

    def _check_merchant(self) -> None:
        if self.merchant_error is not None:
            raise ProviderMerchantError(*self.merchant_error)

    # --- the port -----------------------------------------------------------------------
    def create_order(self, request: CreateOrderRequest) -> ProviderReport:
        self.calls.append(("create", request.mch_order_no))
        self._check_merchant()
        if self.create_rejection is not None:
            code, message = self.create_rejection
            self.create_rejection = None
            raise ProviderRejected(code, message)
        if request.mch_order_no in self.orders:
            raise ProviderRejected(9999, "duplicate mchOrderNo")
        timeout = self.create_timeout_after_storing
        self.create_timeout_after_storing = None
        if timeout is False:
            raise ProviderTimeout("create timed out before the gateway stored it")
        order = FakeOrder(
            request.mch_order_no, f"P{next(self._ids):010d}", request.amount, self.currency
        )
        self.orders[order.mch_order_no] = order
        if timeout is True:
            raise ProviderTimeout("create timed out after the gateway stored it")
        state = OrderState.SUCCESS if self.create_reports_success else order.state
        return ProviderReport(
            mch_order_no=order.mch_order_no,
            state=state,
            provider_order_no=order.pay_order_no,
            cashier_url=f"https://pay.example.test/cashier/{order.pay_order_no}",
        )

    def query_order(
        self, mch_order_no: str, provider_order_no: str | None = None
    ) -> ProviderReport:
        self.calls.append(("query", mch_order_no))
        self._check_merchant()
        if self.query_timeouts:
            self.query_timeouts -= 1
            raise ProviderTimeout("query timed out")
        order = self.orders.get(mch_order_no)
        if order is None:
            # The order-level answer (Jeepay: code 9999, "订单不存在").
            raise ProviderUnknownOrder("订单不存在")
        if provider_order_no and provider_order_no != order.pay_order_no:
            raise ProviderBadResponse("the answer is about another provider order number")
        return self.report(mch_order_no)

    def close_order(self, mch_order_no: str) -> None:
        self.calls.append(("close", mch_order_no))
        self._check_merchant()
        if self.close_timeouts:
            self.close_timeouts -= 1
            raise ProviderTimeout("close timed out")
        if self.close_failures:
            self.close_failures -= 1
            raise ProviderBadResponse("close answered garbage")
        order = self.orders.get(mch_order_no)
        if order is None:
            raise ProviderUnknownOrder("订单不存在")
        if order.state not in OPEN_STATES:
            raise ProviderRejected(9999, f"order in state {int(order.state)} cannot be closed")
        order.state = OrderState.CLOSED

    # --- what a test does at the gateway -------------------------------------------------
    def report(
        self,
        mch_order_no: str,
        *,
        amount: int | None = None,
        real_amount: int | None = None,
        currency: str | None = None,
        merchant: str | None = None,
        state: OrderState | None = None,
    ) -> ProviderReport:
        """What a notify or query would carry now; keyword arguments tamper with it."""
        order = self.orders[mch_order_no]
        return ProviderReport(
            mch_order_no=order.mch_order_no,
            state=order.state if state is None else state,
            amount=order.amount if amount is None else amount,
            real_amount=order.real_amount if real_amount is None else real_amount,
            currency=currency or order.currency,
            merchant=merchant or self.merchant,
            provider_order_no=order.pay_order_no,
        )

    def set_state(
        self, mch_order_no: str, state: OrderState, real_amount: int | None = None
    ) -> None:
        order = self.orders[mch_order_no]
        order.state = OrderState(state)
        if real_amount is not None:
            order.real_amount = real_amount

    def pay(self, mch_order_no: str, real_amount: int | None = None) -> ProviderReport:
        order = self.orders[mch_order_no]
        self.set_state(
            mch_order_no, OrderState.SUCCESS, order.amount if real_amount is None else real_amount
        )
        return self.report(mch_order_no)
