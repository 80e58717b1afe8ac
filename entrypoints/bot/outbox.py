"""Sends the outbox: notifications the use cases wrote in their own transactions.

Only the process that runs the bot drains it. A row is marked sent only after Telegram
accepted it (a crash in between may repeat a message; none is lost). 429 waits retry_after
and tries again; 403 marks the user as having blocked the bot and stops; over 4096
characters is split.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging

from telegram import Bot
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from entrypoints.bootstrap import FlamePay
from entrypoints.bot import texts
from flamepay.mark_bot_blocked import mark_bot_blocked
from flamepay.records import Audience, OutboxMessage

log = logging.getLogger("flamepay.outbox")
BATCH = 50


class OutboxSender:
    def __init__(self, flamepay: FlamePay, bot: Bot, interval: float = 1.0) -> None:
        self.flamepay = flamepay
        self.bot = bot
        self.interval = interval
        self.sent = 0
        self._wake = asyncio.Event()

    def poke(self) -> None:
        """Send soon (after a use case wrote rows), without waiting for the next tick."""
        self._wake.set()

    async def _db(self, fn, *args):
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self.flamepay.executor, lambda: fn(*args))

    async def run(self) -> None:
        while True:
            try:
                await self.drain()
            except asyncio.CancelledError:
                raise
            except Exception:
                log.exception("outbox: drain failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)

    async def drain(self) -> int:
        """Send what is pending, oldest first; the number of rows marked sent."""
        core = self.flamepay.core
        done = 0
        while True:
            pending = await self._db(_pending, core)
            if not pending:
                return done
            for message in pending:
                await self._deliver(message)
                await self._db(_mark_sent, core, message.id)
                done += 1
                self.sent += 1

    async def _deliver(self, message: OutboxMessage) -> None:
        text = texts.SANDBOX_PREFIX + message.text if self.flamepay.sandbox else message.text
        if message.audience is Audience.USER and message.user_id is not None:
            recipients = [message.user_id]
        else:
            recipients = sorted(self.flamepay.settings.admin_ids)
        for chat_id in recipients:
            for part in texts.split(text):
                await self._send(chat_id, part)

    async def _send(self, chat_id: int, text: str) -> None:
        for _ in range(10):
            try:
                await self.bot.send_message(chat_id, text, disable_web_page_preview=True)
                return
            except RetryAfter as wait:
                delay = wait.retry_after
                seconds = delay.total_seconds() if hasattr(delay, "total_seconds") else delay
                await asyncio.sleep(float(seconds))
            except Forbidden:
                # The user blocked the bot: remember it and stop trying this message.
                await self._db(mark_bot_blocked, self.flamepay.core, chat_id)
                return
            except BadRequest as error:
                log.warning("outbox: Telegram refused a message to %s: %s", chat_id, error)
                return
            except TelegramError:
                await asyncio.sleep(1)
        raise RuntimeError("outbox: gave up after repeated errors; will try again")


def _pending(core) -> list[OutboxMessage]:
    with core.uow() as uow:
        return uow.outbox.pending(BATCH)


def _mark_sent(core, message_id: int) -> None:
    def body(uow) -> None:
        uow.outbox.mark_sent(message_id, core.now())

    core.transaction(body)
