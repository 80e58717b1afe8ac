"""The real bot, built by the composition root, against the Bot API emulator, the sandbox
gateway and the callback app over loopback, on MariaDB: what a user does, end to end."""

from __future__ import annotations

import time

import httpx
import pytest

from tests.helpers.bot_support import (
    TRC20_ADDRESS,
    USER,
    activated_user,
    ask,
    balances,
    press,
    start_product,
)

pytestmark = pytest.mark.mysql
OTHER = 502


@pytest.fixture
def product(mysql_database):
    product = start_product(mysql_database.config)
    yield product
    product.close()


def test_a_user_pays_sees_the_credit_and_asks_for_a_payout(product) -> None:
    product.add_package("100")
    start = ask(product, USER, "/start", "not activated")
    assert start.text.startswith("[SANDBOX] ")
    activated_user(product)
    choose = ask(product, USER, "/pay", "Choose an amount")
    card = press(product, USER, choose, "100.00 USD", "To be credited: 85.00 USD")
    assert "Fee: 15.00 USD" in card.text and "Amount: 100.00 USD" in card.text
    cashier = next(
        line.split("Pay here: ", 1)[1]
        for line in card.text.splitlines()
        if line.startswith("Pay here: ")
    )
    # Loopback cashier URL: as text only; Telegram refuses a URL button to it.
    assert not any(text == "Pay now" for text, _ in card.buttons())
    assert {"Check status", "Cancel"} <= {text for text, _ in card.buttons()}
    paid = httpx.post(f"{cashier}/pay", data={"real_amount": "100.00"}, follow_redirects=True)
    assert paid.status_code == 200
    credited = product.emulator.wait_for(
        lambda m: m.chat_id == USER and "85.00 USD credited" in m.text, timeout=20
    )
    assert credited.text.startswith("[SANDBOX] ")  # an outbox message, sent by the bot
    balance = ask(product, USER, "/balance", "Available:")
    assert "Available: 85.00 USD\nOn hold: 0.00 USD\nCredited in total: 85.00 USD" in balance.text
    requested = ask(product, USER, f"/payoutrequest 50 TRC20 {TRC20_ADDRESS}", "Payout #")
    assert "50.00 USD" in requested.text and "50.00 USDT" in requested.text
    after = ask(product, USER, "/balance", "Available:")
    assert "Available: 35.00 USD\nOn hold: 50.00 USD" in after.text
    assert balances(product, USER) == (3500, 5000)


def test_the_guided_payout_asks_step_by_step(product) -> None:
    product.add_package("100")
    activated_user(product)
    from flamepay.adjust_balance import adjust_balance

    adjust_balance(product.app.core, 1, USER, 2000, "test funds")
    ask(product, USER, "/payoutrequest", "How much?")
    network = ask(product, USER, "12.50", "Which network?")
    press(product, USER, network, "USDT TRC20", "address")
    confirm = ask(product, USER, TRC20_ADDRESS, "You will receive 12.50 USDT")
    done = press(product, USER, confirm, "Confirm", "Payout #")
    assert "12.50" in done.text
    assert balances(product, USER) == (750, 1250)
    # A second tap on the used button changes nothing.
    product.emulator.press_button(USER, confirm.message_id, "po:yes")
    product.emulator.wait_for(lambda m: m.chat_id == USER and "already handled" in m.text)
    assert balances(product, USER) == (750, 1250)


def test_group_chats_are_ignored(product) -> None:
    activated_user(product)
    product.emulator.send_message(USER, "/balance", chat_type="group", chat_id=-100123)
    time.sleep(2)
    assert product.emulator.messages(-100123) == []


@pytest.mark.parametrize(
    ("text", "fragment"),
    [
        ("/activate", "Expected: /activate"),
        ("/activate NOT-A-REAL-CODE-1", "already activated"),
        ("/status", "Expected: /status"),
        ("/status FP-nope", "No such order of yours"),
        ("/cancel", "Expected: /cancel"),
        ("/payoutrequest 1e3 TRC20 x", "Expected an amount"),
        ("/payoutrequest 10 XYZ TRAddr", "Expected a network"),
        ("/payoutrequest 10 TRC20 Tnotanaddress", "TRC20 address"),
        ("/payoutrequest 10 BEP20 0x1234", "BEP20 address"),
        ("/payoutrequest 5 TRC20 " + TRC20_ADDRESS, "minimum payout"),
        ("/payoutrequest 10", "Expected: /payoutrequest"),
        ("/frobnicate", "I do not know that command"),
        ("hello", "Send a command"),
    ],
)
def test_bad_input_is_answered_and_changes_nothing(product, text: str, fragment: str) -> None:
    activated_user(product)
    from flamepay.adjust_balance import adjust_balance

    adjust_balance(product.app.core, 1, USER, 2000, "test funds")
    before = (
        balances(product, USER),
        product.scalar("SELECT COUNT(*) FROM payouts"),
        product.scalar("SELECT COUNT(*) FROM orders"),
    )
    ask(product, USER, text, fragment)
    after = (
        balances(product, USER),
        product.scalar("SELECT COUNT(*) FROM payouts"),
        product.scalar("SELECT COUNT(*) FROM orders"),
    )
    assert after == before


def test_a_wrong_code_is_refused_counted_and_activates_nothing(product) -> None:
    ask(product, OTHER, "/activate WRONGCODE12345", "not valid")
    assert (
        product.scalar("SELECT COUNT(*) FROM activation_attempts WHERE user_id = %s", (OTHER,)) == 1
    )
    assert product.scalar("SELECT activated_at FROM users WHERE id = %s", (OTHER,)) is None


def test_unactivated_and_banned_users_are_told_what_to_do(product) -> None:
    product.add_package("100")
    ask(product, OTHER, "/pay", "not activated")
    ask(product, OTHER, "/balance", "not activated")
    activated_user(product, OTHER)
    from flamepay.ban_user import ban_user

    ban_user(product.app.core, 1, OTHER)
    ask(product, OTHER, "/pay", "banned")
    assert product.scalar("SELECT COUNT(*) FROM orders") == 0


def test_forged_buttons_are_checked(product) -> None:
    product.add_package("100")
    activated_user(product)
    activated_user(product, OTHER)
    choose = ask(product, USER, "/pay", "Choose an amount")
    card = press(product, USER, choose, "100.00 USD", "To be credited")
    number = next(d for t, d in card.buttons() if t == "Check status").split(":", 1)[1]
    # Another user's client forges "cancel" with this order's number under a message of its
    # own chat (callback data is untrusted input).
    theirs = ask(product, OTHER, "/start", "Welcome")
    product.emulator.press_button(OTHER, theirs.message_id, f"cx:{number}")
    product.emulator.wait_for(lambda m: m.chat_id == OTHER and "No such order of yours" in m.text)
    product.emulator.press_button(OTHER, theirs.message_id, "pp:999999")
    product.emulator.wait_for(lambda m: m.chat_id == OTHER and "not available" in m.text)
    assert product.scalar("SELECT state FROM orders") == 1
    assert product.scalar("SELECT COUNT(*) FROM orders") == 1


def test_commands_are_registered(product) -> None:
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not product.emulator.commands:
        time.sleep(0.1)
    listed = next(iter(product.emulator.commands.values()))
    names = {c["command"] if isinstance(c, dict) else c[0] for c in listed}
    assert {"start", "help", "activate", "pay", "balance", "payoutrequest"} <= names


def test_check_status_reads_the_store_and_asks_the_gateway_once_a_minute(product) -> None:
    product.add_package("100")
    activated_user(product)
    choose = ask(product, USER, "/pay", "Choose an amount")
    card = press(product, USER, choose, "100.00 USD", "To be credited")
    calls = product.app.provider.calls
    first = press(product, USER, card, "Check status", "State: waiting for payment")
    assert product.app.provider.calls == calls + 1  # one query to the gateway
    second = press(product, USER, card, "Check status", "State: waiting for payment")
    assert second.message_id > first.message_id
    assert product.app.provider.calls == calls + 1  # within the minute: the stored state only
