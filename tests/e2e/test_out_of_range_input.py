"""Issue 15, fault 13: numbers from Telegram that crashed the bot instead of being refused.

Through the real bot on the Bot API emulator, on SQLite (where an int at or above 2^63 does
not even bind: OverflowError) and on MariaDB, and at the adapter level on both.
"""

from __future__ import annotations

import pytest

from adapters.mysql import MySqlDatabase
from adapters.sql.uow import SqlUnitOfWorkFactory
from flamepay.errors import Refused
from flamepay.user import User
from tests.helpers.bot_support import ADMIN, USER, ask, last_id, start_product
from tests.helpers.sqlite_product import start_sqlite_product

TOO_BIG = str(2**63)  # one above the largest BIGINT / SQLite INTEGER
ERROR_REPLY = "Something went wrong on our side"


def answer(product, user: int, send) -> str:
    """Do `send()` as `user`; the plain text of the bot's next new message to that chat."""
    last = last_id(product, user)
    send()
    reply = product.emulator.wait_for(
        lambda m: m.chat_id == user and m.message_id > last, timeout=15
    )
    return reply.plain_text


def typed(product, user: int, text: str) -> str:
    return answer(product, user, lambda: product.emulator.send_message(user, text))


def pressed(product, user: int, data: str) -> str:
    """A (forged) button press carrying `data`, under the bot's latest message to `user`."""
    message_id = last_id(product, user)
    return answer(product, user, lambda: product.emulator.press_button(user, message_id, data))


@pytest.fixture
def sqlite_product(tmp_path):
    product = start_sqlite_product(tmp_path)
    try:
        # An activated user with a package, so the user's buttons reach the use cases.
        ask(product, ADMIN, "/gateway ALI_QR Alipay on", "is on")
        ask(product, ADMIN, "/package_add ALI_QR Basic 100", "added")
        code = ask(product, ADMIN, "/gencode", "code(s)").plain_text.splitlines()[-1].strip()
        ask(product, USER, f"/activate {code}", "Activated")
        yield product
    finally:
        product.close()


ADMIN_COMMANDS_WITH_IDS = [
    f"/user {TOO_BIG}",
    f"/ban {TOO_BIG}",
    f"/unban {TOO_BIG}",
    f"/payout_approve {TOO_BIG}",
    f"/payout_reject {TOO_BIG} because",
    f"/package_off {TOO_BIG}",
    f"/gencode {TOO_BIG}",
    f"/gencode 1 {TOO_BIG}",
    "/user ²",
    "/ban ١٢",
    "/user 0",
]


def test_fault13a_admin_ids_at_or_above_2_63_are_refused_on_sqlite(sqlite_product) -> None:
    """Issue 15 fault 13 (a): an admin command with an id at or above 2^63 crashed the bot on
    SQLite (OverflowError: Python int too large to convert to SQLite INTEGER); it must be
    refused with what is expected, and nothing changes."""
    product = sqlite_product
    before = product.books()
    for command in ADMIN_COMMANDS_WITH_IDS:
        reply = typed(product, ADMIN, command)
        assert ERROR_REPLY not in reply, command
        assert "Expected" in reply and "9223372036854775807" in reply, (command, reply)
    # /adjust to a user id too big: refused when typed, before any confirmation.
    reply = typed(product, ADMIN, f"/adjust {TOO_BIG} +5 typo")
    assert ERROR_REPLY not in reply and "Expected" in reply, reply
    assert product.books() == before


ADMIN_BUTTONS = [
    f"ap:{TOO_BIG}",
    f"apc:{TOO_BIG}",
    f"rj:{TOO_BIG}",
    f"rv:c:{TOO_BIG}",
    f"rv:r:{TOO_BIG}",
    f"rv:a:{TOO_BIG}",
    "ap:²",
    "apc:²",
    "rv:c:²",
    "rj:²",
]
USER_BUTTONS = [
    "pp:²",
    "pp:١",
    f"pp:{TOO_BIG}",
    "pp:0",
    "op:²",
    "hp:²",
    "yp:²",
    f"op:{TOO_BIG}",
    f"hp:{TOO_BIG}",
    f"yp:{TOO_BIG}",
]


def test_fault13ac_forged_button_ids_are_refused_on_sqlite(sqlite_product) -> None:
    """Issue 15 fault 13 (a, c): callback data with a Unicode digit (`pp:²`, which
    str.isdigit() accepts and int() does not) or an id at or above 2^63 crashed the handler;
    each press must be refused with what is expected, and nothing changes."""
    product = sqlite_product
    before = product.books()
    for data in ADMIN_BUTTONS:
        reply = pressed(product, ADMIN, data)
        assert ERROR_REPLY not in reply, (data, reply)
        assert "Expected" in reply, (data, reply)
    for data in USER_BUTTONS:
        reply = pressed(product, USER, data)
        assert ERROR_REPLY not in reply, (data, reply)
        assert "Expected" in reply, (data, reply)
    assert product.books() == before
    # The user's real button still works afterwards.
    assert "Choose an amount" in typed(product, USER, "/pay")


def test_fault13b_a_huge_adjust_amount_is_refused_with_the_maximum(sqlite_product) -> None:
    """Issue 15 fault 13 (b): an /adjust amount beyond what the books take must be refused
    with a message naming the maximum, typed or confirmed, and nothing changes."""
    product = sqlite_product
    before = product.books()
    for amount in ("+99999999999", "+1000000000", "-99999999999999999999", "+9223372036854775808"):
        reply = typed(product, ADMIN, f"/adjust {USER} {amount} typo")
        assert ERROR_REPLY not in reply, reply
        assert "at most 999999999.99" in reply, (amount, reply)
    assert product.books() == before
    # The largest amount is still accepted and credited once.
    reply = typed(product, ADMIN, f"/adjust {USER} +999999999.99 bonus")
    assert "Adjust user 501 by +999999999.99 USD" in reply
    confirm = next(d for t, d in product.emulator.messages(ADMIN)[-1].buttons() if t == "Confirm")
    assert "adjusted by +999999999.99" in pressed(product, ADMIN, confirm)


def test_fault13b_the_core_refuses_an_adjustment_beyond_the_maximum(sqlite_product) -> None:
    """Issue 15 fault 13 (b), at the core: adjust_balance called with more cents than the
    books take (another caller than the bot) is refused with the maximum, not a DB crash."""
    from flamepay.adjust_balance import adjust_balance

    product = sqlite_product
    before = product.books()
    for cents in (2**63, -(2**63), 100_000_000_000):
        with pytest.raises(Refused, match=r"at most 999999999\.99"):
            adjust_balance(product.app.core, ADMIN, USER, cents, "typo")
    assert product.books() == before


def test_fault13a_sqlite_adapter_refuses_an_out_of_range_id(sqlite_database) -> None:
    """Issue 15 fault 13 (a), at the adapter: a lookup by an id at or above 2^63 on SQLite is
    a refusal that says what is expected, not an OverflowError."""
    factory = SqlUnitOfWorkFactory(sqlite_database)
    for lookup in (
        lambda uow: uow.users.get(2**63),
        lambda uow: uow.payouts.get(2**63),
        lambda uow: uow.orders.get(-(2**63) - 1),
    ):
        with factory() as uow, pytest.raises(Refused, match="9223372036854775807"):
            lookup(uow)
    with factory() as uow:  # the largest id is an ordinary "not there"
        assert uow.users.get(2**63 - 1) is None


@pytest.mark.mysql
def test_fault13a_mysql_adapter_refuses_an_out_of_range_value(mysql_database) -> None:
    """Issue 15 fault 13 (a), at the adapter on MariaDB: a lookup by an id beyond BIGINT finds
    nothing, and a row carrying one is refused (not a raw driver error), storing nothing."""
    factory = SqlUnitOfWorkFactory(mysql_database)
    with factory() as uow:
        assert uow.users.get(2**63) is None
    with factory() as uow, pytest.raises(Refused, match="9223372036854775807"):
        uow.users.add(User(2**64, activated_at=None))
    connection = MySqlDatabase(mysql_database.config).raw_connection()
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM users")
            assert cursor.fetchone()[0] == 0
    finally:
        connection.close()


@pytest.mark.mysql
def test_fault13_the_same_refusals_on_mariadb(mysql_database) -> None:
    """Issue 15 fault 13 on MariaDB: the same commands and buttons are refused there too."""
    product = start_product(mysql_database.config)
    try:
        ask(product, ADMIN, "/gateway ALI_QR Alipay on", "is on")
        ask(product, ADMIN, "/package_add ALI_QR Basic 100", "added")
        code = ask(product, ADMIN, "/gencode", "code(s)").plain_text.splitlines()[-1].strip()
        ask(product, USER, f"/activate {code}", "Activated")
        for command in (*ADMIN_COMMANDS_WITH_IDS, f"/adjust {USER} +99999999999 typo"):
            reply = typed(product, ADMIN, command)
            assert ERROR_REPLY not in reply and "Expected" in reply, (command, reply)
        for data in ADMIN_BUTTONS:
            assert "Expected" in pressed(product, ADMIN, data), data
        for data in USER_BUTTONS:
            assert "Expected" in pressed(product, USER, data), data
        assert product.scalar("SELECT COUNT(*) FROM journals") == 0
        assert product.scalar("SELECT COUNT(*) FROM orders") == 0
    finally:
        product.close()
