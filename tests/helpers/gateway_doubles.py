"""A gateway behind httpx.MockTransport for the provider client's tests: it checks every
request's sign and answers in either dialect; plus the requests and answers they share."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any

import httpx
import pytest

from adapters.provider import signing
from adapters.provider.client import HttpProviderGateway
from adapters.provider.dialects import GGUSONEPAY, JEEPAY, Dialect, Merchant
from flamepay.ports import CreateOrderRequest

KEY = "merchant-key-for-tests-0123456789"
NOW = 1_767_268_800_123  # 13-digit epoch milliseconds
BASE = "https://gw.example.test"
NUMBER = "R20260101000001"
MERCHANT = Merchant(
    mch_no="M100",
    key=KEY,
    app_id="60cc09bce4b0f1c0b83761c9",
    client_ip="203.0.113.7",
    notify_url="https://pay.example.com/notify",
    return_url="https://t.me/flamepay_bot",
)
REQUEST = CreateOrderRequest(
    mch_order_no=NUMBER,
    amount=100_00,
    currency="USD",
    way_code="ALI_QR",
    subject=f"Recharge {NUMBER}",
    expired_seconds=1800,
)
DIALECTS = pytest.mark.parametrize("dialect", [GGUSONEPAY, JEEPAY], ids=lambda d: d.name)


def reference_sign(fields: dict[str, Any], key: str) -> str:
    """An independent signer for the flat bodies the client sends (str and int values)."""
    fragments = sorted(
        (f"{k}={v}&" for k, v in fields.items() if k != "sign" and v is not None and v != ""),
        key=str.lower,
    )
    return hashlib.md5(("".join(fragments) + f"key={key}").encode()).hexdigest().upper()


def ok(data: dict[str, Any] | None, sign: str | bool | None = True) -> dict[str, Any]:
    """A success envelope; sign=True signs `data` alone with the merchant key."""
    envelope: dict[str, Any] = {"code": 0, "msg": "SUCCESS"}
    if data is not None:
        envelope["data"] = data
    if sign is True:
        envelope["sign"] = signing.sign(data or {}, KEY)
    elif sign:
        envelope["sign"] = sign
    return envelope


Answer = dict[str, Any] | httpx.Response | Exception | type[Exception]


class Gateway:
    """Plays the gateway: checks method, header and the request's sign, records the decoded
    body, and answers with the next scripted answer (the last one repeats)."""

    def __init__(self, *answers: Answer) -> None:
        self.answers = list(answers)
        self.requests: list[tuple[str, dict[str, Any]]] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        assert request.method == "POST"
        assert request.headers["content-type"] == "application/json; charset=UTF-8"
        body = json.loads(request.content.decode("utf-8"))
        assert body["sign"] == reference_sign(body, KEY), "the request's sign is wrong"
        self.requests.append((request.url.path, body))
        answer = self.answers.pop(0) if len(self.answers) > 1 else self.answers[0]
        if isinstance(answer, type):
            answer = answer("scripted", request=request)  # type: ignore[call-arg]
        if isinstance(answer, Exception):
            raise answer
        if isinstance(answer, httpx.Response):
            return answer
        return httpx.Response(200, json=answer)

    @property
    def paths(self) -> list[str]:
        return [path for path, _ in self.requests]


def client(
    dialect: Dialect, gateway: Gateway, sleeps: list[float] | None = None, **options: Any
) -> HttpProviderGateway:
    return HttpProviderGateway(
        BASE,
        dialect,
        MERCHANT,
        transport=httpx.MockTransport(gateway),
        clock_ms=lambda: NOW,
        sleep=(sleeps.append if sleeps is not None else _no_sleep),
        **options,
    )


def _no_sleep(seconds: float) -> None:
    raise AssertionError(f"slept {seconds} s where no retry was expected")


def create_data(dialect: Dialect) -> dict[str, Any]:
    if dialect is GGUSONEPAY:
        return {
            "payOrderNo": "P0001",
            "mchOrderNo": NUMBER,
            "state": 1,
            "cashierUrl": "https://www.ggusonepay.com/cashier/P0001",
            "expireTimestamp": NOW + 1_800_000,
            "errCode": "",
            "errMsg": "",
        }
    return {
        "payOrderId": "P0001",
        "mchOrderNo": NUMBER,
        "orderState": 1,
        "payDataType": "payurl",
        "payData": "https://www.ggusonepay.com/cashier/P0001",
        "errCode": "",
        "errMsg": "",
    }


def query_data(dialect: Dialect, **changes: Any) -> dict[str, Any]:
    if dialect is GGUSONEPAY:
        data: dict[str, Any] = {
            "payOrderNo": "P0001",
            "mchNo": "M100",
            "mchOrderNo": NUMBER,
            "amount": 100_00,
            "realAmount": 100_00,
            "currency": "usd",
            "state": 2,
            "wayCode": "ALI_QR",
        }
    else:
        data = {
            "payOrderId": "P0001",
            "mchNo": "M100",
            "appId": MERCHANT.app_id,
            "mchOrderNo": NUMBER,
            "amount": 100_00,
            "currency": "usd",
            "state": 2,
            "successTime": NOW,
        }
    return {**data, **changes}


def close_data(dialect: Dialect) -> dict[str, Any]:
    return {"errCode": "", "errMsg": ""} if dialect is GGUSONEPAY else {}


def common_fields(dialect: Dialect, body: dict[str, Any]) -> dict[str, Any]:
    """The dialect's common request fields, checked for type, then returned for comparison."""
    if dialect is GGUSONEPAY:
        assert type(body["timestamp"]) is int and body["timestamp"] == NOW
        return {"mchNo": "M100", "timestamp": NOW, "signType": "MD5"}
    assert int(body["reqTime"]) == NOW and len(str(body["reqTime"])) == 13
    return {
        "mchNo": "M100",
        "appId": MERCHANT.app_id,
        "reqTime": body["reqTime"],
        "version": "1.0",
        "signType": "MD5",
    }


def fields_of(body: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in body.items() if k != "sign"}


# --- requests, field by field -------------------------------------------------------------------


# Each call of the port, by name.
CALLS: dict[str, Callable[[HttpProviderGateway], object]] = {
    "create": lambda gw: gw.create_order(REQUEST),
    "query": lambda gw: gw.query_order(NUMBER),
    "close": lambda gw: gw.close_order(NUMBER),
}
