"""The two dialects of the Jeepay family: which fields are sent, and how answers are read.

Jeepay's server rejects a signature over any field it does not know, so each dialect sends
only its own fields. Answers are read with the known fallbacks (payOrderNo|payOrderId,
state|orderState, cashierUrl|payData).
"""

from __future__ import annotations

import json
import re
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


# --- refusals (code != 0) -----------------------------------------------------------------------
# Jeepay answers every business refusal with code 9999 (CUSTOM_FAIL) and a message: an order it
# does not have is "订单不存在" (QueryOrderController, CloseOrderController), and so is a merchant
# it does not know ("商户或商户应用不存在", ApiController.getRQByWithMchSign) or a bad sign
# ("验签失败"). Neither the code nor a word like 不存在 tells them apart: only the whole
# order-level message means "unknown order", and a merchant, app or sign refusal is told apart
# first, because it says nothing about any order.
BUSINESS_ERROR = 9999
_ORDER_LEVEL_MESSAGES = frozenset(
    {
        "订单不存在",
        "訂單不存在",
        "支付订单不存在",
        "支付訂單不存在",
        "order not exist",
        "order does not exist",
        "order not found",
        "order is not exist",
        "pay order not exist",
        "pay order does not exist",
        "pay order not found",
        "no such order",
        "unknown order",
    }
)
# Order numbers are named "merchant order" (商户订单号, mchOrderNo): not merchant-level words.
_ORDER_NUMBER_NAMES = ("商户订单", "商戶訂單", "merchant order", "mchorderno", "mch_order_no")
_MERCHANT_WORDS = (
    "商户",
    "商戶",
    "merchant",
    "mchno",
    "mch_no",
    "mch no",
    "应用",
    "應用",
    "appid",
    "app id",
    "app_id",
    "app not",
    "application",
    "签名",
    "簽名",
    "验签",
    "驗簽",
    "sign",
    "密钥",
    "密鑰",
    "secret",
    "白名单",
    "白名單",
    "whitelist",
    "white list",
)
_TRAILING_DETAIL = re.compile(r"\s*[\[(（【][^\[\]()（）【】]*[\])）】]\s*$")


def _normalised(message: str) -> str:
    # "订单不存在 (order does not exist)", "ORDER NOT EXIST[/api/pay/query]": a bracketed
    # detail at the end and closing punctuation do not change what the message says.
    text = _TRAILING_DETAIL.sub("", message.strip())
    return text.strip().rstrip(".!。！").strip().lower()


def is_merchant_refusal(message: str) -> bool:
    """A refusal of our merchant number, app, key or sign (not about any order)."""
    lowered = message.lower()
    for name in _ORDER_NUMBER_NAMES:
        lowered = lowered.replace(name, " ")
    return any(word in lowered for word in _MERCHANT_WORDS)


def is_unknown_order_refusal(code: int, message: str) -> bool:
    """The order-level answer for an order the gateway does not have (query, close)."""
    return code == BUSINESS_ERROR and _normalised(message) in _ORDER_LEVEL_MESSAGES


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


def report_from(
    data: Mapping[str, Any],
    mch_order_no: str | None = None,
    provider_order_no: str | None = None,
) -> ProviderReport:
    """A ProviderReport from a query answer or a create answer (strict integer fields).

    `mch_order_no` (and `provider_order_no`, when the order has one) is the order asked
    about: an answer naming another order is refused, never read as news of that other one.
    """
    named = first_of(data, "mchOrderNo")
    number = named if named is not None else mch_order_no
    state = first_of(data, "state", "orderState")
    if not isinstance(number, str) or not number or state is None:
        raise ProviderBadResponse("the answer names no order number or state")
    if mch_order_no is not None and number != mch_order_no:
        raise ProviderBadResponse("the answer is about another order number")
    named_provider_no = _text(first_of(data, "payOrderNo", "payOrderId"))
    if provider_order_no and named_provider_no and named_provider_no != provider_order_no:
        raise ProviderBadResponse("the answer is about another provider order number")
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
        provider_order_no=named_provider_no,
        cashier_url=_text(first_of(data, "cashierUrl", "payData")),
        raw={k: _text(v) or "" for k, v in data.items()},
    )
