"""What every handler shares: the wired FlamePay, database work off the event loop, replies
with the sandbox prefix, and the translation of the core's refusals into replies."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from telegram import InlineKeyboardMarkup, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import TelegramError
from telegram.ext import ContextTypes

from entrypoints.bootstrap import FlamePay
from entrypoints.bot import texts
from flamepay.errors import Refused, StorageUnavailable, TransactionConflict
from flamepay.see_user import see_user

log = logging.getLogger("flamepay.bot")
T = TypeVar("T")
Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Awaitable[None]]


class BotBase:
    def __init__(self, flamepay: FlamePay) -> None:
        self.flamepay = flamepay
        self.core = flamepay.core
        self.currency = flamepay.core.policy.currency

    # --- work runs off the event loop, in one of two executors; PTB stays on the loop --------
    # db(): pure database work only. gateway(): every use case that calls the gateway (open an
    # order, Check status, cancel, reconcile, ...). A gateway call on db() would let a hung
    # gateway take the threads that notify and every other handler need (issue 15, fault 6).
    async def db(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.flamepay.executor, functools.partial(fn, *args, **kwargs)
        )

    async def gateway(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(
            self.flamepay.gateway_executor, functools.partial(fn, *args, **kwargs)
        )

    def is_admin(self, user_id: int) -> bool:
        return user_id in self.flamepay.settings.admin_ids

    def prefixed(self, text: str) -> str:
        return (texts.SANDBOX_PREFIX + text) if self.flamepay.sandbox else text

    async def reply(
        self, update: Update, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> None:
        message = update.effective_message
        if message is None:
            return
        await message.reply_text(
            self.prefixed(text),
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            disable_web_page_preview=True,
        )

    async def tell(self, update: object, text: str) -> None:
        """A reply nobody asked for just now (a guided step's timeout, run by the job queue with
        the step's last update, long answered: not private_only); a chat that blocked the bot
        meanwhile is not an error."""
        if isinstance(update, Update):
            with contextlib.suppress(TelegramError):
                await self.reply(update, text)

    async def edit(
        self, update: Update, text: str, markup: InlineKeyboardMarkup | None = None
    ) -> None:
        query = update.callback_query
        if query is None or query.message is None:
            await self.reply(update, text, markup)
            return
        await query.edit_message_text(
            self.prefixed(text),
            parse_mode=ParseMode.HTML,
            reply_markup=markup,
            disable_web_page_preview=True,
        )


def private_only(
    method: Callable[..., Awaitable[Any]] | None = None, *, refused: object = None
) -> Any:
    """Private chats only; the sender is recorded (first contact, name changes); the core's
    refusals become replies that say what to do.

    What the handler returns is passed on: in a ConversationHandler, the next state (None: stay
    where it was). When the handler itself was refused, `refused` is returned instead (END
    for a step that consumed its draft before it could fail); when it never ran, None.
    """

    def decorate(method: Callable[..., Awaitable[Any]]) -> Callable[..., Awaitable[Any]]:
        @functools.wraps(method)
        async def handler(
            self: BotBase, update: Update, context: ContextTypes.DEFAULT_TYPE
        ) -> object:
            chat, user = update.effective_chat, update.effective_user
            if chat is None or user is None or chat.type != ChatType.PRIVATE or user.is_bot:
                return None  # groups and channels are ignored
            if update.callback_query is not None:
                await update.callback_query.answer()  # first, so the button stops spinning
            ran = False
            try:
                await self.db(see_user, self.core, user.id, user.username or "", user.full_name)
                ran = True
                return await method(self, update, context)
            except Refused as refusal:
                await self.reply(update, texts.esc(str(refusal)))
            except (StorageUnavailable, TransactionConflict):
                await self.reply(update, "FlamePay is busy right now; try again in a minute.")
            return refused if ran else None

        return handler

    return decorate(method) if method is not None else decorate
