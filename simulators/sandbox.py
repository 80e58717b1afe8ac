"""The sandbox gateway: a local ggusonepay/Jeepay peer with a cashier page.

It speaks the protocol of docs/provider-protocol.md with the project's own signer, so the
whole flow can be tried with fake money and the tests have a real peer over real sockets.
It binds to loopback only and is chosen only by PROVIDER_BASE_URL=sandbox.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import logging
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode

import httpx
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

from adapters.provider import signing
from flamepay.money import format_amount

log = logging.getLogger("flamepay.sandbox")

NOTIFY_SCHEDULE = (0, 30, 90, 180, 300, 450)  # seconds, as the real gateway
SELF_SETTLE_DELAY = 60  # extParam success/fail settles itself after about a minute
OPEN, PAYING, SUCCESS, FAILED, CANCELLED, REFUNDED, CLOSED, DISPUTED = range(8)
# Jeepay's answers (code 9999): an unknown order, an unknown merchant or app, a bad sign.
ORDER_UNKNOWN = "订单不存在"
MERCHANT_UNKNOWN = "商户或商户应用不存在"
SIGN_FAILED = "验签失败"


@dataclass
class Delivery:
    at: float
    outcome: str  # 'success', the body's first characters, an HTTP status or an error name


@dataclass
class SandboxOrder:
    mch_no: str
    mch_order_no: str
    pay_order_no: str
    amount: int
    currency: str
    way_code: str
    notify_url: str
    return_url: str
    expires_at: float
    ext_param: str
    created_at: float
    state: int = PAYING
    real_amount: int | None = None
    success_time: int | None = None
    deliveries: list[Delivery] = field(default_factory=list)


@dataclass
class SandboxConfig:
    mch_no: str
    key: str = field(repr=False)
    app_id: str = "sandbox-app"
    time_scale: float = 1.0
    late_success: bool = False
    notify_failures: bool = False
    duplicates: int = 1
    public_url: str = "http://127.0.0.1:9000"


class Sandbox:
    """The gateway's state and behaviour; the Starlette app below only translates HTTP."""

    def __init__(self, config: SandboxConfig, clock: Callable[[], float] = time.time) -> None:
        self.config = config
        self.clock = clock
        self.orders: dict[str, SandboxOrder] = {}  # by mchOrderNo (one merchant)
        self.by_pay_no: dict[str, str] = {}
        self._tasks: set[asyncio.Task] = set()
        self._http: httpx.AsyncClient | None = None

    # --- lifecycle --------------------------------------------------------------------------------
    async def start(self) -> None:
        self._http = httpx.AsyncClient(timeout=20)

    async def stop(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        for task in list(self._tasks):
            with contextlib.suppress(BaseException):
                await task
        if self._http is not None:
            await self._http.aclose()

    def _spawn(self, coro) -> None:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    def delay(self, seconds: float) -> float:
        return seconds / self.config.time_scale

    # --- the API ----------------------------------------------------------------------------------
    def envelope(self, data: dict[str, Any] | None, code: int = 0, msg: str = "SUCCESS") -> dict:
        if code != 0:
            return {"code": code, "msg": msg}
        data = data or {}
        return {"code": 0, "msg": msg, "data": data, "sign": signing.sign(data, self.config.key)}

    def check_request(self, body: Any) -> str | None:
        """None when the request is ours and signed; else the gateway's error message.

        Like Jeepay's ApiController: code 9999 with a merchant-level message for a wrong
        merchant number, app or sign, never the order-level "订单不存在"."""
        if not isinstance(body, dict):
            return "params error: expected a JSON object"
        if not body.get("mchNo") or not body.get("sign"):
            return "参数有误！"
        if body.get("mchNo") != self.config.mch_no:
            return MERCHANT_UNKNOWN
        if body.get("appId") and body.get("appId") != self.config.app_id:
            return MERCHANT_UNKNOWN
        if not signing.verify(body, self.config.key, body.get("sign")):
            return SIGN_FAILED
        return None

    def create(self, body: dict[str, Any], dialect: str) -> dict:
        number = body.get("mchOrderNo")
        amount = body.get("amount")
        if not isinstance(number, str) or not number:
            return self.envelope(None, 11, "params error: mchOrderNo")
        if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
            return self.envelope(None, 11, "params error: amount must be a positive integer")
        if number in self.orders:
            if dialect == "ggusonepay":
                return self.envelope(None, 2008, "DUPLICATE SUBMISSION[/api/pay/create]")
            return self.envelope(None, 9999, f"商户订单号[{number}]已存在 (duplicate mchOrderNo)")
        expired = body.get("expiredTime") or 7200
        if isinstance(expired, str) and expired.isdigit():
            expired = int(expired)
        if not isinstance(expired, int):
            return self.envelope(None, 11, "params error: expiredTime")
        now = self.clock()
        order = SandboxOrder(
            mch_no=self.config.mch_no,
            mch_order_no=number,
            pay_order_no="SBP" + secrets.token_hex(8).upper(),
            amount=amount,
            currency=str(body.get("currency") or "usd").lower(),
            way_code=str(body.get("wayCode") or ""),
            notify_url=str(body.get("notifyUrl") or ""),
            return_url=str(body.get("returnUrl") or ""),
            expires_at=now + self.delay(expired),
            ext_param=str(body.get("extParam") or ""),
            created_at=now,
        )
        self.orders[number] = order
        self.by_pay_no[order.pay_order_no] = number
        if order.ext_param in ("success", "fail"):
            self._spawn(self._settle_by_itself(order))
        cashier = f"{self.config.public_url}/cashier/{order.pay_order_no}"
        if dialect == "jeepay":
            data = {
                "payOrderId": order.pay_order_no,
                "mchOrderNo": number,
                "orderState": order.state,
                "payDataType": "payurl",
                "payData": cashier,
            }
        else:
            data = {
                "payOrderNo": order.pay_order_no,
                "mchOrderNo": number,
                "state": order.state,
                "cashierUrl": cashier,
                "expireTimestamp": int(order.expires_at * 1000),
            }
        return self.envelope(data)

    def find(self, body: dict[str, Any]) -> SandboxOrder | None:
        number = body.get("mchOrderNo")
        if not number:
            number = self.by_pay_no.get(str(body.get("payOrderNo") or body.get("payOrderId")))
        order = self.orders.get(str(number)) if number else None
        if order is not None:
            self.expire_if_due(order)
        return order

    def query(self, body: dict[str, Any], dialect: str) -> dict:
        order = self.find(body)
        if order is None:
            return self.envelope(None, 9999, ORDER_UNKNOWN)
        return self.envelope(self.order_fields(order, dialect))

    def close(self, body: dict[str, Any]) -> dict:
        order = self.find(body)
        if order is None:
            return self.envelope(None, 9999, ORDER_UNKNOWN)
        if order.state not in (OPEN, PAYING):
            return self.envelope(None, 9999, f"order state {order.state} cannot be closed")
        order.state = CLOSED
        return self.envelope({})

    def order_fields(self, order: SandboxOrder, dialect: str) -> dict[str, Any]:
        fields: dict[str, Any] = {
            "mchNo": order.mch_no,
            "mchOrderNo": order.mch_order_no,
            "amount": order.amount,
            "currency": order.currency,
            "state": order.state,
            "wayCode": order.way_code,
        }
        if dialect == "jeepay":
            fields.update(payOrderId=order.pay_order_no, appId=self.config.app_id)
        else:
            fields["payOrderNo"] = order.pay_order_no
            if order.real_amount is not None:
                fields["realAmount"] = order.real_amount
        if order.success_time:
            fields["successTime"] = order.success_time
        return fields

    def expire_if_due(self, order: SandboxOrder) -> None:
        # Like the real gateway: unpaid orders close at expiredTime, without a notify.
        if order.state in (OPEN, PAYING) and self.clock() >= order.expires_at:
            order.state = CLOSED

    # --- the cashier --------------------------------------------------------------------------
    def pay(self, order: SandboxOrder, real_amount: int | None) -> str | None:
        """None when paid; else why not."""
        self.expire_if_due(order)
        if not payable(order.state, self.config.late_success):
            return f"this order is {order.state} and cannot be paid"
        order.state = SUCCESS
        order.real_amount = order.amount if real_amount is None else real_amount
        order.success_time = int(self.clock() * 1000)
        self.schedule_notify(order)
        return None

    def fail(self, order: SandboxOrder) -> str | None:
        self.expire_if_due(order)
        if order.state not in (OPEN, PAYING):
            return f"this order is {order.state} and cannot fail"
        order.state = FAILED
        if self.config.notify_failures:
            self.schedule_notify(order)
        return None

    async def _settle_by_itself(self, order: SandboxOrder) -> None:
        await asyncio.sleep(self.delay(SELF_SETTLE_DELAY))
        if order.ext_param == "success":
            self.pay(order, None)
        else:
            self.fail(order)

    # --- notifies -----------------------------------------------------------------------------
    def notify_fields(self, order: SandboxOrder) -> dict[str, str]:
        fields = {k: str(v) for k, v in self.order_fields(order, "ggusonepay").items()}
        fields["timestamp"] = str(int(self.clock() * 1000))
        fields["sign"] = signing.sign(fields, self.config.key)
        return fields

    def schedule_notify(self, order: SandboxOrder) -> None:
        if order.notify_url:
            self._spawn(self._deliver(order, self.notify_fields(order)))

    async def _deliver(self, order: SandboxOrder, fields: dict[str, str]) -> None:
        # Every attempt carries the same payload and the same old timestamp, as the real one.
        previous = 0
        for at in NOTIFY_SCHEDULE:
            await asyncio.sleep(self.delay(at - previous))
            previous = at
            outcomes = await asyncio.gather(
                *(self._post(order, fields) for _ in range(max(1, self.config.duplicates)))
            )
            if "success" in outcomes:
                return

    async def _post(self, order: SandboxOrder, fields: dict[str, str]) -> str:
        assert self._http is not None
        try:
            response = await self._http.post(order.notify_url, data=fields)
            body = response.text
            outcome = (
                "success"
                if response.status_code == 200 and body == "success"
                else (f"HTTP {response.status_code}: {body[:40]}")
            )
        except Exception as error:
            # (an unusable URL raises InvalidURL, a bad port an ExceptionGroup: all recorded).
            outcome = type(error).__name__
        order.deliveries.append(Delivery(self.clock(), outcome))
        return outcome


# --- HTTP ----------------------------------------------------------------------------------------
def build_app(sandbox: Sandbox) -> Starlette:
    async def api(request: Request) -> Response:
        try:
            body = json.loads(await request.body())
        except (ValueError, UnicodeDecodeError):
            return JSONResponse(sandbox.envelope(None, 11, "params error: not JSON"))
        problem = sandbox.check_request(body)
        if problem:
            return JSONResponse(sandbox.envelope(None, 9999, problem))
        path = request.url.path
        dialect = "jeepay" if ("reqTime" in body or path.endswith("unifiedOrder")) else "ggusonepay"
        if path in ("/api/pay/create", "/api/pay/unifiedOrder"):
            answer = sandbox.create(body, dialect)
        elif path == "/api/pay/query":
            answer = sandbox.query(body, dialect)
        else:
            answer = sandbox.close(body)
        return JSONResponse(answer)

    def order_of(request: Request) -> SandboxOrder | None:
        number = sandbox.by_pay_no.get(request.path_params["pay_order_no"])
        return sandbox.orders.get(number) if number else None

    async def cashier(request: Request) -> Response:
        order = order_of(request)
        if order is None:
            return HTMLResponse(_page("Unknown order", "<p>No such order.</p>"), status_code=404)
        sandbox.expire_if_due(order)
        note = html.escape(request.query_params.get("note", ""))
        return HTMLResponse(_cashier_page(order, note, sandbox.config.late_success))

    async def act(request: Request) -> Response:
        order = order_of(request)
        if request.path_params["action"] not in ("pay", "fail"):
            return HTMLResponse(_page("Unknown action", "<p>No such action.</p>"), status_code=404)
        if order is None:
            return HTMLResponse(_page("Unknown order", "<p>No such order.</p>"), status_code=404)
        # A plain urlencoded form; parsed here so no multipart library is needed.
        form = dict(parse_qsl((await request.body()).decode("utf-8", "replace")))
        problem: str | None
        if request.path_params["action"] == "pay":
            raw = str(form.get("real_amount") or "").strip()
            real = None
            if raw:
                from flamepay.errors import InvalidAmount
                from flamepay.money import parse_amount

                try:
                    real = parse_amount(raw)
                except InvalidAmount as error:
                    problem = str(error)
                    return _back(order, problem)
            problem = sandbox.pay(order, real)
        else:
            problem = sandbox.fail(order)
        note = problem or ("Paid." if request.path_params["action"] == "pay" else "Failed.")
        return _back(order, note)

    async def health(request: Request) -> Response:
        return JSONResponse({"status": "ok", "orders": len(sandbox.orders)})

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette):
        await sandbox.start()
        try:
            yield
        finally:
            await sandbox.stop()

    routes = [
        Route("/api/pay/create", api, methods=["POST"]),
        Route("/api/pay/unifiedOrder", api, methods=["POST"]),
        Route("/api/pay/query", api, methods=["POST"]),
        Route("/api/pay/close", api, methods=["POST"]),
        Route("/cashier/{pay_order_no}", cashier, methods=["GET"]),
        Route("/cashier/{pay_order_no}/{action:str}", act, methods=["POST"]),
        Route("/healthz", health, methods=["GET"]),
    ]
    return Starlette(routes=routes, lifespan=lifespan)


def _back(order: SandboxOrder, note: str) -> RedirectResponse:
    return RedirectResponse(
        f"/cashier/{order.pay_order_no}?{urlencode({'note': note})}", status_code=303
    )


def payable(state: int, late_success: bool) -> bool:
    # SANDBOX_LATE_SUCCESS=1 lets the page pay failed, cancelled or closed orders (drills).
    return state in (OPEN, PAYING) or (late_success and state in (FAILED, CANCELLED, CLOSED))


STATE_NAMES = {
    0: "created",
    1: "waiting for payment",
    2: "paid",
    3: "failed",
    4: "cancelled",
    5: "refunded",
    6: "closed",
    7: "disputed",
}


def _page(title: str, content: str) -> str:
    return (
        "<!doctype html><html><head><meta charset='utf-8'>"
        f"<title>{html.escape(title)}</title>"
        "<meta name='viewport' content='width=device-width, initial-scale=1'>"
        "<style>body{font-family:sans-serif;max-width:32rem;margin:2rem auto;padding:0 1rem}"
        "button{font-size:1.1rem;padding:.5rem 1.2rem;margin:.3rem}"
        ".banner{background:#fe0;padding:.4rem;font-weight:bold}</style></head><body>"
        "<div class='banner'>SANDBOX — no real money moves</div>"
        f"{content}</body></html>"
    )


def _cashier_page(order: SandboxOrder, note: str, late_success: bool) -> str:
    state = STATE_NAMES.get(order.state, str(order.state))
    can_pay = payable(order.state, late_success)
    amount = f"{format_amount(order.amount)} {html.escape(order.currency.upper())}"
    rows = "".join(
        f"<li>{time.strftime('%H:%M:%S', time.gmtime(d.at))} UTC: {html.escape(d.outcome)}</li>"
        for d in order.deliveries
    )
    actions = ""
    if can_pay:
        actions = (
            f"<form method='post' action='/cashier/{order.pay_order_no}/pay'>"
            "<label>Amount actually paid <input name='real_amount' id='real_amount' "
            f"value='{format_amount(order.amount)}'></label><br>"
            "<button id='pay' type='submit'>Pay</button></form>"
        )
        if order.state in (OPEN, PAYING):
            actions += (
                f"<form method='post' action='/cashier/{order.pay_order_no}/fail'>"
                "<button id='fail' type='submit'>Fail</button></form>"
            )
    return _page(
        f"Order {order.mch_order_no}",
        f"<h1>Order {html.escape(order.mch_order_no)}</h1>"
        f"<p>Amount: <b id='amount'>{amount}</b></p>"
        f"<p>State: <b id='state'>{html.escape(state)}</b></p>"
        + (f"<p id='note'>{note}</p>" if note else "")
        + actions
        + f"<h2>Notify deliveries</h2><ul id='deliveries'>{rows or '<li>none yet</li>'}</ul>",
    )


def sandbox_config(app, public_url: str) -> SandboxConfig:
    """The sandbox's settings from the wired application (the installation's merchant)."""
    settings = app.settings
    return SandboxConfig(
        mch_no=app.merchant.mch_no,
        key=app.merchant.key,
        app_id=settings.provider.app_id or "sandbox-app",
        time_scale=float(settings.sandbox_time_scale),
        late_success=settings.sandbox_late_success,
        notify_failures=settings.sandbox_notify_failures,
        duplicates=settings.sandbox_duplicates,
        public_url=public_url,
    )
