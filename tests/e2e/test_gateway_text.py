"""Issue 15 fault 11: the gateway's own text never reaches a Telegram user. The user gets our
sentence; the admins get the gateway's code and message, cut short and with the merchant key
and number replaced."""

from __future__ import annotations

import pytest

from adapters.provider.dialects import JEEPAY as JEEPAY_DIALECT
from flamepay.errors import ProviderRejected
from flamepay.open_order import open_recharge_order
from flamepay.order import OrderState
from flamepay.records import Audience
from tests.helpers.core_checks import USER, admin_rows, stored_order, user_rows
from tests.helpers.gateway_doubles import KEY, REQUEST, Gateway, client
from tests.helpers.gateway_doubles import MERCHANT as CLIENT_MERCHANT
from tests.helpers.support import MERCHANT, make_world

GATEWAY_TEXT = "channel PAYWAY-7 closed, ask ops@gateway.example"


def _open(world):
    return open_recharge_order(world.core, USER, world.add_package(100_00))


def test_a_refused_create_tells_the_user_our_sentence_and_the_admins_the_gateways() -> None:
    """Issue 15 fault 11: a refused create shows the user our own sentence only; the admins
    get one outbox message with the gateway's code and message."""
    world = make_world()
    world.provider.create_rejection = (9999, GATEWAY_TEXT)

    opened = _open(world)

    number = opened.order.mch_order_no
    assert stored_order(world, number).state is OrderState.FAILED
    assert opened.message
    assert "PAYWAY" not in opened.message and "9999" not in opened.message
    assert "gateway.example" not in opened.message
    assert all("PAYWAY" not in m.text for m in user_rows(world))
    [row] = [m for m in admin_rows(world) if m.ref == number]
    assert row.audience is Audience.ADMINS
    assert "9999" in row.text and GATEWAY_TEXT in row.text and number in row.text


def test_the_admins_copy_is_cut_short_and_redacted() -> None:
    """Issue 15 fault 11: the gateway text forwarded to the admins is limited to 200
    characters, on one line, with the merchant number replaced."""
    world = make_world()
    long_text = f"refused for {MERCHANT}\nline two " + "x" * 500
    world.provider.create_rejection = (1001, long_text)

    opened = _open(world)

    [row] = [m for m in admin_rows(world) if m.ref == opened.order.mch_order_no]
    assert MERCHANT not in row.text
    assert "\n" not in row.text
    assert "x" * 200 not in row.text and "x" * 150 in row.text
    assert "xxx" not in opened.message


@pytest.mark.parametrize("code", [9999, 2008])
def test_the_client_never_carries_the_key_or_merchant_number_in_a_refusal(code: int) -> None:
    """Issue 15 fault 11: a gateway message that echoes our key (or merchant number) is
    redacted in the error itself, and cut to 200 characters."""
    echoed = f"bad request key={KEY} mchNo={CLIENT_MERCHANT.mch_no} " + "y" * 400
    gateway = Gateway({"code": code, "msg": echoed})
    with pytest.raises(ProviderRejected) as raised:
        client(JEEPAY_DIALECT, gateway).create_order(REQUEST)
    for text in (raised.value.message, str(raised.value), repr(raised.value)):
        assert KEY not in text and f"mchNo={CLIENT_MERCHANT.mch_no}" not in text
    assert len(raised.value.message) <= 200


def test_a_merchant_error_on_create_shows_the_user_no_gateway_text() -> None:
    """Issue 15 fault 11: a merchant-level refusal on create is our sentence for the user,
    and the gateway's text for the admins only."""
    world = make_world()
    world.provider.create_rejection = (9999, "商户信息不存在或商户状态不可用")

    opened = _open(world)

    assert "商户" not in opened.message and opened.message
    assert any("商户信息不存在" in m.text for m in admin_rows(world))


# --- through the real bot -------------------------------------------------------------------
@pytest.mark.mysql
def test_the_bot_shows_the_user_our_sentence_and_the_admin_the_gateways(mysql_database) -> None:
    """Issue 15 fault 11, end to end: the sandbox refuses a create with its own text; the
    user's order card says our sentence, the admin's chat gets the gateway's code and text."""
    from tests.helpers.bot_support import ADMIN, activated_user, ask, press, start_product
    from tests.helpers.bot_support import USER as USER_E2E

    product = start_product(mysql_database.config)
    try:
        sandbox = product.sandbox
        sandbox.create = lambda body, dialect: sandbox.envelope(None, 9999, GATEWAY_TEXT)
        product.add_package("100")
        activated_user(product)
        choose = ask(product, USER_E2E, "/pay", "Choose an amount")
        card = press(product, USER_E2E, choose, "100.00 USD", "State:")
        assert "PAYWAY" not in card.text and "gateway.example" not in card.text
        admin = product.emulator.wait_for(
            lambda m: m.chat_id == ADMIN and "PAYWAY-7" in m.text, timeout=15
        )
        assert "9999" in admin.text
        assert all("PAYWAY" not in m.text for m in product.emulator.messages(USER_E2E))
    finally:
        product.close()
