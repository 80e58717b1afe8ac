"""The cashier page in a real browser: headless Chromium clicks Pay and Fail.

Chromium is driven over the DevTools protocol (tests/helpers/browser.py). CI installs it with
`apt-get install -y chromium`; without /usr/bin/chromium these tests are skipped.
"""

from __future__ import annotations

import struct
from collections.abc import Iterator

import pytest

from flamepay.order import OrderState
from tests.helpers.browser import PNG_SIGNATURE, Chromium, chromium_available
from tests.helpers.sandbox_world import verified

pytestmark = pytest.mark.skipif(
    not chromium_available(),
    reason="no /usr/bin/chromium (install it with: apt-get install -y chromium)",
)


@pytest.fixture(scope="module")
def browser() -> Iterator[Chromium]:
    with Chromium(width=900, height=700) as chromium:
        yield chromium


def png_size(png: bytes) -> tuple[int, int]:
    assert png.startswith(PNG_SIGNATURE)
    assert png[12:16] == b"IHDR"
    return struct.unpack(">II", png[16:24])


def test_chromium_clicks_pay_and_sees_the_order_paid(open_world, browser):
    world = open_world()
    report = world.create(amount=2599)
    assert report.cashier_url is not None
    browser.navigate(report.cashier_url)
    assert browser.text("state") == "waiting for payment"
    assert browser.text("amount") == "25.99 USD"
    assert browser.evaluate("document.getElementById('real_amount').value") == "25.99"
    assert browser.evaluate("document.title") == f"Order {report.mch_order_no}"
    before = browser.screenshot()
    assert png_size(before) == (900, 700)

    browser.click("pay")
    assert browser.url.startswith(report.cashier_url + "?")  # back on the page, with a note
    assert browser.text("state") == "paid"
    assert browser.text("note") == "Paid."
    assert browser.text("pay") is None and browser.text("fail") is None
    assert world.order(report).state == OrderState.SUCCESS
    assert world.query_state(report) == OrderState.SUCCESS

    (received,) = world.receiver.wait_for(1, timeout=5)
    notify = verified(received)
    assert notify.report.mch_order_no == report.mch_order_no
    assert (notify.report.state, notify.report.amount, notify.report.real_amount) == (2, 2599, 2599)

    browser.navigate(report.cashier_url)  # the delivery's result, on the page
    assert browser.text("deliveries").strip().endswith("UTC: success")
    after = browser.screenshot()
    assert png_size(after) == (900, 700) and after != before


def test_chromium_types_another_amount_and_pays(open_world, browser):
    world = open_world("jeepay")
    report = world.create(amount=5000)
    assert report.cashier_url is not None
    browser.navigate(report.cashier_url)
    browser.evaluate("document.getElementById('real_amount').value = '48.75'")
    browser.click("pay")
    assert browser.text("state") == "paid"
    (received,) = world.receiver.wait_for(1, timeout=5)
    assert (verified(received).report.amount, verified(received).report.real_amount) == (5000, 4875)
    assert world.order(report).real_amount == 4875


def test_chromium_clicks_fail_and_sees_the_order_failed(open_world, browser):
    world = open_world()
    report = world.create()
    assert report.cashier_url is not None
    browser.navigate(report.cashier_url)
    browser.click("fail")
    assert browser.text("state") == "failed"
    assert browser.text("note") == "Failed."
    assert browser.text("pay") is None
    assert world.query_state(report) == OrderState.FAILED
    assert world.receiver.settled() == []
