"""The two dialects of the Jeepay family: which fields are sent, and how answers are read.

Jeepay's server rejects a signature over any field it does not know, so each dialect sends
only its own fields. Answers are read with the known fallbacks (payOrderNo|payOrderId,
state|orderState, cashierUrl|payData).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import attrs

from flamepay.errors import ProviderBadResponse
from flamepay.money import parse_provider_integer
from flamepay.order import OrderState
from flamepay.ports import CreateOrderRequest
from flamepay.report import ProviderReport


@attrs.frozen
class Merchant:
    mch_no: str
    key: str = attrs.field(repr=False)
    app_id: str = ""
    client_ip: str = "127.0.0.1"
    notify_url: str = ""
    return_url: str = ""


@attrs.frozen
class Dialect:
    name: str
    create_path: str
    time_field: str  # 'timestamp' (ggusonepay) or 'reqTime' (jeepay)
    provider_id_field: str  # the name used when querying by the provider's number

    def common(self, merchant: Merchant, now_ms: int) -> dict[str, Any]:
        fields: dict[str, Any] = {"mchNo": merchant.mch_no, "signType": "MD5"}
        if self.name == "jeepay":
            fields.update(appId=merchant.app_id, reqTime=str(now_ms), version="1.0")
        else:
            fields["timestamp"] = now_ms
        return fields

    def create_body(self, merchant: Merchant, request: CreateOrderRequest) -> dict[str, Any]:
        body: dict[str, Any] = {
            "mchOrderNo": request.mch_order_no,
            "wayCode": request.way_code,
            "amount": request.amount,  # integer cents, never a float
            "currency": request.currency.lower(),
            "subject": request.subject,
            "body": request.subject,
            "clientIp": merchant.client_ip,
            "notifyUrl": merchant.notify_url,
            "returnUrl": merchant.return_url,
            "expiredTime": request.expired_seconds,
        }
        if request.ext_param:
            body["extParam"] = request.ext_param
        return body


GGUSONEPAY = Dialect("ggusonepay", "/api/pay/create", "timestamp", "payOrderNo")
JEEPAY = Dialect("jeepay", "/api/pay/unifiedOrder", "reqTime", "payOrderId")
DIALECTS = {d.name: d for d in (GGUSONEPAY, JEEPAY)}

QUERY_PATH = "/api/pay/query"
CLOSE_PATH = "/api/pay/close"


def first_of(data: Mapping[str, Any], *names: str) -> Any:
    for name in names:
        value = data.get(name)
        if value is not None and value != "":
            return value
    return None


def _text(value: Any) -> str | None:
    if value is None:
        return None
    if isinstance(value, Mapping | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def report_from(data: Mapping[str, Any], mch_order_no: str | None = None) -> ProviderReport:
    """A ProviderReport from a query answer or a create answer (strict integer fields)."""
    number = first_of(data, "mchOrderNo") or mch_order_no
    state = first_of(data, "state", "orderState")
    if not isinstance(number, str) or not number or state is None:
        raise ProviderBadResponse("the answer names no order number or state")
    try:
        state_value = OrderState(parse_provider_integer(state, "state"))
        amount = data.get("amount")
        real = data.get("realAmount")
        amount_value = None if amount in (None, "") else parse_provider_integer(amount, "amount")
        real_value = None if real in (None, "") else parse_provider_integer(real, "realAmount")
    except ValueError as error:
        raise ProviderBadResponse(f"malformed field in the answer: {error}") from None
    return ProviderReport(
        mch_order_no=number,
        state=state_value,
        amount=amount_value,
        real_amount=real_value,
        currency=_text(first_of(data, "currency")),
        merchant=_text(first_of(data, "mchNo")),
        provider_order_no=_text(first_of(data, "payOrderNo", "payOrderId")),
        cashier_url=_text(first_of(data, "cashierUrl", "payData")),
        raw={k: _text(v) or "" for k, v in data.items()},
    )
