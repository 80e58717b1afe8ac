"""The whole product on loopback for bot tests: Bot API emulator, sandbox gateway, callback
app and the real bot, built by the composition root, on MariaDB."""

from __future__ import annotations

from contextlib import ExitStack

import attrs

from adapters.mysql import MySqlConfig, MySqlDatabase
from entrypoints.bootstrap import FlamePay
from entrypoints.bot.runner import BotThread
from flamepay import ledger
from flamepay.configure_gateway import configure_gateway
from flamepay.generate_codes import generate_codes
from simulators.local import start_local
from simulators.sandbox import Sandbox
from simulators.telegram import BotApiEmulator
from tests.helpers.dbs import scalar
from tests.helpers.web_support import TOKEN, settings_values

ADMIN = 1
USER = 501  # the user of the bot stories
TRC20_ADDRESS = "TR7NHqjeKQxGTCi8q8ZY4pL8otSzgjLj6t"


@attrs.define
class Product:
    app: FlamePay
    emulator: BotApiEmulator
    sandbox: Sandbox
    bot: BotThread
    config: MySqlConfig
    stack: ExitStack

    def close(self) -> None:
        self.stack.close()

    @property
    def web_url(self) -> str:
        settings = self.app.settings
        return f"http://{settings.webhook_host}:{settings.webhook_port}"

    def code(self, uses: int = 1) -> str:
        return generate_codes(self.app.core, ADMIN, uses=uses)[0].code

    def add_package(self, amount: str = "100", way_code: str = "ALI_QR", label: str = "Basic"):
        from flamepay.add_package import add_package

        configure_gateway(self.app.core, ADMIN, way_code, way_code.title(), True)
        return add_package(self.app.core, ADMIN, way_code, label, amount).package

    def scalar(self, sql: str, params: tuple = ()):
        return scalar(self.config, sql, params)


def start_product(config: MySqlConfig, admins: str | None = None, **extra: str) -> Product:
    values = settings_values(config, ADMIN_IDS=admins or str(ADMIN), **extra)
    local = start_local(TOKEN, values, MySqlDatabase(config))
    return Product(local.app, local.emulator, local.sandbox, local.bot, config, local.stack)


# --- what a person does in the chat ----------------------------------------------------------
# `where` is a Product, or the BotApiEmulator itself (a `flamepay run` process seen through it).
def _emulator(where) -> BotApiEmulator:
    return where if isinstance(where, BotApiEmulator) else where.emulator


def last_id(where, chat_id: int) -> int:
    """The newest message id in the chat (0 for none)."""
    return max((m.message_id for m in _emulator(where).messages(chat_id)), default=0)


def ask(
    where, user: int, text: str, fragment: str, chat_id: int | None = None, timeout: float = 15
):
    """Send `text` as `user`; wait for a new bot message in that chat containing `fragment`."""
    emulator, chat = _emulator(where), chat_id or user
    last = last_id(emulator, chat)
    emulator.send_message(user, text, chat_id=chat_id)
    return emulator.wait_for(
        lambda m: m.chat_id == chat and m.message_id > last and fragment in m.text,
        timeout=timeout,
    )


def press(where, user: int, message, label_fragment: str, fragment: str, timeout: float = 15):
    """Press the button whose label contains `label_fragment` on `message`; wait for a new
    message, or an edit of that one, containing `fragment`."""
    emulator = _emulator(where)
    data = next(d for text, d in message.buttons() if label_fragment in text)
    last = last_id(emulator, user)
    edits = message.edits
    emulator.press_button(user, message.message_id, data)
    return emulator.wait_for(
        lambda m: (
            m.chat_id == user
            and fragment in m.text
            and (m.message_id > last or (m.message_id == message.message_id and m.edits > edits))
        ),
        timeout=timeout,
    )


def balances(product, user: int) -> tuple[int, int]:
    available = (
        product.scalar(
            "SELECT balance FROM accounts WHERE name = %s", (ledger.available(user).encode(),)
        )
        or 0
    )
    held = (
        product.scalar(
            "SELECT balance FROM accounts WHERE name = %s", (ledger.held(user).encode(),)
        )
        or 0
    )
    return int(available), int(held)


def activated_user(product, user: int = USER) -> None:
    code = product.code()
    ask(product, user, f"/activate {code}", "Activated")
