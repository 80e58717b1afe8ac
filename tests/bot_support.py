"""The whole product on loopback for bot tests: Bot API emulator, sandbox gateway, callback
app and the real bot, built by the composition root, on MariaDB."""

from __future__ import annotations

from contextlib import ExitStack

import attrs

from adapters.mysql import MySqlConfig, MySqlDatabase
from entrypoints.bootstrap import FlamePay
from entrypoints.bot.runner import BotThread
from entrypoints.local import start_local
from entrypoints.sandbox import Sandbox
from entrypoints.telegram_emulator import BotApiEmulator
from flamepay.configure_gateway import configure_gateway
from flamepay.generate_codes import generate_codes
from tests.web_support import TOKEN, settings_values

ADMIN = 1
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
        connection = MySqlDatabase(self.config).raw_connection()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, params)
                row = cursor.fetchone()
                return row[0] if row else None
        finally:
            connection.close()


def start_product(config: MySqlConfig, admins: str | None = None, **extra: str) -> Product:
    values = settings_values(config, ADMIN_IDS=admins or str(ADMIN), **extra)
    local = start_local(TOKEN, values, MySqlDatabase(config))
    return Product(local.app, local.emulator, local.sandbox, local.bot, config, local.stack)
