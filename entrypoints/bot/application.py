"""The PTB Application, built by the one composition root (polling)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    MessageHandler,
    filters,
)

from entrypoints.bootstrap import FlamePay
from entrypoints.bot.admin import ADMIN_COMMANDS, AdminBot
from entrypoints.bot.outbox import OutboxSender
from entrypoints.bot.user import USER_COMMANDS, UserBot

log = logging.getLogger("flamepay.bot")


def build_application(flamepay: FlamePay) -> tuple[Application, UserBot]:
    # Opt in to PTB's coming behaviour (durations such as retry_after as timedelta) instead of
    # a deprecation warning on every 429; the outbox reads either form.
    os.environ.setdefault("PTB_TIMEDELTA", "true")
    settings = flamepay.settings
    application = (
        Application.builder()
        .token(settings.bot_token)
        .base_url(settings.telegram_api_url)
        .base_file_url(settings.telegram_api_url.replace("/bot", "/file/bot"))
        .concurrent_updates(True)  # handlers wait on the database in the executor
        .post_init(_post_init)
        .build()
    )
    bot = UserBot(flamepay)
    admin = AdminBot(flamepay)
    bot.admin = admin
    bot.admin_commands = ADMIN_COMMANDS
    private = filters.ChatType.PRIVATE
    for name, handler in (
        ("start", bot.start),
        ("help", bot.help),
        ("activate", bot.activate),
        ("pay", bot.pay),
        ("status", bot.status),
        ("orders", bot.orders),
        ("balance", bot.balance),
        ("history", bot.history),
        ("payoutrequest", bot.payout_request),
        ("mypayouts", bot.my_payouts),
        ("payouts", bot.payouts),  # the queue for admins; one's own payouts for others
        ("cancel", bot.cancel),
        *((name, getattr(admin, name)) for name, _ in ADMIN_COMMANDS if name != "payouts"),
    ):
        application.add_handler(CommandHandler(name, handler, filters=private))
    application.add_handler(CallbackQueryHandler(bot.button))
    application.add_handler(MessageHandler(private & filters.COMMAND, bot.unknown))
    application.add_handler(MessageHandler(private & filters.TEXT & ~filters.COMMAND, bot.text))
    application.add_error_handler(_on_error)
    application.bot_data["admin_ids"] = tuple(sorted(settings.admin_ids))
    return application, bot


async def _post_init(application: Application) -> None:
    users = [BotCommand(name, about) for name, about in USER_COMMANDS]
    await application.bot.set_my_commands(users, scope=BotCommandScopeDefault())
    admins = application.bot_data.get("admin_ids", ())
    everything = users + [BotCommand(name, about[:256]) for name, about in ADMIN_COMMANDS]
    for admin_id in admins:
        # Each admin's own chat also lists the admin commands.
        with contextlib.suppress(Exception):
            await application.bot.set_my_commands(everything, scope=BotCommandScopeChat(admin_id))


async def _on_error(update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
    # One line with the kind of failure, never the exception text: it may carry the API URL,
    # and with it the bot token.
    log.error("bot: %s while handling an update", type(context.error).__name__)
    if isinstance(update, Update) and update.effective_chat is not None:
        with contextlib.suppress(Exception):
            await context.bot.send_message(
                update.effective_chat.id,
                "Something went wrong on our side; please try again in a minute.",
                parse_mode=ParseMode.HTML,
            )


class BotRuntime:
    """Starts and stops the bot (polling and the outbox sender) inside a running loop."""

    def __init__(self, flamepay: FlamePay, poll_timeout: int = 10) -> None:
        self.flamepay = flamepay
        self.application, self.handlers = build_application(flamepay)
        self.outbox = OutboxSender(flamepay, self.application.bot)
        self.poll_timeout = poll_timeout
        self._outbox_task: asyncio.Task | None = None

    async def start(self) -> None:
        await self.application.initialize()
        await _post_init(self.application)
        await self.application.start()
        await self.application.updater.start_polling(
            poll_interval=0.0, timeout=self.poll_timeout, drop_pending_updates=False
        )
        self._outbox_task = asyncio.get_running_loop().create_task(self.outbox.run())

    async def stop(self) -> None:
        if self._outbox_task is not None:
            self._outbox_task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._outbox_task
        if self.application.updater.running:
            await self.application.updater.stop()
        if self.application.running:
            await self.application.stop()
        await self.application.shutdown()
