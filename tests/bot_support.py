"""The whole product on loopback for bot tests: Bot API emulator, sandbox gateway, callback
app and the real bot, built by the composition root, on MariaDB."""

from __future__ import annotations

import asyncio
import threading
from contextlib import ExitStack

import attrs

from adapters.mysql import MySqlConfig, MySqlDatabase
from entrypoints.bootstrap import FlamePay, build
from entrypoints.bot.application import BotRuntime
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


class BotThread:
    """Runs the bot's event loop in a thread of its own, as `flamepay bot` runs it."""

    def __init__(self, runtime: BotRuntime) -> None:
        self.runtime = runtime
        self.loop = asyncio.new_event_loop()
        self._started = threading.Event()
        self._failure: list[BaseException] = []
        self.thread = threading.Thread(target=self._run, name="bot", daemon=True)

    def _run(self) -> None:
        asyncio.set_event_loop(self.loop)
        try:
            self.loop.run_until_complete(self.runtime.start())
        except BaseException as error:
            self._failure.append(error)
            self._started.set()
            return
        self._started.set()
        self.loop.run_forever()

    def start(self) -> None:
        self.thread.start()
        self._started.wait(30)
        if self._failure:
            raise RuntimeError("the bot did not start") from self._failure[0]

    def call(self, coro, timeout: float = 30):
        return asyncio.run_coroutine_threadsafe(coro, self.loop).result(timeout)

    def stop(self) -> None:
        if self.thread.is_alive() and not self._failure:
            self.call(self.runtime.stop())
            self.loop.call_soon_threadsafe(self.loop.stop)
            self.thread.join(30)
        self.loop.close()


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
