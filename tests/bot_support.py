"""The whole product on loopback for bot tests: Bot API emulator, sandbox gateway, callback
app and the real bot, built by the composition root, on MariaDB."""

from __future__ import annotations

from contextlib import ExitStack

import attrs

from adapters.mysql import MySqlConfig, MySqlDatabase
from entrypoints.bootstrap import FlamePay, build
from entrypoints.bot.application import BotRuntime
from entrypoints.bot.runner import BotThread
from entrypoints.sandbox import Sandbox, build_app, sandbox_config
from entrypoints.serving import free_port, serving
from entrypoints.settings import load_settings
from entrypoints.telegram_emulator import BotApiEmulator
from entrypoints.web import build_web_app
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
    stack = ExitStack()
    try:
        emulator = BotApiEmulator(TOKEN)
        emulator_url = stack.enter_context(serving(emulator.app))
        sandbox_port, web_port = free_port(), free_port()
        values = settings_values(
            config, TELEGRAM_API_URL=f"{emulator_url}/bot", SANDBOX_PORT=str(sandbox_port),
            WEBHOOK_PORT=str(web_port), SANDBOX_TIME_SCALE="1000", ADMIN_IDS=admins or str(ADMIN),
            **extra,
        )  # fmt: skip
        app = build(load_settings(values), MySqlDatabase(config))
        stack.callback(app.close)
        sandbox = Sandbox(sandbox_config(app, f"http://127.0.0.1:{sandbox_port}"))
        stack.enter_context(serving(build_app(sandbox), port=sandbox_port))
        stack.enter_context(serving(build_web_app(app), port=web_port))
        runtime = BotRuntime(app, poll_timeout=1)
        runtime.outbox.interval = 0.2
        bot = BotThread(runtime)
        bot.start()
        stack.callback(bot.stop)
        return Product(app, emulator, sandbox, bot, config, stack)
    except BaseException:
        stack.close()
        raise
