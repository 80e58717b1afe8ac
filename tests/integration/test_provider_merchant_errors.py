"""Issue 15 fault 5: a merchant-level refusal (wrong merchant number, app, key or sign) is not
"unknown order". Jeepay answers both with code 9999 (QueryOrderController: "订单不存在";
ApiController.getRQByWithMchSign: "商户或商户应用不存在", "验签失败", ...), so only the order-level
answer may mean "unknown order", and the sweeps must fail no order on a merchant error."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from adapters.fake_provider import FakeProvider
from adapters.provider import signing
from adapters.provider.client import HttpProviderGateway
from adapters.provider.dialects import DIALECTS as DIALECTS_BY_NAME
from adapters.provider.dialects import GGUSONEPAY, JEEPAY, Dialect, Merchant
from entrypoints.serving import serving
from flamepay.cancel_order import cancel_order
from flamepay.closing import CloseOutcome
from flamepay.errors import ProviderMerchantError, ProviderRejected, ProviderUnknownOrder
from flamepay.expire_orders import expire_due_orders
from flamepay.open_order import open_recharge_order
from flamepay.order import OrderState
from flamepay.reconcile_stale import reconcile_stale
from flamepay.records import Audience
from simulators.sandbox import Sandbox, SandboxConfig, build_app
from tests.helpers.core_checks import USER, journal_keys, open_order, stored_order
from tests.helpers.gateway_doubles import CALLS, KEY, NUMBER, Gateway, client
from tests.helpers.mini_gateway import KEY as CORE_KEY
from tests.helpers.mini_gateway import NOTIFY_URL, NOW_MS, MiniGateway
from tests.helpers.support import MERCHANT, make_world

DIALECTS = pytest.mark.parametrize("dialect", [GGUSONEPAY, JEEPAY], ids=lambda d: d.name)

# What Jeepay's ApiController (and derivatives) answer when the merchant, app or sign is wrong.
MERCHANT_MESSAGES = [
    "商户不存在",
    "商户信息不存在或商户状态不可用",
    "商户或商户应用不存在",
    "商户应用不存在或应用状态不可用",
    "参数appId与商户号不匹配",
    "验签失败",
    "签名失败 sign error",
    "sign error",
    "merchant not exist",
    "Merchant does not exist",
    "mchNo not exist",
    "app not exist",
]


def _fault_rows(world) -> list:
    return [m for m in world.state.outbox if m.kind.startswith("fault_")]


# --- the client -----------------------------------------------------------------------------
@DIALECTS
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("message", MERCHANT_MESSAGES)
def test_a_merchant_level_refusal_is_a_merchant_error_not_an_unknown_order(
    dialect: Dialect, call: str, message: str
) -> None:
    """Issue 15 fault 5: merchant/app/sign refusals are ProviderMerchantError on every call."""
    gateway = Gateway({"code": 9999, "msg": message})
    with pytest.raises(ProviderMerchantError) as raised:
        CALLS[call](client(dialect, gateway))
    assert not isinstance(raised.value, ProviderUnknownOrder)
    assert isinstance(raised.value, ProviderRejected) and raised.value.code == 9999
    assert len(gateway.requests) == 1


@DIALECTS
@pytest.mark.parametrize("call", ["query", "close"])
@pytest.mark.parametrize("message", ["订单不存在", " 订单不存在 ", "訂單不存在"])
def test_the_order_level_answer_is_still_an_unknown_order(
    dialect: Dialect, call: str, message: str
) -> None:
    """Issue 15 fault 5: Jeepay's order-level answer (9999, 订单不存在) stays an unknown order."""
    gateway = Gateway({"code": 9999, "msg": message})
    with pytest.raises(ProviderUnknownOrder):
        CALLS[call](client(dialect, gateway))


@pytest.mark.parametrize(
    ("code", "message"),
    [
        (12, "订单不存在"),  # a database error is not the order-level answer
        (9999, "订单不存在或商户不存在"),
        (9999, "wayCode not exist"),
        (9999, "通道不存在"),
        (9999, "商户订单号不存在于商户信息中"),
    ],
)
def test_only_the_order_level_code_and_message_mean_unknown_order(code: int, message: str) -> None:
    """Issue 15 fault 5: words like 不存在/not exist alone no longer mean "unknown order"."""
    gateway = Gateway({"code": code, "msg": message})
    with pytest.raises(ProviderRejected) as raised:
        client(GGUSONEPAY, gateway).query_order(NUMBER)
    assert not isinstance(raised.value, ProviderUnknownOrder)


# --- the sandbox behaves like Jeepay on a wrong merchant or sign ----------------------------
MCH_NO = "M1700000099"
SANDBOX_KEY = "sandbox-merchant-key-for-fault5"


@contextlib.contextmanager
def sandbox_clients(
    dialect: str,
) -> Iterator[tuple[Sandbox, str, dict[str, HttpProviderGateway]]]:
    sandbox = Sandbox(SandboxConfig(MCH_NO, SANDBOX_KEY, "app-1"))
    with contextlib.ExitStack() as stack:
        base_url = stack.enter_context(serving(build_app(sandbox)))
        merchants = {
            "right": Merchant(MCH_NO, SANDBOX_KEY, "app-1"),
            "wrong mchNo": Merchant("M1700000098", SANDBOX_KEY, "app-1"),
            "wrong key": Merchant(MCH_NO, SANDBOX_KEY + "x", "app-1"),
        }
        clients = {}
        for name, merchant in merchants.items():
            gw = HttpProviderGateway(base_url, DIALECTS_BY_NAME[dialect], merchant, attempts=1)
            stack.callback(gw.close)
            clients[name] = gw
        yield sandbox, base_url, clients


@pytest.mark.parametrize("dialect", ["ggusonepay", "jeepay"])
def test_the_sandbox_answers_a_wrong_merchant_or_sign_at_merchant_level(dialect: str) -> None:
    """Issue 15 fault 5: the sandbox refuses a wrong mchNo/key the merchant-level way (never as
    an unknown order) and an unknown order the order-level way."""
    from adapters.provider.dialects import DIALECTS as D
    from flamepay.ports import CreateOrderRequest

    with sandbox_clients(dialect) as (sandbox, base_url, clients):
        request = CreateOrderRequest("FP-F5-1", 1000, "USD", "ALI_QR", "Recharge", 1800)
        clients["right"].create_order(request)
        for name in ("wrong mchNo", "wrong key"):
            for number in ("FP-F5-1", "FP-NEVER-CREATED"):
                with pytest.raises(ProviderMerchantError):
                    clients[name].query_order(number)
                with pytest.raises(ProviderMerchantError):
                    clients[name].close_order(number)
            with pytest.raises(ProviderMerchantError):
                clients[name].create_order(
                    CreateOrderRequest("FP-F5-2", 1000, "USD", "ALI_QR", "Recharge", 1800)
                )
        assert sandbox.orders["FP-F5-1"].state == 1  # nothing was closed
        assert "FP-F5-2" not in sandbox.orders
        with pytest.raises(ProviderUnknownOrder):
            clients["right"].query_order("FP-NEVER-CREATED")
        with pytest.raises(ProviderUnknownOrder):
            clients["right"].close_order("FP-NEVER-CREATED")
        # The raw answer to a wrong merchant: Jeepay's business code and a merchant message.
        body = signing.signed(
            {**D[dialect].common(Merchant("M1", SANDBOX_KEY, "app-1"), 1), "mchOrderNo": "x"},
            SANDBOX_KEY,
        )
        answer = httpx.post(
            base_url + "/api/pay/query", content=json.dumps(body), trust_env=False
        ).json()
        assert answer["code"] == 9999 and "商户" in answer["msg"] and "data" not in answer


# --- the core: the sweeps, expiry, cancel and open-order on a merchant error ------------------
class WrongMerchantGateway(MiniGateway):
    """A MiniGateway that, like Jeepay, refuses any other merchant number at merchant level."""

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body: dict[str, Any] = json.loads(request.content.decode("utf-8"))
        if body.get("mchNo") != MERCHANT:
            self.requests.append((request.url.path, body))
            return httpx.Response(200, json={"code": 9999, "msg": "商户不存在"})
        return super().__call__(request)


def _world_with_wrong_merchant(dialect: Dialect, opened: int = 3):
    """Orders opened with the right merchant number, then an operator's typo in
    PROVIDER_MCH_NO: from then on every call answers "商户不存在"."""
    world = make_world()
    gateway = WrongMerchantGateway(dialect)

    def gateway_client(mch_no: str) -> HttpProviderGateway:
        merchant = Merchant(mch_no, CORE_KEY, app_id="app-1", notify_url=NOTIFY_URL)
        return HttpProviderGateway(
            "https://gw.example.test",
            dialect,
            merchant,
            require_query_sign=True,
            transport=httpx.MockTransport(gateway),
            clock_ms=lambda: NOW_MS,
            sleep=lambda seconds: None,
        )

    world.core.provider = gateway_client(MERCHANT)
    numbers = [
        open_recharge_order(world.core, USER, world.add_package(100_00 + i)).order.mch_order_no
        for i in range(opened)
    ]
    world.core.provider = gateway_client("M1OO")
    return world, gateway, numbers


@DIALECTS
def test_a_merchant_error_stops_the_sweep_changes_no_order_and_raises_one_alert(
    dialect: Dialect,
) -> None:
    """Issue 15 fault 5: with a wrong merchant number the reconcile sweep asks once, stops,
    fails no order as "never placed", and queues exactly one fault alert."""
    world, gateway, numbers = _world_with_wrong_merchant(dialect)
    before = {n: stored_order(world, n).state for n in numbers}
    world.clock.advance(minutes=4)
    asked_before = len(gateway.requests)

    run = reconcile_stale(world.core)

    assert {n: stored_order(world, n).state for n in numbers} == before
    assert all(state is OrderState.PAYING for state in before.values())
    assert len(gateway.requests) - asked_before == 1  # stopped after the first refusal
    assert run.asked == 1 and "never placed" not in run.outcomes
    faults = _fault_rows(world)
    assert len(faults) == 1 and faults[0].audience is Audience.ADMINS
    assert "merchant" in faults[0].text.lower()
    assert CORE_KEY not in faults[0].text
    assert journal_keys(world) == set()

    # The next pass (the alert is rate-limited) still changes nothing and sends no new alert.
    world.clock.advance(minutes=4)
    reconcile_stale(world.core)
    assert {n: stored_order(world, n).state for n in numbers} == before
    assert len(_fault_rows(world)) == 1


@DIALECTS
def test_expiry_and_cancel_fail_no_order_on_a_merchant_error(dialect: Dialect) -> None:
    """Issue 15 fault 5: close/expiry (closing.py) never fail or close an order because the
    gateway refused our merchant credentials; the expiry batch stops at the first one."""
    world, gateway, numbers = _world_with_wrong_merchant(dialect)
    world.clock.advance(minutes=31)
    asked_before = len(gateway.requests)
    results = expire_due_orders(world.core)
    assert [c.outcome for c in results] == [CloseOutcome.UNKNOWN]
    assert len(gateway.requests) - asked_before == 1  # the batch stopped at the first
    assert {stored_order(world, n).state for n in numbers} == {OrderState.PAYING}

    last = numbers[-1]
    closed = cancel_order(world.core, USER, last)
    assert closed.outcome is CloseOutcome.UNKNOWN
    assert stored_order(world, last).state is OrderState.PAYING
    assert all(state == 1 for state in (o["state"] for o in gateway.orders.values()))
    assert len(_fault_rows(world)) == 1


@DIALECTS
@pytest.mark.parametrize("how", ["timeout", "2008"])
def test_open_order_fails_no_order_when_the_query_gets_a_merchant_error(
    dialect: Dialect, how: str
) -> None:
    """Issue 15 fault 5: after an unknown create outcome (timeout, 2008), a merchant-level
    answer to the query leaves the order open (the reconciler asks later)."""
    answers = {
        "timeout": httpx.ReadTimeout,
        "2008": {"code": 2008, "msg": "DUPLICATE SUBMISSION[/api/pay/create]"},
    }
    gateway = Gateway(answers[how], {"code": 9999, "msg": "商户信息不存在或商户状态不可用"})
    world = make_world()
    world.core.provider = client(dialect, gateway, sleeps=[])

    opened = open_recharge_order(world.core, USER, world.add_package(100_00))

    assert stored_order(world, opened.order.mch_order_no).state is OrderState.CREATED
    assert len(_fault_rows(world)) == 1
    assert KEY not in opened.message and "商户" not in opened.message


def test_the_fake_provider_can_answer_a_merchant_error() -> None:
    """Issue 15 fault 5: the fake used by core tests answers a wrong merchant the
    merchant-level way, on every call, and the sweep changes nothing."""
    world = make_world()
    number = open_order(world, 100_00)
    assert isinstance(world.provider, FakeProvider)
    world.provider.merchant_error = (9999, "商户不存在")
    world.clock.advance(minutes=4)

    run = reconcile_stale(world.core)

    assert stored_order(world, number).state is OrderState.PAYING
    assert run.asked == 1 and len(_fault_rows(world)) == 1
    with pytest.raises(ProviderMerchantError):
        world.provider.close_order(number)
    world.provider.merchant_error = None
    with pytest.raises(ProviderUnknownOrder):
        world.provider.query_order("FP-NEVER-CREATED")
