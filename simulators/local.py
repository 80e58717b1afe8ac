"""The whole product on loopback: the Bot API emulator, the sandbox gateway, the callback app
and the real bot, wired by the composition root. `flamepay demo` runs on it, and so do the
end-to-end tests, so what the demo shows is what the tests check."""

from __future__ import annotations

from contextlib import ExitStack

import attrs

from adapters.sql.uow import Database
from entrypoints.bootstrap import FlamePay, build
from entrypoints.bot.application import BotRuntime
from entrypoints.bot.runner import BotThread
from entrypoints.serving import free_port, serving
from entrypoints.settings import load_settings
from entrypoints.web import build_web_app
from simulators.sandbox import Sandbox, build_app, sandbox_config
from simulators.telegram import BotApiEmulator


@attrs.define
class LocalStack:
    app: FlamePay
    emulator: BotApiEmulator
    sandbox: Sandbox
    bot: BotThread
    stack: ExitStack

    def close(self) -> None:
        self.stack.close()


def start_local(token: str, values: dict[str, str], database: Database | None = None) -> LocalStack:
    """`values` are settings; the emulator's URL and free loopback ports are added here."""
    stack = ExitStack()
    try:
        emulator = BotApiEmulator(token)
        emulator_url = stack.enter_context(serving(emulator.app))
        sandbox_port, web_port = free_port(), free_port()
        settings = load_settings(
            {
                "SANDBOX_TIME_SCALE": "1000",
                **values,
                "BOT_TOKEN": token,
                "TELEGRAM_API_URL": f"{emulator_url}/bot",
                "SANDBOX_PORT": str(sandbox_port),
                "WEBHOOK_PORT": str(web_port),
            }
        )
        app = build(settings, database)
        stack.callback(app.close)
        sandbox = Sandbox(sandbox_config(app, f"http://127.0.0.1:{sandbox_port}"))
        stack.enter_context(serving(build_app(sandbox), port=sandbox_port))
        stack.enter_context(serving(build_web_app(app), port=web_port))
        runtime = BotRuntime(app, poll_timeout=1)
        runtime.outbox.interval = 0.2
        bot = BotThread(runtime)
        bot.start()
        stack.callback(bot.stop)
        return LocalStack(app, emulator, sandbox, bot, stack)
    except BaseException:
        stack.close()
        raise
