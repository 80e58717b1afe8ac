"""The sandbox gateway against the real provider client, over loopback sockets.

Everything here is real HTTP: the sandbox is served by Hypercorn on a loopback port, the
client is HttpProviderGateway in both dialects, the cashier page is fetched and its forms
posted like a browser would, and notifies land on a small merchant receiver (its own
Starlette app and port) that records every request and answers from a script. Notifies are
verified with the project's notify parser and the merchant key.
"""

from __future__ import annotations

import itertools
import json
import time

import httpx
import pytest

from adapters.provider import signing
from adapters.provider.dialects import DIALECTS
from adapters.provider.notify import NotifySignatureInvalid
from entrypoints.serving import free_port
from flamepay.errors import ProviderRejected, ProviderUnknownOrder
from flamepay.order import OrderState
from flamepay.report import ProviderReport
from simulators.sandbox import NOTIFY_SCHEDULE
from tests.helpers.sandbox_world import (
    APP_ID,
    FORM,
    KEY,
    MCH_NO,
    FakeClock,
    Form,
    Page,
    Received,
    World,
    api,
    dialects,
    verified,
)


# --- create, the cashier page, pay, fail -------------------------------------------------------
@dialects
def test_create_answers_a_paying_order_with_a_cashier_url_on_the_sandbox(open_world, dialect):
    world = open_world(dialect)
    report = world.create(amount=1234)
    assert report.state == OrderState.PAYING
    assert report.provider_order_no and report.provider_order_no.startswith("SBP")
    assert report.cashier_url == f"{world.base_url}/cashier/{report.provider_order_no}"
    # The dialect's own field names (the client reads them with fallbacks).
    names = {
        "ggusonepay": {"payOrderNo", "mchOrderNo", "state", "cashierUrl", "expireTimestamp"},
        "jeepay": {"payOrderId", "mchOrderNo", "orderState", "payDataType", "payData"},
    }[dialect]
    assert set(report.raw) == names
    order = world.order(report)
    assert (order.amount, order.currency, order.way_code) == (1234, "usd", "ALI_QR")
    assert order.notify_url == f"{world.receiver_url}/notify"
    assert world.query_state(report) == OrderState.PAYING


@dialects
def test_cashier_page_shows_the_order_an_amount_field_and_pay_and_fail_buttons(open_world, dialect):
    world = open_world(dialect)
    report = world.create(amount=120_050)
    page = world.page(report)
    assert report.mch_order_no in page.first("title")
    assert page.first("h1") == f"Order {report.mch_order_no}"
    assert page.get("amount") == "1200.50 USD"
    assert page.get("state") == "waiting for payment"
    pay, fail = page.form_with("pay"), page.form_with("fail")
    assert pay.action == f"/cashier/{report.provider_order_no}/pay" and pay.method == "post"
    assert fail.action == f"/cashier/{report.provider_order_no}/fail" and fail.method == "post"
    assert pay.inputs == {"real_amount": "1200.50"}  # the amount field, filled with the amount
    assert page.get("pay") == "Pay" and page.get("fail") == "Fail"
    assert page.ids["real_amount"].tag == "input"
    assert page.get("deliveries") == "none yet"
    assert "SANDBOX" in page.text
    unknown = world.browser.get(f"{world.base_url}/cashier/SBPNOSUCHORDER")
    assert unknown.status_code == 404
    assert world.browser.post(f"{world.base_url}/cashier/SBPNOSUCHORDER/pay").status_code == 404


@dialects
def test_pay_on_the_page_sends_a_signed_form_notify_and_query_says_paid(open_world, dialect):
    world = open_world(dialect)
    report = world.create(amount=1234)
    before = int(time.time() * 1000)
    page = world.click(world.page(report), "pay")
    assert page.get("state") == "paid" and page.get("note") == "Paid."
    assert "pay" not in page.ids and "fail" not in page.ids  # nothing more to do

    (received,) = world.receiver.wait_for(1, timeout=5)
    assert received.method == "POST" and received.query == b""
    assert received.content_type.split(";")[0] == FORM
    notify = verified(received)
    assert notify.report.state == OrderState.SUCCESS
    assert notify.report.mch_order_no == report.mch_order_no
    assert notify.report.provider_order_no == report.provider_order_no
    assert (notify.report.amount, notify.report.real_amount) == (1234, 1234)
    assert (notify.report.merchant, notify.report.currency) == (MCH_NO, "usd")
    assert int(notify.fields["successTime"]) >= before
    assert int(notify.fields["timestamp"]) >= before
    with pytest.raises(NotifySignatureInvalid):
        verified(received, keys=["another-key"])

    queried = world.client.query_order(report.mch_order_no)
    assert (queried.state, queried.amount) == (OrderState.SUCCESS, 1234)
    assert queried.provider_order_no == report.provider_order_no
    assert world.receiver.settled() == [received]  # answered 'success': delivered once
    assert [d.outcome for d in world.order(report).deliveries] == ["success"]


@dialects
def test_a_payer_who_types_another_amount_shows_in_real_amount(open_world, dialect):
    world = open_world(dialect)
    report = world.create(amount=5000)
    page = world.click(world.page(report), "pay", real_amount="45.50")
    assert page.get("state") == "paid"
    (received,) = world.receiver.wait_for(1, timeout=5)
    notify = verified(received)
    assert (notify.report.amount, notify.report.real_amount) == (5000, 4550)
    queried = world.client.query_order(report.mch_order_no)
    assert queried.amount == 5000
    # ggusonepay's query carries realAmount; Jeepay's query data has no such field.
    assert queried.real_amount == (4550 if dialect == "ggusonepay" else None)


def test_an_unreadable_typed_amount_is_refused_and_the_order_stays_open(open_world):
    world = open_world()
    report = world.create(amount=5000)
    page = world.click(world.page(report), "pay", real_amount="12,5x")
    assert page.get("state") == "waiting for payment" and page.get("note")
    assert world.order(report).state == OrderState.PAYING
    assert world.receiver.settled() == []


@dialects
def test_fail_on_the_page_fails_the_order_without_a_notify_by_default(open_world, dialect):
    world = open_world(dialect)
    report = world.create()
    page = world.click(world.page(report), "fail")
    assert page.get("state") == "failed" and page.get("note") == "Failed."
    assert "pay" not in page.ids and "fail" not in page.ids
    assert world.query_state(report) == OrderState.FAILED
    assert world.receiver.settled() == []
    assert world.order(report).deliveries == []


@dialects
def test_notify_failures_sends_a_signed_notify_for_state_3(open_world, dialect):
    world = open_world(dialect, notify_failures=True)
    report = world.create(amount=777)
    world.click(world.page(report), "fail")
    (received,) = world.receiver.wait_for(1, timeout=5)
    notify = verified(received)
    assert notify.report.state == OrderState.FAILED
    assert (notify.report.mch_order_no, notify.report.amount) == (report.mch_order_no, 777)
    assert "successTime" not in notify.fields
    assert world.receiver.settled() == [received]


# --- query and close ---------------------------------------------------------------------------
@dialects
def test_query_by_either_number_and_an_unknown_order(open_world, dialect):
    world = open_world(dialect)
    report = world.create(amount=901)
    id_field = DIALECTS[dialect].provider_id_field
    answer = api(world, "/api/pay/query", {id_field: report.provider_order_no})
    assert answer["code"] == 0
    assert signing.verify(answer["data"], KEY, answer["sign"])
    assert answer["data"]["mchOrderNo"] == report.mch_order_no
    assert answer["data"][id_field] == report.provider_order_no
    assert (answer["data"]["amount"], answer["data"]["state"]) == (901, 1)
    if dialect == "jeepay":
        assert answer["data"]["appId"] == APP_ID
    with pytest.raises(ProviderUnknownOrder):
        world.client.query_order("FP-NEVER-CREATED")


@dialects
def test_close_works_only_from_open_states(open_world, dialect):
    world = open_world(dialect)
    open_order = world.create()
    world.client.close_order(open_order.mch_order_no)
    assert world.query_state(open_order) == OrderState.CLOSED
    with pytest.raises(ProviderRejected) as closed_twice:
        world.client.close_order(open_order.mch_order_no)
    assert closed_twice.value.code != 0
    page = world.page(open_order)
    assert page.get("state") == "closed" and "pay" not in page.ids

    paid = world.create()
    world.click(world.page(paid), "pay")
    with pytest.raises(ProviderRejected) as closing_paid:
        world.client.close_order(paid.mch_order_no)
    assert closing_paid.value.code != 0
    assert world.query_state(paid) == OrderState.SUCCESS

    failed = world.create()
    world.click(world.page(failed), "fail")
    with pytest.raises(ProviderRejected):
        world.client.close_order(failed.mch_order_no)
    assert world.query_state(failed) == OrderState.FAILED
    with pytest.raises(ProviderUnknownOrder):
        world.client.close_order("FP-NEVER-CREATED")


@pytest.mark.parametrize(("dialect", "code"), [("ggusonepay", 2008), ("jeepay", 9999)])
def test_a_second_create_with_the_same_number_is_refused_like_the_real_gateway(
    open_world, dialect, code
):
    world = open_world(dialect)
    first = world.create(amount=1000)
    with pytest.raises(ProviderRejected) as refused:
        world.create(amount=2000, number=first.mch_order_no)
    assert refused.value.code == code
    if dialect == "ggusonepay":
        assert refused.value.message == "DUPLICATE SUBMISSION[/api/pay/create]"
    order = world.order(first)
    assert (order.amount, order.pay_order_no) == (1000, first.provider_order_no)
    assert len(world.sandbox.orders) == 1


# --- signatures --------------------------------------------------------------------------------
@dialects
def test_a_bad_signature_is_refused(open_world, dialect):
    world = open_world(dialect, key="not-the-merchant-key")
    with pytest.raises(ProviderRejected) as refused:
        world.create()
    assert refused.value.code != 0
    assert world.sandbox.orders == {}

    good = {"mchOrderNo": "FP-SIGNED", "amount": 100, "currency": "usd", "wayCode": "ALI_QR"}
    assert api(world, world.client.dialect.create_path, good)["code"] == 0  # the control
    tampered = signing.signed(
        {**DIALECTS[dialect].common(world.client.merchant, 1), **good, "mchOrderNo": "FP-TAMPERED"},
        KEY,
    )
    tampered["amount"] = 1  # changed after signing
    answer = httpx.post(
        world.base_url + world.client.dialect.create_path,
        content=json.dumps(tampered),
        trust_env=False,
    ).json()
    assert answer["code"] != 0 and "data" not in answer
    unsigned = {k: v for k, v in tampered.items() if k != "sign"}
    answer = httpx.post(
        world.base_url + "/api/pay/query", content=json.dumps(unsigned), trust_env=False
    ).json()
    assert answer["code"] != 0
    assert set(world.sandbox.orders) == {"FP-SIGNED"}


def test_a_fractional_amount_is_answered_with_an_envelope_not_a_server_error(open_world):
    world = open_world()
    body = {"mchNo": MCH_NO, "timestamp": 1, "mchOrderNo": "FP-FLOAT", "amount": 12.5, "sign": "X"}
    response = httpx.post(
        world.base_url + "/api/pay/create", content=json.dumps(body), trust_env=False
    )
    assert response.status_code == 200
    assert response.json()["code"] != 0


# --- expiry ------------------------------------------------------------------------------------
@dialects
def test_expiry_with_an_injected_clock_closes_the_order_without_a_notify(open_world, dialect):
    clock = FakeClock()
    world = open_world(dialect, clock=clock)
    report = world.create(expired_seconds=1800)
    if dialect == "ggusonepay":
        assert report.raw["expireTimestamp"] == str(int((clock.now + 1800) * 1000))
    clock.now += 1799
    assert world.query_state(report) == OrderState.PAYING
    clock.now += 1
    assert world.query_state(report) == OrderState.CLOSED
    page = world.page(report)
    assert page.get("state") == "closed" and "pay" not in page.ids
    refused = world.browser.post(
        f"{world.base_url}/cashier/{report.provider_order_no}/pay", data={"real_amount": "12.34"}
    )
    assert "cannot be paid" in Page(str(refused.url), refused.text).get("note")
    assert world.query_state(report) == OrderState.CLOSED
    assert world.receiver.settled() == []


def test_expiry_follows_the_time_scale(open_world):
    world = open_world(time_scale=3600)  # expiredTime 1800 s lasts half a second
    report = world.create(expired_seconds=1800)
    assert world.query_state(report) == OrderState.PAYING
    time.sleep(0.7)
    assert world.query_state(report) == OrderState.CLOSED
    assert world.page(report).get("state") == "closed"
    assert world.receiver.settled() == []


# --- SANDBOX_LATE_SUCCESS ----------------------------------------------------------------------
def _failed_and_closed(world: World) -> tuple[ProviderReport, ProviderReport]:
    failed, closed = world.create(amount=300), world.create(amount=400)
    world.click(world.page(failed), "fail")
    world.client.close_order(closed.mch_order_no)
    return failed, closed


def test_the_page_refuses_to_pay_failed_or_closed_orders_by_default(open_world):
    world = open_world()
    failed, closed = _failed_and_closed(world)
    for report, name in ((failed, "failed"), (closed, "closed")):
        page = world.page(report)
        assert page.get("state") == name
        assert "pay" not in page.ids and "real_amount" not in page.ids
        # A form posted anyway (an old tab) is refused too.
        response = world.browser.post(
            f"{world.base_url}/cashier/{report.provider_order_no}/pay", data={"real_amount": "3.00"}
        )
        page = Page(str(response.url), response.text)
        assert "cannot be paid" in page.get("note")
        assert page.get("state") == name
    assert (world.query_state(failed), world.query_state(closed)) == (3, 6)
    assert world.receiver.settled() == []


def test_late_success_pays_failed_and_closed_orders_from_the_page(open_world):
    world = open_world(late_success=True)
    failed, closed = _failed_and_closed(world)
    for report, amount in ((failed, 300), (closed, 400)):
        page = world.page(report)
        assert "fail" not in page.ids  # only paying is offered for a settled order
        page = world.click(page, "pay")
        assert page.get("state") == "paid"
        assert world.query_state(report) == OrderState.SUCCESS
        notify = verified(world.receiver.wait_for(1, timeout=5)[-1])
        assert (notify.report.mch_order_no, notify.report.state) == (report.mch_order_no, 2)
        assert notify.report.amount == amount
        world.receiver.received.clear()


# --- duplicates, self-settling orders, delivery results ----------------------------------------
def test_duplicates_sends_n_identical_deliveries_at_once(open_world):
    world = open_world(duplicates=3)
    report = world.create()
    started = time.monotonic()
    world.click(world.page(report), "pay")
    received = world.receiver.wait_for(3, timeout=5)
    assert len(received) == 3
    assert len({r.body for r in received}) == 1  # the same payload, timestamp and sign
    assert verified(received[0]).report.state == OrderState.SUCCESS
    assert received[-1].at - received[0].at < 0.5  # together, not a retry schedule
    assert received[0].at - started < 2
    assert world.receiver.settled() == received  # all answered success: no retry
    assert [d.outcome for d in world.order(report).deliveries] == ["success"] * 3


@pytest.mark.parametrize(
    ("ext_param", "notify_failures", "state", "notified"),
    [("success", False, 2, True), ("fail", False, 3, False), ("fail", True, 3, True)],
)
def test_ext_param_settles_by_itself_after_the_scaled_delay(
    open_world, ext_param, notify_failures, state, notified
):
    world = open_world(time_scale=100, notify_failures=notify_failures)  # 60 s -> 0.6 s
    created = time.monotonic()
    report = world.create(ext_param=ext_param)
    plain = world.create()  # no extParam: stays open
    assert world.query_state(report) == OrderState.PAYING
    world.wait_for_state(report, state, timeout=5)
    waited = time.monotonic() - created
    assert 0.55 <= waited < 3, waited
    assert world.query_state(report) == state
    received = world.receiver.settled()
    if notified:
        (only,) = received
        notify = verified(only)
        assert (notify.report.mch_order_no, notify.report.state) == (report.mch_order_no, state)
        assert only.at - created >= 0.55
    else:
        assert received == []
    assert world.query_state(plain) == OrderState.PAYING


def test_each_delivery_result_is_kept_and_shown_on_the_cashier_page(open_world):
    answers = [(200, "fail"), (503, "busy"), (200, '{"code":"SUCCESS"}')]
    world = open_world(time_scale=1000, answers=answers)  # retries 30 ms apart and more
    report = world.create()
    world.click(world.page(report), "pay")
    received = world.receiver.wait_for(4, timeout=5)
    assert len(world.receiver.settled()) == 4
    outcomes = [d.outcome for d in world.order(report).deliveries]
    assert outcomes == [
        "HTTP 200: fail",
        "HTTP 503: busy",
        'HTTP 200: {"code":"SUCCESS"}',
        "success",
    ]
    page = world.page(report)
    items = page.items("deliveries")
    assert len(items) == 4
    for item, outcome in zip(items, outcomes, strict=True):
        assert item.endswith(f"UTC: {outcome}"), item
    assert len({r.body for r in received}) == 1


def test_an_unknown_cashier_action_does_not_fail_the_order(open_world):
    world = open_world()
    report = world.create()
    response = world.browser.post(f"{world.base_url}/cashier/{report.provider_order_no}/refund")
    assert world.order(report).state == OrderState.PAYING
    assert response.status_code == 404


# --- the notify retry schedule -----------------------------------------------------------------
SCALE = 150  # the schedule 0, 30, 90, 180, 300, 450 s becomes 0, 0.2, 0.6, 1.2, 2.0, 3.0 s
OFFSETS = [at / SCALE for at in NOTIFY_SCHEDULE]


def _check_schedule(received: list[Received]) -> None:
    offsets = [r.at - received[0].at for r in received]
    gaps = [b - a for a, b in itertools.pairwise(offsets)]
    expected = [b - a for a, b in itertools.pairwise(OFFSETS)][: len(gaps)]
    for gap, want in zip(gaps, expected, strict=True):
        assert want * 0.9 <= gap <= want * 1.1 + 0.1, (gaps, expected)
    for offset, want in zip(offsets, OFFSETS, strict=False):
        assert want * 0.95 - 0.02 <= offset <= want * 1.05 + 0.2, (offsets, OFFSETS)
    assert all(b > a for a, b in itertools.pairwise(gaps)), gaps  # the gaps grow


def test_schedule_constants_match_the_protocol():
    assert NOTIFY_SCHEDULE == (0, 30, 90, 180, 300, 450)


def test_a_receiver_failing_twice_gets_exactly_three_identical_deliveries(open_world):
    world = open_world(time_scale=SCALE, answers=["fail", "fail"])
    report = world.create(amount=2500)
    paid_at = time.monotonic()
    world.click(world.page(report), "pay")
    received = world.receiver.wait_for(3, timeout=5)
    assert len(received) == 3
    assert received[0].at - paid_at < 0.75 * OFFSETS[1]  # the first attempt goes at once
    # No fourth: wait past the whole remaining schedule (the 4th would come at 180/SCALE).
    time.sleep(OFFSETS[-1] - OFFSETS[2] + 0.5)
    assert world.receiver.received == received
    _check_schedule(received)
    assert len({r.body for r in received}) == 1  # the same payload each time
    notifies = [verified(r) for r in received]
    assert len({(n.fields["timestamp"], n.fields["sign"]) for n in notifies}) == 1
    assert all(n.report.state == OrderState.SUCCESS and n.report.amount == 2500 for n in notifies)
    outcomes = [d.outcome for d in world.order(report).deliveries]
    assert outcomes == ["HTTP 200: fail", "HTTP 200: fail", "success"]


def test_a_receiver_that_always_fails_gets_exactly_six_deliveries(open_world):
    # Six kinds of failure: only HTTP 200 with the body 'success', exactly, is a success.
    answers = [
        (200, "fail"),
        (200, "SUCCESS"),
        (200, "success\n"),
        (200, '{"code":0}'),
        (500, "success"),
        (201, "success"),
        (200, "fail"),
    ]
    world = open_world(time_scale=SCALE, answers=answers)
    report = world.create()
    paid_at = time.monotonic()
    world.click(world.page(report), "pay")
    received = world.receiver.wait_for(6, timeout=OFFSETS[-1] + 3)
    assert received[0].at - paid_at < 0.75 * OFFSETS[1]
    assert len(received) == 6
    time.sleep(1.0)  # nothing after the sixth
    assert world.receiver.received == received
    _check_schedule(received)
    assert len({r.body for r in received}) == 1
    assert [d.outcome for d in world.order(report).deliveries] == [
        "HTTP 200: fail",
        "HTTP 200: SUCCESS",
        "HTTP 200: success\n",
        'HTTP 200: {"code":0}',
        "HTTP 500: success",
        "HTTP 201: success",
    ]
    assert world.query_state(report) == OrderState.SUCCESS  # a lost notify changes nothing


def test_an_unreachable_receiver_is_tried_six_times(open_world):
    dead = f"http://127.0.0.1:{free_port()}/notify"  # nothing listens there
    world = open_world(time_scale=1000, notify_url=dead)
    report = world.create()
    world.click(world.page(report), "pay")
    deadline = time.monotonic() + 5
    while len(world.order(report).deliveries) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    time.sleep(0.5)
    outcomes = [d.outcome for d in world.order(report).deliveries]
    assert outcomes == ["ConnectError"] * 6


def test_the_page_reader_reads_what_it_should():
    """The HTML reader used above, on a fixed page (so the page tests fail for the page)."""
    markup = (
        "<title>T 1</title><h1>Order A</h1><p id='a'>x <b>y</b></p>"
        "<form method='post' action='/p'><input name='n' value='1'>"
        "<button id='go'>Go</button></form><ul id='l'><li>one</li><li>two</li></ul>"
    )
    page = Page("http://x/", markup)
    assert page.first("title") == "T 1" and page.get("a") == "x y" and page.first("h1") == "Order A"
    assert page.form_with("go") == Form("/p", "post", {"n": "1"}, ["go"])
    assert page.items("l") == ["one", "two"] and page.items("a") == []
    with pytest.raises(LookupError):
        page.form_with("stop")


@pytest.mark.parametrize("notify_url", ["http://[::1/notify", "http://127.0.0.1:99999/notify"])
def test_an_unusable_notify_url_is_refused_or_its_failures_recorded(open_world, notify_url):
    world = open_world(time_scale=1000, notify_url=notify_url)
    try:
        report = world.create()
    except ProviderRejected:
        return  # refusing the URL at create is as good
    world.click(world.page(report), "pay")
    deadline = time.monotonic() + 2
    while len(world.order(report).deliveries) < 6 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert len(world.order(report).deliveries) == 6
    assert "none yet" not in world.page(report).get("deliveries")
