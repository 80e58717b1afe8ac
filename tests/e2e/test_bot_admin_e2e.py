"""Admins in the bot, end to end: two admins, the payout queue, reviews, refusals, the
outbox's delivery rules and the fault alerts (emulator, sandbox, callback app, MariaDB)."""

from __future__ import annotations

import time

import httpx
import pytest

from entrypoints.bot import outbox as outbox_module
from entrypoints.bot.admin import ADMIN_COMMANDS, safe_cell
from flamepay.adjust_balance import adjust_balance
from flamepay.alerts import raise_alert
from tests.helpers.bot_support import TRC20_ADDRESS, ask, balances, press, start_product

pytestmark = pytest.mark.mysql
A1, A2, USER, STRANGER = 1, 2, 501, 777


@pytest.fixture
def product(mysql_database):
    product = start_product(mysql_database.config, admins=f"{A1},{A2}")
    yield product
    product.close()


def pay(product, user: int = USER, amount: str = "100") -> str:
    choose = ask(product, user, "/pay", "Choose an amount")
    card = press(product, user, choose, f"{amount}.00 USD", "To be credited")
    cashier = next(
        line.split("Pay here: ", 1)[1]
        for line in card.text.splitlines()
        if line.startswith("Pay here: ")
    )
    httpx.post(f"{cashier}/pay", data={}, follow_redirects=True)
    product.emulator.wait_for(lambda m: m.chat_id == user and "USD credited" in m.text, timeout=20)
    return cashier


def setup_catalogue(product) -> None:
    code_reply = ask(product, A1, "/gencode 2", "code(s)")
    assert "<code>" in code_reply.text  # each code in monospace
    code = code_reply.plain_text.splitlines()[-1].strip()
    ask(product, A1, "/gateway ALI_QR Alipay QR on", "is on")
    added = ask(product, A1, "/package_add ALI_QR Basic 100", "added")
    assert "100.00 USD" in added.text
    ask(product, USER, f"/activate {code}", "Activated")


def request_payout(product, amount: str = "50") -> int:
    reply = ask(product, USER, f"/payoutrequest {amount} TRC20 {TRC20_ADDRESS}", "Payout #")
    return int(reply.plain_text.split("Payout #", 1)[1].split()[0])


def admin_copy(product, admin: int, payout_id: int):
    return product.emulator.wait_for(
        lambda m: m.chat_id == admin and f"Payout #{payout_id} requested" in m.text, timeout=15
    )


def test_the_admin_story_with_two_admins(product) -> None:
    setup_catalogue(product)
    big = ask(product, A1, "/package_add ALI_QR Huge 20000", "above the")
    assert "20000.00 USD" in big.text
    press(product, A1, big, "Yes, add", "added")
    pay(product)
    payout_id = request_payout(product)
    first, second = admin_copy(product, A1, payout_id), admin_copy(product, A2, payout_id)
    for copy in (first, second):
        assert {"Approve", "Reject"} <= {text for text, _ in copy.buttons()}
        assert TRC20_ADDRESS in copy.text and "50.00" in copy.text
    confirm = press(product, A1, first, "Approve", "Approve payout")
    assert TRC20_ADDRESS in confirm.text and "50.00 USDT" in confirm.text
    press(product, A1, confirm, "Yes, approve", "approved")
    product.emulator.wait_for(lambda m: m.chat_id == USER and "was approved" in m.text)
    for admin, copy in ((A1, first), (A2, second)):
        edited = product.emulator.wait_for(
            lambda m, a=admin, c=copy: (
                m.chat_id == a and m.message_id == c.message_id and "approved by 1" in m.text
            ),
            timeout=15,
        )
        assert edited.buttons() == []  # nobody can press Approve on it again
    balance = ask(product, USER, "/balance", "Available:")
    assert "Available: 35.00 USD" in balance.text and "On hold: 0.00 USD" in balance.text
    # The second admin's command arrives late: refused, nothing moves.
    ask(product, A2, f"/payout_approve {payout_id} tx-late", "already approved")
    assert balances(product, USER) == (3500, 0)
    assert product.scalar("SELECT COUNT(*) FROM journals WHERE kind = 'payout-post'") == 1


def test_reject_asks_for_a_reason_and_returns_the_money(product) -> None:
    setup_catalogue(product)
    pay(product)
    payout_id = request_payout(product, "40")
    copy = admin_copy(product, A2, payout_id)
    press(product, A2, copy, "Reject", "Send the reason")
    ask(product, A2, "address belongs to a sanctioned exchange", "rejected")
    told = product.emulator.wait_for(lambda m: m.chat_id == USER and "was rejected" in m.text)
    assert "sanctioned exchange" in told.text
    assert balances(product, USER) == (8500, 0)


def test_a_mismatch_goes_to_review_and_credits_the_real_amount_once(product) -> None:
    setup_catalogue(product)
    choose = ask(product, USER, "/pay", "Choose an amount")
    card = press(product, USER, choose, "100.00 USD", "To be credited")
    number = next(d for t, d in card.buttons() if t == "Check status").split(":", 1)[1]
    # The payer typed 90.00: the gateway pays and notifies the real amount.
    cashier = next(
        line.split("Pay here: ", 1)[1]
        for line in card.text.splitlines()
        if line.startswith("Pay here: ")
    )
    httpx.post(f"{cashier}/pay", data={"real_amount": "90.00"}, follow_redirects=True)
    product.emulator.wait_for(lambda m: m.chat_id == A1 and "Review:" in m.text, timeout=20)
    assert (
        product.scalar("SELECT review FROM orders WHERE mch_order_no = %s", (number.encode(),))
        == "pending"
    )
    item = ask(product, A1, "/review", "mismatch")
    press(product, A1, item, "Credit", "credited")
    product.emulator.wait_for(lambda m: m.chat_id == USER and "76.50 USD credited" in m.text)
    assert balances(product, USER) == (7650, 0)  # 90.00 at the stored 15%
    product.emulator.press_button(
        A1, item.message_id, next(d for t, d in item.buttons() if t == "Credit")
    )
    product.emulator.wait_for(lambda m: m.chat_id == A1 and "already credited" in m.text)
    assert balances(product, USER) == (7650, 0)


def test_every_admin_command_and_button_is_refused_to_a_user(product) -> None:
    refused_before = product.scalar(
        "SELECT COUNT(*) FROM audit_log WHERE action = 'admin_action_refused'"
    )
    for name, _ in ADMIN_COMMANDS:
        if name != "payouts":  # for anyone else /payouts lists their own (tested below)
            ask(product, STRANGER, f"/{name} 1 2 3", "Not allowed")
    theirs = ask(product, STRANGER, "/start", "Welcome")
    for data in ("ap:1", "apc:1", "rj:1", "rv:c:1", "rv:a:1"):
        last = max(m.message_id for m in product.emulator.messages(STRANGER))
        product.emulator.press_button(STRANGER, theirs.message_id, data)
        product.emulator.wait_for(
            lambda m, n=last: m.chat_id == STRANGER and m.message_id > n and "Not allowed" in m.text
        )
    refused = product.scalar("SELECT COUNT(*) FROM audit_log WHERE action = 'admin_action_refused'")
    # /payouts lists the user's own payouts instead of refusing: every other command refuses.
    assert refused - refused_before == (len(ADMIN_COMMANDS) - 1) + 5


def test_export_is_a_csv_that_a_spreadsheet_will_not_run(product) -> None:
    setup_catalogue(product)
    pay(product)
    adjust_balance(product.app.core, A1, USER, 100, '=HYPERLINK("http://evil")')
    product.emulator.send_message(A1, "/export")
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and not product.emulator.documents:
        time.sleep(0.05)
    chat_id, filename, data, _ = product.emulator.documents[-1]
    assert chat_id == A1 and filename.endswith(".csv")
    text = data.decode()
    assert "'=HYPERLINK" in text and ",=HYPERLINK" not in text
    assert ",-100.00," in text  # amounts stay plain signed decimals
    assert safe_cell("+1") == "'+1" and safe_cell("\tx") == "'\tx" and safe_cell("ok") == "ok"


def test_outbox_waits_on_429_and_delivers_once(product) -> None:
    product.emulator.fail_next("sendMessage", status=429, retry_after=1)
    started = time.monotonic()
    raise_alert(product.app.core, "drill", "a drill alert")
    product.bot.runtime.outbox.poke()
    product.emulator.wait_for(lambda m: m.chat_id == A1 and "a drill alert" in m.text)
    assert time.monotonic() - started >= 1
    time.sleep(0.5)
    for admin in (A1, A2):
        assert sum("a drill alert" in m.text for m in product.emulator.messages(admin)) == 1
    assert product.scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL") == 0


def test_a_user_who_blocked_the_bot_is_marked_and_not_retried(product) -> None:
    setup_catalogue(product)
    pay(product)
    payout_id = request_payout(product, "20")
    product.emulator.block(USER)  # then the admin rejects: the user is to be told
    ask(product, A1, f"/payout_reject {payout_id} duplicate request", "rejected")
    deadline = time.monotonic() + 15
    while (
        time.monotonic() < deadline
        and product.scalar("SELECT blocked_bot_at FROM users WHERE id = %s", (USER,)) is None
    ):
        time.sleep(0.1)
    assert product.scalar("SELECT blocked_bot_at FROM users WHERE id = %s", (USER,)) is not None
    time.sleep(0.5)
    pending = "SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL AND audience = 'user'"
    assert product.scalar(pending) == 0  # marked sent: never retried


def test_a_crash_between_send_and_mark_repeats_but_never_loses(product, monkeypatch) -> None:
    real = outbox_module.mark_sent
    crashes = []

    def crash_once(core, message_id):
        if not crashes:
            crashes.append(message_id)
            raise RuntimeError("the process died before marking")
        real(core, message_id)

    monkeypatch.setattr(outbox_module, "mark_sent", crash_once)
    raise_alert(product.app.core, "crash-drill", "crash drill alert")
    product.bot.runtime.outbox.poke()
    deadline = time.monotonic() + 15
    while (
        time.monotonic() < deadline
        and product.scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL") != 0
    ):
        time.sleep(0.1)
    seen = sum("crash drill alert" in m.text for m in product.emulator.messages(A1))
    assert crashes and seen == 2  # repeated once, not lost
    assert product.scalar("SELECT COUNT(*) FROM outbox WHERE sent_at IS NULL") == 0


def test_a_wrong_key_burst_raises_exactly_one_alert(product) -> None:
    setup_catalogue(product)
    pay(product)
    number = product.scalar("SELECT mch_order_no FROM orders LIMIT 1").decode()
    fields = {
        "mchNo": product.app.merchant.mch_no,
        "mchOrderNo": number,
        "amount": "10000",
        "state": "2",
        "currency": "usd",
        "sign": "0" * 32,
    }
    for _ in range(8):
        response = httpx.post(f"{product.web_url}/notify", data=fields)
        assert response.status_code == 401
    product.bot.runtime.outbox.poke()
    product.emulator.wait_for(lambda m: m.chat_id == A1 and "signature" in m.text, timeout=15)
    time.sleep(1)
    assert sum("refused for their signature" in m.text for m in product.emulator.messages(A1)) == 1


def test_admin_commands_are_registered_in_each_admins_chat(product) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not {"chat:1", "chat:2"} <= set(
        product.emulator.commands
    ):
        time.sleep(0.1)
    for admin in (A1, A2):
        names = {c["command"] for c in product.emulator.commands[f"chat:{admin}"]}
        assert {"payouts", "review", "gencode", "export", "balance"} <= names
    default = {c["command"] for c in product.emulator.commands["default"]}
    assert "gencode" not in default and "pay" in default
