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
import time
import warnings

from telegram import Bot
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from entrypoints.bootstrap import FlamePay
from entrypoints.bot import texts
from flamepay.deliver_outbox import (
    claim_backlog_alert,
    copies_of,
    mark_sent,
    pending_messages,
    record_copy,
)
from flamepay.errors import StorageUnavailable
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
        self._last_db_alert = -1e12

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
                await self._check_backlog()
            except asyncio.CancelledError:
                raise
            except StorageUnavailable:
                await self._database_down()
            except Exception:  # keep draining; the failure is logged
                log.exception("outbox: drain failed")
            self._wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), timeout=self.interval)

    async def _direct(self, text: str) -> None:
        """To every admin, bypassing the outbox (for when the outbox itself is the problem)."""
        text = texts.SANDBOX_PREFIX + text if self.flamepay.sandbox else text
        for admin_id in sorted(self.flamepay.settings.admin_ids):
            with contextlib.suppress(TelegramError):
                await self.bot.send_message(admin_id, text)

    async def _check_backlog(self) -> None:
        minutes = await self._db(claim_backlog_alert, self.flamepay.core)
        if minutes is not None:
            await self._direct(
                f"Fault: outbox messages have waited {minutes} minutes to be sent to Telegram."
            )

    async def _database_down(self) -> None:
        # The database cannot keep the alert interval now: this process keeps it.
        interval = self.flamepay.settings.alert_interval_minutes * 60
        if time.monotonic() - self._last_db_alert >= interval:
            self._last_db_alert = time.monotonic()
            await self._direct(
                "Fault: the database does not answer; notifies get 503 and "
                "are retried by the gateway."
            )

    async def drain(self) -> int:
        """Send what is pending, oldest first; the number of rows marked sent."""
        core = self.flamepay.core
        done = 0
        while True:
            pending = await self._db(pending_messages, core, BATCH)
            if not pending:
                return done
            for message in pending:
                await self._deliver(message)
                await self._db(mark_sent, core, message.id)
                done += 1
                self.sent += 1

    async def _deliver(self, message: OutboxMessage) -> None:
        text = texts.SANDBOX_PREFIX + message.text if self.flamepay.sandbox else message.text
        if message.audience is Audience.USER and message.user_id is not None:
            recipients = [message.user_id]
        else:
            recipients = sorted(self.flamepay.settings.admin_ids)
        if message.kind == "payout_resolved" and await self._edit_copies(message.ref, text):
            return  # every admin's copy now says who resolved it and how
        markup = None
        if message.kind == "payout_requested" and message.ref.startswith("payout:"):
            from entrypoints.bot.admin_payouts import payout_buttons

            markup = payout_buttons(int(message.ref.split(":", 1)[1]))
        for chat_id in recipients:
            parts = texts.split(text)
            for index, part in enumerate(parts):
                last = index == len(parts) - 1
                sent = await self._send(chat_id, part, markup if last else None)
                if sent is not None and markup is not None:
                    await self._db(record_copy, self.flamepay.core, message.ref, chat_id, sent)

    async def _edit_copies(self, ref: str, text: str) -> bool:
        copies = await self._db(copies_of, self.flamepay.core, ref)
        for chat_id, message_id in copies:
            for _ in range(10):
                try:
                    await self.bot.edit_message_text(text, chat_id=chat_id, message_id=message_id)
                    break
                except RetryAfter as wait:
                    await asyncio.sleep(_seconds(wait))
                except (Forbidden, BadRequest):
                    break  # that admin blocked the bot, or the message is gone: nothing to edit
        return bool(copies)

    async def _send(self, chat_id: int, text: str, markup=None) -> int | None:
        """The sent message's id; None when the chat refused it for good."""
        for _ in range(10):
            try:
                sent = await self.bot.send_message(
                    chat_id, text, disable_web_page_preview=True, reply_markup=markup
                )
                return sent.message_id
            except RetryAfter as wait:
                await asyncio.sleep(_seconds(wait))
            except Forbidden:
                # The user blocked the bot: remember it and stop trying this message.
                await self._db(mark_bot_blocked, self.flamepay.core, chat_id)
                return None
            except BadRequest as error:
                log.warning("outbox: Telegram refused a message to %s: %s", chat_id, error)
                return None
            except TelegramError:
                await asyncio.sleep(1)
        raise RuntimeError("outbox: gave up after repeated errors; will try again")


def _seconds(error: RetryAfter) -> float:
    # PTB 22 warns that retry_after will become a timedelta; either form is read here.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        delay = error.retry_after
    return float(delay.total_seconds() if hasattr(delay, "total_seconds") else delay)
