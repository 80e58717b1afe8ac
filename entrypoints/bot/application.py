"""The PTB Application, built by the one composition root (polling)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import re
import warnings
from datetime import timedelta

from telegram import BotCommand, BotCommandScopeChat, BotCommandScopeDefault, Update
from telegram.constants import ParseMode
from telegram.ext import (
    Application,
    BaseHandler,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    ConversationHandler,
    MessageHandler,
    TypeHandler,
    filters,
)
from telegram.warnings import PTBUserWarning

from entrypoints.bootstrap import FlamePay
from entrypoints.bot import keys
from entrypoints.bot.admin import ADMIN_COMMANDS, AdminBot
from entrypoints.bot.admin_payouts import REJECT_REASON
from entrypoints.bot.outbox import OutboxSender
from entrypoints.bot.user import USER_COMMANDS, UserBot
from entrypoints.bot.user_payouts import (
    PAYOUT_ADDRESS,
    PAYOUT_AMOUNT,
    PAYOUT_CONFIRM,
    PAYOUT_NETWORK,
)

log = logging.getLogger("flamepay.bot")
# A guided step left alone this long is dropped (ConversationHandler.conversation_timeout, run
# by the application's JobQueue: python-telegram-bot[job-queue]).
FLOW_TIMEOUT = timedelta(minutes=15)
PRIVATE = filters.ChatType.PRIVATE
TYPED = PRIVATE & filters.TEXT & ~filters.COMMAND
ALONE = filters.Regex(r"^/\w+(?:@\w+)?\s*$")  # a command without arguments


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
    commands = {
        name: CommandHandler(name, handler, filters=PRIVATE)
        for name, handler in (
            ("start", bot.start),
            ("help", bot.help),
            ("activate", bot.activate),
            ("pay", bot.pay),
            ("status", bot.status),
            ("orders", bot.orders),
            ("balance", bot.balance),
            ("history", bot.history),
            ("payoutrequest", bot.payout_request),  # also the guided payout's entry
            ("mypayouts", bot.my_payouts),
            ("payouts", bot.payouts),  # the queue for admins; one's own payouts for others
            ("cancel", bot.cancel),
            *((name, getattr(admin, name)) for name, _ in ADMIN_COMMANDS if name != "payouts"),
        )
    }
    buttons = _button_handlers(bot, admin)
    reject = _conversation(
        "reject_payout",
        entry_points=[buttons[keys.REJECT.prefix]],
        states={
            REJECT_REASON: [MessageHandler(TYPED, admin.reject_reason)],
            ConversationHandler.TIMEOUT: [TypeHandler(Update, admin.reject_timeout)],
        },
        # /payout_reject is what the question offers instead of a reason: it ends the step.
        fallbacks=[
            commands["payout_reject"],
            CommandHandler("cancel", admin.reject_cancel, filters=PRIVATE & ALONE),
        ],
    )
    payout = _conversation(
        "payout_request",
        entry_points=[commands["payoutrequest"], buttons[keys.MENU.prefix]],
        states={
            PAYOUT_AMOUNT: [MessageHandler(TYPED, bot.payout_amount)],
            PAYOUT_NETWORK: [
                buttons[keys.PAYOUT_NETWORK.prefix],
                MessageHandler(TYPED, bot.payout_press_above),
            ],
            PAYOUT_ADDRESS: [MessageHandler(TYPED, bot.payout_address)],
            PAYOUT_CONFIRM: [
                buttons[keys.PAYOUT_CONFIRM.prefix],
                MessageHandler(TYPED, bot.payout_press_above),
            ],
            ConversationHandler.TIMEOUT: [TypeHandler(Update, bot.payout_timeout)],
        },
        # A flow button pressed out of its step is answered by its own handler (which checks
        # the draft), here inside the flow and below outside it. /cancel with an order number
        # is the order's /cancel, below.
        fallbacks=[
            buttons[keys.PAYOUT_NETWORK.prefix],
            buttons[keys.PAYOUT_CONFIRM.prefix],
            CommandHandler("cancel", bot.payout_cancel, filters=PRIVATE & ALONE),
        ],
    )
    # Group 0, first match wins. The admin's reason step comes before the user's flow (as the
    # text handler once tried it first); both before the commands, buttons and plain text.
    application.add_handler(reject)
    application.add_handler(payout)
    entries = {commands["payoutrequest"], buttons[keys.MENU.prefix], buttons[keys.REJECT.prefix]}
    for handler in (*commands.values(), *buttons.values()):
        if handler not in entries:  # an entry point is always taken by its conversation
            application.add_handler(handler)
    application.add_handler(CallbackQueryHandler(bot.unknown_button))  # no prefix of ours
    application.add_handler(MessageHandler(PRIVATE & filters.COMMAND, bot.unknown))
    application.add_handler(MessageHandler(TYPED, bot.text))
    application.add_error_handler(_on_error)
    application.bot_data["admin_ids"] = tuple(sorted(settings.admin_ids))
    return application, bot


def _button_handlers(bot: UserBot, admin: AdminBot) -> dict[str, CallbackQueryHandler]:
    """One CallbackQueryHandler per prefix of keys.BUTTONS, on that prefix's pattern. Each
    handler answers the query first, checks rights, ownership and the current state again
    (callback data is untrusted) and reads ids with keys.parse_id."""
    answers = {
        keys.MENU: bot.menu_button,
        keys.GATEWAY: bot.gateway_button,
        keys.PACKAGE: bot.package_button,
        keys.CHECK: bot.check_button,
        keys.CANCEL: bot.cancel_button,
        keys.ORDERS_PAGE: bot.orders_page_button,
        keys.HISTORY_PAGE: bot.history_page_button,
        keys.PAYOUTS_PAGE: bot.payouts_page_button,
        keys.PAYOUT_NETWORK: bot.payout_network,
        keys.PAYOUT_CONFIRM: bot.payout_confirm,
        keys.APPROVE: admin.approve_button,
        keys.APPROVE_CONFIRM: admin.confirm_approve,
        keys.REJECT: admin.reject_button,
        keys.REVIEW: admin.review_button,
        keys.DRAFT_YES: admin.draft_yes_button,
        keys.DRAFT_NO: admin.draft_no_button,
    }
    missing = set(keys.BUTTONS.values()) ^ set(answers)
    if missing:
        raise RuntimeError(f"buttons without a handler: {sorted(b.prefix for b in missing)}")
    return {
        button.prefix: CallbackQueryHandler(callback, pattern=button.pattern)
        for button, callback in answers.items()
    }


def _conversation(
    name: str,
    *,
    entry_points: list[BaseHandler],
    states: dict[object, list[BaseHandler]],
    fallbacks: list[BaseHandler],
) -> ConversationHandler:
    """A guided step kept per user and per chat (private chats: one conversation per person),
    re-entered by its entry points, dropped after FLOW_TIMEOUT.

    Updates run concurrently here (PTB's docs advise against it for conversations): a second
    update of one person can be routed by the state before the first has finished. So each
    step re-checks its draft in context.user_data, and the final ones (Confirm, the reason)
    take it before awaiting anything: a double tap finds nothing to do twice."""
    with warnings.catch_warnings():
        # per_message=False is meant: the state belongs to the person, not to one message, so
        # PTB's note that a CallbackQueryHandler is then not tracked per message does not apply
        # (the filter PTB's FAQ on the per_* settings gives, for this one message only).
        warnings.filterwarnings(
            "ignore",
            message=re.escape("If 'per_message=False', 'CallbackQueryHandler' will not be"),
            category=PTBUserWarning,
        )
        return ConversationHandler(
            entry_points=entry_points,
            states=states,
            fallbacks=fallbacks,
            allow_reentry=True,
            per_chat=True,
            per_user=True,
            per_message=False,
            conversation_timeout=FLOW_TIMEOUT,
            name=name,
        )


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
