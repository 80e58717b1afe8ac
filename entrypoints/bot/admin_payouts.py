"""What admins do with payouts in the bot: the queue, approve (with a confirmation) and
reject (with a reason, asked in a ConversationHandler step). Part of AdminBot (admin.py)."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes, ConversationHandler

from entrypoints.bot import keys, texts
from entrypoints.bot.base import BotBase, private_only
from flamepay.admin_queues import pending_payouts
from flamepay.approve_payout import approve_payout
from flamepay.errors import Refused
from flamepay.reject_payout import reject_payout

# The reject-with-reason step (a ConversationHandler); the payout waits in context.user_data.
REJECT_REASON = "reject:reason"
REJECT_DRAFT = "reject_payout"
END = ConversationHandler.END


class PayoutAdmin(BotBase):
    """The payout half of AdminBot; `require`, `_draft` and `_confirm` are AdminBot's."""

    # --- payouts ------------------------------------------------------------------------------
    @private_only
    async def payouts(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "payouts")
        queue = await self.db(pending_payouts, self.core, admin_id)
        if not queue:
            await self.reply(update, "No payout is waiting.")
            return
        for payout in queue[:20]:
            await self.reply(
                update, texts.payout_line(payout, self.currency), payout_buttons(payout.id)
            )

    @private_only
    async def payout_approve(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "payout_approve")
        args = context.args
        if not args:
            raise Refused("Expected: /payout_approve <id> [txid] [note].")
        payout_id = keys.parse_id(args[0], "the payout id")
        txid = args[1] if len(args) > 1 else None
        note = " ".join(args[2:])
        payout = await self.db(approve_payout, self.core, admin_id, payout_id, txid, note)
        await self.reply(
            update,
            f"Payout #{payout.id} approved: send {texts.money(payout.to_receive, 'USDT')} "
            f"({payout.network.label}) to <code>{texts.esc(payout.address)}</code>"
            + (f"; txid <code>{texts.esc(txid)}</code>" if txid else "")
            + ".",
        )

    @private_only
    async def payout_reject(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        """/payout_reject <id> <reason>; also what the Reject button's question offers instead
        of typing the reason, so it ends that step once a payout is rejected."""
        admin_id = await self.require(update, "payout_reject")
        args = context.args
        if len(args) < 2:
            raise Refused("Expected: /payout_reject <id> <reason>.")
        payout_id = keys.parse_id(args[0], "the payout id")
        await self._reject(update, admin_id, payout_id, " ".join(args[1:]))
        context.user_data.pop(REJECT_DRAFT, None)
        return END

    async def _reject(self, update: Update, admin_id: int, payout_id: int, reason: str) -> None:
        payout = await self.db(reject_payout, self.core, admin_id, payout_id, reason)
        await self.reply(
            update,
            f"Payout #{payout.id} rejected ({texts.esc(reason)}); "
            f"{texts.money(payout.amount, self.currency)} is back in the user's available balance.",
        )

    @private_only
    async def approve_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        (arg,) = keys.APPROVE.args(update.callback_query.data, 1)
        payout_id = keys.parse_id(arg, "the payout id")
        admin_id = await self.require(update, "payout_approve")
        queue = await self.db(pending_payouts, self.core, admin_id)
        payout = next((p for p in queue if p.id == payout_id), None)
        if payout is None:
            await self.reply(update, f"Payout #{payout_id} is not pending any more.")
            return
        yes = keys.APPROVE_CONFIRM.data(payout.id)
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Yes, approve", callback_data=yes)]])
        await self.reply(
            update,
            f"Approve payout #{payout.id}: send {texts.money(payout.to_receive, 'USDT')} "
            f"({payout.network.label}) to <code>{texts.esc(payout.address)}</code>?",
            markup,
        )

    @private_only
    async def confirm_approve(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        (arg,) = keys.APPROVE_CONFIRM.args(update.callback_query.data, 1)
        admin_id = await self.require(update, "payout_approve")
        payout_id = keys.parse_id(arg, "the payout id")
        payout = await self.db(approve_payout, self.core, admin_id, payout_id)
        await self.reply(
            update,
            f"Payout #{payout.id} approved: send "
            f"{texts.money(payout.to_receive, 'USDT')} to "
            f"<code>{texts.esc(payout.address)}</code>.",
        )

    @private_only
    async def reject_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        (arg,) = keys.REJECT.args(update.callback_query.data, 1)
        await self.require(update, "payout_reject")
        context.user_data[REJECT_DRAFT] = keys.parse_id(arg, "the payout id")
        await self.reply(
            update,
            f"Send the reason for rejecting payout #{arg} "
            "(the user is told it), or /payout_reject.",
        )
        return REJECT_REASON  # the entry of the reject-with-reason step

    @private_only(refused=END)
    async def reject_reason(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        """The reason typed after pressing Reject: taken (once) before anything is awaited."""
        payout_id = context.user_data.pop(REJECT_DRAFT, None)
        if payout_id is None:  # taken by a concurrent update of the same admin
            await self.reply(update, "Send a command; /help lists them.")
            return END
        admin_id = await self.require(update, "payout_reject")
        await self._reject(update, admin_id, payout_id, update.effective_message.text or "")
        return END

    @private_only
    async def reject_cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        context.user_data.pop(REJECT_DRAFT, None)  # /cancel alone instead of a reason
        await self.reply(update, "Dropped; nothing changed.")
        return END

    async def reject_timeout(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        payout_id = context.user_data.pop(REJECT_DRAFT, None)  # the step's conversation_timeout
        await self.tell(
            update,
            f"No reason came for payout #{payout_id}: it is not rejected. "
            "Press Reject again to reject it.",
        )


def payout_buttons(payout_id: int) -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Approve", callback_data=keys.APPROVE.data(payout_id)),
                InlineKeyboardButton("Reject", callback_data=keys.REJECT.data(payout_id)),
            ]
        ]
    )
