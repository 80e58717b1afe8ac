"""HttpProviderGateway against an httpx.MockTransport playing the gateway (provider-protocol.md:
"Transport", "Dialects", "Pitfalls"). Every test counts the HTTP requests the gateway saw."""

from __future__ import annotations

import ssl
import types
from typing import Any

import attrs
import httpx
import pytest
import tenacity

from adapters.provider import signing
from adapters.provider.client import HttpProviderGateway
from adapters.provider.dialects import GGUSONEPAY, JEEPAY, Dialect
from flamepay.errors import (
    ProviderBadResponse,
    ProviderRejected,
    ProviderTimeout,
    ProviderUnknownOrder,
)
from flamepay.order import OrderState
from tests.helpers.gateway_doubles import (
    BASE,
    CALLS,
    DIALECTS,
    KEY,
    MERCHANT,
    NOW,
    NUMBER,
    REQUEST,
    Gateway,
    client,
    close_data,
    common_fields,
    create_data,
    fields_of,
    ok,
    query_data,
    reference_sign,
)

CREATE_FIELDS = {
    "mchOrderNo": NUMBER,
    "amount": 100_00,
    "currency": "usd",
    "wayCode": "ALI_QR",
    "clientIp": "203.0.113.7",
    "notifyUrl": "https://pay.example.com/notify",
    "returnUrl": "https://t.me/flamepay_bot",
    "expiredTime": 1800,
    "subject": f"Recharge {NUMBER}",
    "body": f"Recharge {NUMBER}",
}


@DIALECTS
@pytest.mark.parametrize("ext_param", ["", "success"])
def test_create_sends_exactly_the_dialects_fields(dialect: Dialect, ext_param: str) -> None:
    gateway = Gateway(ok(create_data(dialect)))
    request = attrs.evolve(REQUEST, ext_param=ext_param)

    report = client(dialect, gateway).create_order(request)

    assert gateway.paths == [dialect.create_path]
    assert (
        dialect.create_path
        == {
            "ggusonepay": "/api/pay/create",
            "jeepay": "/api/pay/unifiedOrder",
        }[dialect.name]
    )
    (_, body) = gateway.requests[0]
    expected = {**common_fields(dialect, body), **CREATE_FIELDS}
    if ext_param:
        expected["extParam"] = ext_param
    assert fields_of(body) == expected  # nothing more, nothing less
    assert type(body["amount"]) is int and type(body["expiredTime"]) is int
    assert body["sign"] == reference_sign(body, KEY)
    forbidden = {"appId", "reqTime", "version"} if dialect is GGUSONEPAY else {"timestamp"}
    assert not forbidden & set(body)
    assert report.mch_order_no == NUMBER
    assert report.state is OrderState.PAYING
    assert report.provider_order_no == "P0001"
    assert report.cashier_url == "https://www.ggusonepay.com/cashier/P0001"
    assert report.amount is None


@DIALECTS
@pytest.mark.parametrize("call", ["query", "close"])
def test_query_and_close_send_the_common_fields_and_the_order_number(
    dialect: Dialect, call: str
) -> None:
    data = query_data(dialect) if call == "query" else close_data(dialect)
    gateway = Gateway(ok(data))
    gw = client(dialect, gateway)

    result = gw.query_order(NUMBER) if call == "query" else gw.close_order(NUMBER)

    assert gateway.paths == [f"/api/pay/{call}"]
    (_, body) = gateway.requests[0]
    assert fields_of(body) == {**common_fields(dialect, body), "mchOrderNo": NUMBER}
    assert body["sign"] == reference_sign(body, KEY)
    if call == "close":
        assert result is None
    assert gw.calls == 1


@DIALECTS
def test_query_reads_the_report(dialect: Dialect) -> None:
    gateway = Gateway(ok(query_data(dialect)))

    report = client(dialect, gateway).query_order(NUMBER)

    assert len(gateway.requests) == 1
    assert report.mch_order_no == NUMBER
    assert report.state is OrderState.SUCCESS
    assert report.amount == 100_00
    assert report.real_amount == (100_00 if dialect is GGUSONEPAY else None)
    assert report.currency == "usd"
    assert report.merchant == "M100"
    assert report.provider_order_no == "P0001"
    assert report.raw["mchOrderNo"] == NUMBER


def test_query_reads_the_fallback_field_names() -> None:
    data = query_data(GGUSONEPAY, realAmount=90_00)
    del data["payOrderNo"], data["state"]
    data.update(payOrderId="P0009", orderState="3", payData="https://c.example/x")
    gateway = Gateway(ok(data))

    report = client(GGUSONEPAY, gateway).query_order(NUMBER)

    assert len(gateway.requests) == 1
    assert report.provider_order_no == "P0009"
    assert report.state is OrderState.FAILED
    assert report.cashier_url == "https://c.example/x"
    assert report.real_amount == 90_00


def test_the_first_name_wins_when_both_names_are_present() -> None:
    data = {**create_data(GGUSONEPAY), "payOrderId": "OTHER", "orderState": 3, "payData": "x"}
    report = client(GGUSONEPAY, Gateway(ok(data))).create_order(REQUEST)
    assert (report.provider_order_no, report.state, report.cashier_url) == (
        "P0001",
        OrderState.PAYING,
        "https://www.ggusonepay.com/cashier/P0001",
    )


def test_a_create_answer_without_an_order_number_is_read_for_the_requested_one() -> None:
    data = create_data(JEEPAY)
    del data["mchOrderNo"]
    report = client(JEEPAY, Gateway(ok(data))).create_order(REQUEST)
    assert report.mch_order_no == NUMBER


# --- the answer's signature ---------------------------------------------------------------------
def data_for(call: str, dialect: Dialect) -> dict[str, Any]:
    return {"create": create_data, "query": query_data, "close": close_data}[call](dialect)


@DIALECTS
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize(
    "how",
    ["tampered", "other-key", "over-envelope", "data-changed", "empty", "not-text"],
)
def test_a_wrong_answer_sign_is_a_bad_response_and_not_retried(
    dialect: Dialect, call: str, how: str
) -> None:
    data = data_for(call, dialect)
    good = signing.sign(data, KEY)
    envelope = {
        "tampered": ok(data, sign=("0" if good[0] != "0" else "1") + good[1:]),
        "other-key": ok(data, sign=signing.sign(data, KEY + "x")),
        "over-envelope": ok(
            data, sign=signing.sign({"code": 0, "msg": "SUCCESS", "data": data}, KEY)
        ),
        "data-changed": {**ok(data), "data": {**data, "extra": "1"}},
        "empty": {**ok(data, sign=None), "sign": ""},
        "not-text": {**ok(data, sign=None), "sign": 123},
    }[how]
    gateway = Gateway(envelope)
    gw = client(dialect, gateway, sleeps=[])

    with pytest.raises(ProviderBadResponse):
        CALLS[call](gw)

    assert len(gateway.requests) == 1 and gw.calls == 1


@DIALECTS
@pytest.mark.parametrize("call", CALLS)
def test_an_answer_signed_over_data_alone_is_accepted(dialect: Dialect, call: str) -> None:
    gateway = Gateway(ok(data_for(call, dialect)))
    CALLS[call](client(dialect, gateway, require_query_sign=True))
    assert len(gateway.requests) == 1


def test_a_lowercase_answer_sign_is_accepted() -> None:
    data = query_data(GGUSONEPAY)
    gateway = Gateway(ok(data, sign=signing.sign(data, KEY).lower()))
    assert client(GGUSONEPAY, gateway).query_order(NUMBER).state is OrderState.SUCCESS


@DIALECTS
@pytest.mark.parametrize("call", CALLS)
def test_an_unsigned_answer_is_accepted_when_no_sign_is_required(
    dialect: Dialect, call: str
) -> None:
    gateway = Gateway(ok(data_for(call, dialect), sign=None))
    CALLS[call](client(dialect, gateway))
    assert len(gateway.requests) == 1


@DIALECTS
def test_an_unsigned_query_answer_is_refused_when_the_sign_is_required(dialect: Dialect) -> None:
    gateway = Gateway(ok(query_data(dialect), sign=None))
    gw = client(dialect, gateway, sleeps=[], require_query_sign=True)
    with pytest.raises(ProviderBadResponse):
        gw.query_order(NUMBER)
    assert len(gateway.requests) == 1


@DIALECTS
@pytest.mark.parametrize("call", ["create", "close"])
def test_require_query_sign_leaves_create_and_close_alone(dialect: Dialect, call: str) -> None:
    gateway = Gateway(ok(data_for(call, dialect), sign=None))
    CALLS[call](client(dialect, gateway, require_query_sign=True))
    assert len(gateway.requests) == 1


def test_a_required_sign_with_no_data_is_refused() -> None:
    gateway = Gateway({"code": 0, "msg": "SUCCESS"})
    with pytest.raises(ProviderBadResponse):
        client(GGUSONEPAY, gateway, require_query_sign=True).query_order(NUMBER)
    assert len(gateway.requests) == 1


# --- faults -------------------------------------------------------------------------------------
TRANSPORT_FAULTS = pytest.mark.parametrize(
    "fault", [httpx.ReadTimeout, httpx.ConnectTimeout, httpx.WriteTimeout, httpx.ConnectError]
)


@DIALECTS
@TRANSPORT_FAULTS
def test_a_create_that_gets_no_answer_is_sent_once_and_is_a_timeout(
    dialect: Dialect, fault: type[Exception]
) -> None:
    gateway = Gateway(fault, ok(create_data(dialect)))
    gw = client(dialect, gateway)  # _no_sleep: a retry would fail the test

    with pytest.raises(ProviderTimeout):
        gw.create_order(REQUEST)

    assert gateway.paths == [dialect.create_path]
    assert gw.calls == 1


@DIALECTS
@TRANSPORT_FAULTS
@pytest.mark.parametrize("call", ["query", "close"])
@pytest.mark.parametrize("attempts", [1, 3, 5])
def test_query_and_close_are_retried_up_to_attempts_then_time_out(
    dialect: Dialect, fault: type[Exception], call: str, attempts: int
) -> None:
    gateway = Gateway(fault)
    sleeps: list[float] = []
    gw = client(dialect, gateway, sleeps=sleeps, attempts=attempts)

    with pytest.raises(ProviderTimeout):
        CALLS[call](gw)

    assert gateway.paths == [f"/api/pay/{call}"] * attempts
    assert gw.calls == attempts
    assert len(sleeps) == attempts - 1


@DIALECTS
@pytest.mark.parametrize("status", [500, 502, 503, 504])
def test_a_5xx_then_success_is_retried_for_query(dialect: Dialect, status: int) -> None:
    gateway = Gateway(httpx.Response(status, text="busy"), ok(query_data(dialect)))
    sleeps: list[float] = []

    report = client(dialect, gateway, sleeps=sleeps).query_order(NUMBER)

    assert report.state is OrderState.SUCCESS
    assert gateway.paths == ["/api/pay/query"] * 2
    assert len(sleeps) == 1


@DIALECTS
def test_a_timeout_then_success_is_retried_for_close(dialect: Dialect) -> None:
    gateway = Gateway(httpx.ReadTimeout, httpx.Response(503), ok(close_data(dialect)))
    sleeps: list[float] = []

    assert client(dialect, gateway, sleeps=sleeps).close_order(NUMBER) is None

    assert gateway.paths == ["/api/pay/close"] * 3
    assert len(sleeps) == 2


@DIALECTS
@pytest.mark.parametrize("status", [500, 502, 503])
def test_a_create_answered_5xx_is_sent_once_and_is_a_timeout(dialect: Dialect, status: int) -> None:
    gateway = Gateway(httpx.Response(status), ok(create_data(dialect)))
    gw = client(dialect, gateway)

    with pytest.raises(ProviderTimeout):
        gw.create_order(REQUEST)

    assert gateway.paths == [dialect.create_path]
    assert gw.calls == 1


def test_a_query_answered_5xx_every_time_gives_up_after_attempts() -> None:
    gateway = Gateway(httpx.Response(502))
    sleeps: list[float] = []
    with pytest.raises(ProviderBadResponse):
        client(GGUSONEPAY, gateway, sleeps=sleeps, attempts=4).query_order(NUMBER)
    assert len(gateway.requests) == 4 and len(sleeps) == 3


@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("status", [400, 403, 404, 302])
def test_another_status_is_a_bad_response_and_not_retried(call: str, status: int) -> None:
    gateway = Gateway(httpx.Response(status, text="no"))
    with pytest.raises(ProviderBadResponse):
        CALLS[call](client(GGUSONEPAY, gateway))
    assert len(gateway.requests) == 1


MALFORMED = {
    "not-json": httpx.Response(200, text="<html>502 Bad Gateway</html>"),
    "truncated": httpx.Response(200, text='{"code":0,"data":{"state":1'),
    "not-utf8": httpx.Response(200, content=b'{"code":0,"msg":"\xff\xfe"}'),
    "empty": httpx.Response(200, content=b""),
    "array": httpx.Response(200, json=[0, "SUCCESS"]),
    "no-code": httpx.Response(200, json={"msg": "SUCCESS", "data": {}}),
    "string-code": httpx.Response(200, json={"code": "0", "msg": "SUCCESS", "data": {}}),
    "data-not-object": httpx.Response(200, json={"code": 0, "data": "ok"}),
}


@DIALECTS
@pytest.mark.parametrize("call", CALLS)
@pytest.mark.parametrize("what", MALFORMED)
def test_a_malformed_answer_is_a_bad_response_and_not_retried(
    dialect: Dialect, call: str, what: str
) -> None:
    gateway = Gateway(MALFORMED[what])
    with pytest.raises(ProviderBadResponse):
        CALLS[call](client(dialect, gateway))
    assert len(gateway.requests) == 1


@pytest.mark.parametrize("call", ["create", "query"])
@pytest.mark.parametrize(
    "data",
    [{"mchOrderNo": NUMBER}, {"mchOrderNo": NUMBER, "state": ""}, {"mchOrderNo": 7, "state": 1}],
    ids=["no-state", "empty-state", "number-not-text"],
)
def test_an_answer_without_a_readable_state_is_a_bad_response(
    call: str, data: dict[str, Any]
) -> None:
    gateway = Gateway(ok(data))
    with pytest.raises(ProviderBadResponse):
        CALLS[call](client(GGUSONEPAY, gateway))
    assert len(gateway.requests) == 1


@DIALECTS
@pytest.mark.parametrize("call", CALLS)
def test_code_9999_is_rejected_with_code_and_message(dialect: Dialect, call: str) -> None:
    gateway = Gateway({"code": 9999, "msg": "签名失败 sign error"})

    with pytest.raises(ProviderRejected) as raised:
        CALLS[call](client(dialect, gateway))

    assert raised.value.code == 9999
    assert raised.value.message == "签名失败 sign error"
    assert len(gateway.requests) == 1


@pytest.mark.parametrize("code", [10, 11, 12])
def test_system_parameter_and_database_codes_are_rejected(code: int) -> None:
    gateway = Gateway({"code": code, "msg": "system"})
    with pytest.raises(ProviderRejected) as raised:
        client(JEEPAY, gateway).query_order(NUMBER)
    assert raised.value.code == code
    assert len(gateway.requests) == 1


@DIALECTS
def test_code_2008_on_create_is_rejected_after_one_request(dialect: Dialect) -> None:
    gateway = Gateway({"code": 2008, "msg": "DUPLICATE SUBMISSION[/api/pay/create]"})
    gw = client(dialect, gateway)

    with pytest.raises(ProviderRejected) as raised:
        gw.create_order(REQUEST)

    assert raised.value.code == 2008
    assert raised.value.message == "DUPLICATE SUBMISSION[/api/pay/create]"
    assert gateway.paths == [dialect.create_path] and gw.calls == 1


@DIALECTS
@pytest.mark.parametrize("call", ["query", "close"])
@pytest.mark.parametrize("message", ["订单不存在", "Order not exist", "pay order not found"])
def test_an_unknown_order_answer_is_an_unknown_order(
    dialect: Dialect, call: str, message: str
) -> None:
    gateway = Gateway({"code": 9999, "msg": message})
    with pytest.raises(ProviderUnknownOrder):
        CALLS[call](client(dialect, gateway))
    assert len(gateway.requests) == 1


def test_a_create_answer_saying_not_exist_stays_a_rejection() -> None:
    gateway = Gateway({"code": 9999, "msg": "wayCode not exist"})
    with pytest.raises(ProviderRejected) as raised:
        client(GGUSONEPAY, gateway).create_order(REQUEST)
    assert not isinstance(raised.value, ProviderUnknownOrder)
    assert raised.value.code == 9999 and len(gateway.requests) == 1


# --- strict numbers in answers ------------------------------------------------------------------
BAD_NUMBERS = [
    ("amount", 100.0),
    ("amount", 10000.0),
    ("amount", "100.00"),
    ("amount", "10000.0"),
    ("amount", "1e4"),
    ("amount", "010000"),
    ("amount", -100),
    ("amount", True),
    ("realAmount", 100.5),
    ("realAmount", "99.50"),
    ("state", "2.0"),
    ("state", 2.0),
    ("state", 8),
    ("state", "+2"),
]
NUMBER_IDS = [f"{name}={value!r}" for name, value in BAD_NUMBERS]


@pytest.mark.parametrize(("name", "value"), BAD_NUMBERS, ids=NUMBER_IDS)
def test_a_non_integer_number_in_an_unsigned_answer_is_a_bad_response(
    name: str, value: object
) -> None:
    gateway = Gateway(ok(query_data(GGUSONEPAY, **{name: value}), sign=None))
    with pytest.raises(ProviderBadResponse):
        client(GGUSONEPAY, gateway).query_order(NUMBER)
    assert len(gateway.requests) == 1


def java_sign(data: dict[str, Any]) -> str:
    """What a gateway in Java signs for a float: its plain string."""
    return signing.sign({k: str(v) if isinstance(v, float) else v for k, v in data.items()}, KEY)


@pytest.mark.parametrize(
    ("name", "value"),
    [(n, v) for n, v in BAD_NUMBERS if not isinstance(v, float)],
    ids=[i for i, (_, v) in zip(NUMBER_IDS, BAD_NUMBERS, strict=True) if not isinstance(v, float)],
)
def test_a_non_integer_number_in_a_signed_answer_is_a_bad_response(
    name: str, value: object
) -> None:
    data = query_data(GGUSONEPAY, **{name: value})
    gateway = Gateway(ok(data))
    with pytest.raises(ProviderBadResponse):
        client(GGUSONEPAY, gateway).query_order(NUMBER)
    assert len(gateway.requests) == 1


@pytest.mark.parametrize("call", ["create", "query"])
@pytest.mark.parametrize(
    ("name", "value"), [(n, v) for n, v in BAD_NUMBERS if isinstance(v, float)]
)
def test_a_float_in_a_signed_answer_is_a_bad_response(call: str, name: str, value: float) -> None:
    data = {**data_for(call, GGUSONEPAY), name: value}
    gateway = Gateway(ok(data, sign=java_sign(data)))
    with pytest.raises(ProviderBadResponse):
        CALLS[call](client(GGUSONEPAY, gateway, sleeps=[]))
    assert len(gateway.requests) == 1


# --- certificates -------------------------------------------------------------------------------
def _ssl_context(gw: HttpProviderGateway) -> ssl.SSLContext:
    return gw._http._transport._pool._ssl_context  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    "url", ["https://www.ggusonepay.com", "https://gw.example.test:8443/base/", "https://10.0.0.5"]
)
def test_certificates_are_checked_for_https(url: str) -> None:
    gw = HttpProviderGateway(url, GGUSONEPAY, MERCHANT)
    try:
        context = _ssl_context(gw)
        assert context.verify_mode is ssl.CERT_REQUIRED
        assert context.check_hostname is True
    finally:
        gw.close()


@pytest.mark.parametrize(
    "url", ["http://127.0.0.1:8080", "http://localhost:9000/", "http://[::1]:8080"]
)
def test_certificates_are_not_checked_only_for_loopback_http(url: str) -> None:
    gw = HttpProviderGateway(url, GGUSONEPAY, MERCHANT)
    try:
        assert _ssl_context(gw).verify_mode is ssl.CERT_NONE
    finally:
        gw.close()


def test_the_base_url_keeps_its_path() -> None:
    gateway = Gateway(ok(query_data(GGUSONEPAY)))
    gw = HttpProviderGateway(
        "https://gw.example.test/gate/",
        GGUSONEPAY,
        MERCHANT,
        transport=httpx.MockTransport(gateway),
        clock_ms=lambda: NOW,
    )
    gw.query_order(NUMBER)
    assert gateway.paths == ["/gate/api/pay/query"]


# --- retry timing -------------------------------------------------------------------------------
def test_backoff_grows_with_jitter_and_stays_under_its_caps() -> None:
    attempts, runs = 6, 100
    caps = [min(3.0, 0.2 * 2**i) for i in range(attempts - 1)]  # 0.2 0.4 0.8 1.6 3
    by_retry: list[list[float]] = [[] for _ in caps]
    for _ in range(runs):
        gateway = Gateway(httpx.ReadTimeout)
        sleeps: list[float] = []
        with pytest.raises(ProviderTimeout):
            client(GGUSONEPAY, gateway, sleeps=sleeps, attempts=attempts).query_order(NUMBER)
        assert len(gateway.requests) == attempts
        assert len(sleeps) == attempts - 1
        assert sum(sleeps) <= sum(caps) < 20  # under max_retry_seconds
        for i, delay in enumerate(sleeps):
            assert 0 <= delay <= caps[i] + 1e-9
            by_retry[i].append(delay)
    for i in range(1, len(caps)):
        # The window grows: some later delay is longer than any earlier window allowed.
        assert max(by_retry[i]) > caps[i - 1]
    for delays in by_retry:
        assert len(set(delays)) > runs // 2  # jitter: not one fixed delay


class FakeTime:
    """tenacity's clock, moved by the fake sleep and by each call's simulated duration."""

    def __init__(self) -> None:
        self.now = 1000.0

    def monotonic(self) -> float:
        return self.now


@pytest.mark.parametrize(("call_seconds", "expected_calls"), [(15.0, 2), (1.0, None)])
def test_retries_stop_at_the_total_time_bound(
    monkeypatch: pytest.MonkeyPatch, call_seconds: float, expected_calls: int | None
) -> None:
    fake = FakeTime()
    monkeypatch.setattr(tenacity, "time", types.SimpleNamespace(monotonic=fake.monotonic))
    start = fake.now

    def slow_timeout(request: httpx.Request) -> httpx.Response:
        fake.now += call_seconds
        raise httpx.ReadTimeout("slow", request=request)

    requests: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        requests.append(request)
        return slow_timeout(request)

    def sleep(seconds: float) -> None:
        fake.now += seconds

    gw = HttpProviderGateway(
        BASE,
        GGUSONEPAY,
        MERCHANT,
        timeout_seconds=15,
        attempts=100,
        max_retry_seconds=20,
        transport=httpx.MockTransport(handler),
        clock_ms=lambda: NOW,
        sleep=sleep,
    )
    with pytest.raises(ProviderTimeout):
        gw.query_order(NUMBER)

    elapsed = fake.now - start
    if expected_calls is not None:
        assert len(requests) == expected_calls
    assert 2 <= len(requests) < 100  # stopped by time, long before the attempts ran out
    assert gw.calls == len(requests)
    # stop_after_delay checks after an attempt: at most one more wait (<= 3 s) and one more
    # call can follow the moment the bound was crossed.
    assert 20 <= elapsed <= 20 + 3 + call_seconds
