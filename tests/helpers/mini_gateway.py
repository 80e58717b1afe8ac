"""A small Jeepay-family gateway behind httpx.MockTransport, keeping orders like the real
one, for the provider client driven through the core's use cases."""

from __future__ import annotations

import json
from typing import Any
from urllib.parse import urlencode

import httpx

from adapters.provider import signing
from adapters.provider.client import HttpProviderGateway
from adapters.provider.dialects import GGUSONEPAY, JEEPAY, Dialect, Merchant
from tests.helpers.support import MERCHANT, World, make_world

KEY = "gateway-key-for-core-tests-0123"
NOW_MS = 1_767_268_800_000
NOTIFY_URL = "https://pay.example.com/notify"
CREATE, QUERY, CLOSE = "create", "query", "close"


class MiniGateway:
    """Stores orders on create, answers query with the stored state, signs every `data`."""

    def __init__(self, dialect: Dialect) -> None:
        self.dialect = dialect
        self.orders: dict[str, dict[str, Any]] = {}
        self.requests: list[tuple[str, dict[str, Any]]] = []
        self.create_timeout: str | None = None  # 'after-storing' | 'before-storing'
        self.query_timeouts = 0

    # --- what the test drives ---------------------------------------------------------------
    def kinds(self, number: str | None = None) -> list[str]:
        paths = {self.dialect.create_path: CREATE, "/api/pay/query": QUERY}
        paths["/api/pay/close"] = CLOSE
        return [
            paths[p] for p, body in self.requests if number is None or body["mchOrderNo"] == number
        ]

    def pay(self, number: str) -> None:
        self.orders[number].update(state=2, successTime=NOW_MS + 60_000)

    def notify_body(self, number: str) -> bytes:
        """What the gateway POSTs to notifyUrl: the query fields, a timestamp and the sign."""
        order = self.orders[number]
        assert order["notifyUrl"] == NOTIFY_URL
        fields = {k: str(v) for k, v in self._data(order).items()}
        fields[self.dialect.time_field] = str(NOW_MS + 61_000)
        return urlencode(signing.signed(fields, KEY)).encode()

    # --- the gateway ------------------------------------------------------------------------
    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content.decode("utf-8"))
        if not signing.verify(body, KEY, body.get("sign")):
            return httpx.Response(200, json={"code": 9999, "msg": "签名失败"})
        self.requests.append((request.url.path, body))
        number = body["mchOrderNo"]
        if request.url.path == self.dialect.create_path:
            return self._create(request, body)
        order = self.orders.get(number)
        if request.url.path == "/api/pay/query":
            if self.query_timeouts:
                self.query_timeouts -= 1
                raise httpx.ReadTimeout("no answer", request=request)
            if order is None:
                return httpx.Response(200, json={"code": 9999, "msg": "订单不存在"})
            return self._ok(self._data(order))
        if order is None:
            return httpx.Response(200, json={"code": 9999, "msg": "订单不存在"})
        order["state"] = 6
        return self._ok({} if self.dialect is JEEPAY else {"errCode": "", "errMsg": ""})

    def _create(self, request: httpx.Request, body: dict[str, Any]) -> httpx.Response:
        number = body["mchOrderNo"]
        if self.create_timeout == "before-storing":
            self.create_timeout = None
            raise httpx.ReadTimeout("lost on the way", request=request)
        if number in self.orders:
            return httpx.Response(200, json={"code": 9999, "msg": "商户订单号重复"})
        pay_no = f"P{len(self.orders) + 1:010d}"
        self.orders[number] = {
            "payNo": pay_no,
            "mchNo": body["mchNo"],
            "mchOrderNo": number,
            "amount": body["amount"],
            "currency": body["currency"],
            "wayCode": body["wayCode"],
            "notifyUrl": body["notifyUrl"],
            "state": 1,
        }
        if self.create_timeout == "after-storing":
            self.create_timeout = None
            raise httpx.ReadTimeout("stored, then silence", request=request)
        cashier = f"https://cashier.example.test/{pay_no}"
        if self.dialect is GGUSONEPAY:
            data = {"payOrderNo": pay_no, "mchOrderNo": number, "state": 1, "cashierUrl": cashier}
        else:
            data = {"payOrderId": pay_no, "mchOrderNo": number, "orderState": 1}
            data.update(payDataType="payurl", payData=cashier)
        return self._ok(data)

    def _data(self, order: dict[str, Any]) -> dict[str, Any]:
        id_field = "payOrderNo" if self.dialect is GGUSONEPAY else "payOrderId"
        data = {
            id_field: order["payNo"],
            "mchNo": order["mchNo"],
            "mchOrderNo": order["mchOrderNo"],
            "amount": order["amount"],
            "currency": order["currency"],
            "state": order["state"],
            "wayCode": order["wayCode"],
        }
        if self.dialect is GGUSONEPAY:
            data["realAmount"] = order["amount"]
        if "successTime" in order:
            data["successTime"] = order["successTime"]
        return data

    def _ok(self, data: dict[str, Any]) -> httpx.Response:
        envelope = {"code": 0, "msg": "SUCCESS", "data": data, "sign": signing.sign(data, KEY)}
        return httpx.Response(200, json=envelope)


def world_on(dialect: Dialect) -> tuple[World, MiniGateway, HttpProviderGateway]:
    world = make_world()
    gateway = MiniGateway(dialect)
    client = HttpProviderGateway(
        "https://gw.example.test",
        dialect,
        Merchant(MERCHANT, KEY, app_id="app-1", client_ip="203.0.113.7", notify_url=NOTIFY_URL),
        require_query_sign=True,
        transport=httpx.MockTransport(gateway),
        clock_ms=lambda: NOW_MS,
        sleep=lambda seconds: None,
    )
    world.core.provider = client
    return world, gateway, client
