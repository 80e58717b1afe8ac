"""What a user does with payouts in the bot: one line (/payoutrequest <amount> <network>
<address>), or the guided flow that asks step by step (a ConversationHandler, built in
application.py), and the list of their payouts. Part of UserBot (user.py)."""

from __future__ import annotations

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes, ConversationHandler

from entrypoints.bot import keys, texts
from entrypoints.bot.base import BotBase, private_only
from flamepay.account_status import require_active_user
from flamepay.addresses import check_address
from flamepay.money import format_amount, parse_amount
from flamepay.payout import Network
from flamepay.request_payout import request_payout
from flamepay.user_payouts import user_payouts

# The guided payout's steps, as its ConversationHandler keeps them (per user, per chat); what
# the steps collected lives in PTB's context.user_data under PAYOUT_DRAFT.
PAYOUT_AMOUNT, PAYOUT_NETWORK, PAYOUT_ADDRESS, PAYOUT_CONFIRM = (
    "payout:amount",
    "payout:network",
    "payout:address",
    "payout:confirm",
)
PAYOUT_DRAFT = "payout_draft"
END = ConversationHandler.END

PAYOUT_USAGE = (
    "Expected: /payoutrequest <amount> <TRC20|BEP20> <address>, or /payoutrequest alone "
    "to be asked step by step."
)


class PayoutRequests(BotBase):
    """The payout half of UserBot."""

    # --- payouts: one line, or the guided flow (a ConversationHandler, see application.py) ---
    @private_only
    async def payout_request(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        """/payoutrequest <amount> <network> <address> at once, or alone: the guided flow."""
        args = context.args
        if not args:
            return await self._payout_start(update, context)
        if len(args) != 3:
            await self.reply(update, texts.esc(PAYOUT_USAGE))
            return None
        amount, network, address = self._payout_parts(args[0], args[1], args[2])
        await self._request(update, amount, network, address)
        return None  # a guided flow under way stays where it was

    def _payout_parts(self, amount_text: str, network_text: str, address_text: str):
        amount = parse_amount(amount_text)
        network = Network.parse(network_text)
        return amount, network, check_address(network.value, address_text)

    async def _request(self, update: Update, amount: int, network: Network, address: str) -> None:
        payout = await self.db(
            request_payout, self.core, update.effective_user.id, amount, network, address
        )
        await self.reply(
            update,
            f"Payout #{payout.id} requested: {texts.money(payout.amount, self.currency)} to "
            f"{payout.network.label} <code>{texts.esc(payout.address)}</code>. You will receive "
            f"{texts.money(payout.to_receive, 'USDT')}. An admin sends it by hand; you will be "
            "told when it is done.",
        )

    async def _payout_start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        await self.db(require_active_user, self.core, update.effective_user.id)
        context.user_data[PAYOUT_DRAFT] = {}
        await self.reply(update, "How much? Send an amount like 50 or 50.25.")
        return PAYOUT_AMOUNT

    @private_only
    async def payout_amount(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        amount = parse_amount(typed_text(update))  # InvalidAmount says what is expected
        context.user_data[PAYOUT_DRAFT] = {"amount": amount}
        rows = [
            [
                InlineKeyboardButton(n.label, callback_data=keys.PAYOUT_NETWORK.data(n.value))
                for n in Network
            ]
        ]
        await self.reply(update, "Which network?", InlineKeyboardMarkup(rows))
        return PAYOUT_NETWORK

    @private_only
    async def payout_network(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        """The network button: in its step it asks for the address. The same handler answers a
        press out of its step (a second tap, an old message, no flow): the draft says so."""
        network = keys.PAYOUT_NETWORK.arg(update.callback_query.data)
        draft = context.user_data.get(PAYOUT_DRAFT)
        step = draft is not None and "amount" in draft and "network" not in draft
        if not step or network not in ("TRC20", "BEP20"):
            await self.reply(
                update, "That step is done already; send /payoutrequest to start again."
            )
            return None
        draft["network"] = network
        await self.reply(update, f"Send your USDT {network} address.")
        return PAYOUT_ADDRESS

    @private_only
    async def payout_address(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        draft = context.user_data.get(PAYOUT_DRAFT) or {}
        if "network" not in draft:  # the draft went with a concurrent confirmation
            await self.reply(update, "Send a command; /help lists them.")
            return END
        draft["address"] = check_address(draft["network"], typed_text(update))
        fee = self.core.policy.network_fee(Network(draft["network"]))
        receive = draft["amount"] - fee
        confirm = keys.PAYOUT_CONFIRM
        rows = [
            [
                InlineKeyboardButton("Confirm", callback_data=confirm.data("yes")),
                InlineKeyboardButton("Cancel", callback_data=confirm.data("no")),
            ]
        ]
        await self.reply(
            update,
            f"Pay out {texts.money(draft['amount'], self.currency)} to USDT {draft['network']} "
            f"<code>{texts.esc(draft['address'])}</code>? You will receive "
            f"{texts.money(receive, 'USDT')} (network fee {format_amount(fee)}).",
            InlineKeyboardMarkup(rows),
        )
        return PAYOUT_CONFIRM

    @private_only
    async def payout_press_above(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Text typed while the flow waits for a button."""
        await self.reply(update, "Press Confirm or Cancel above, or send /payoutrequest again.")

    @private_only(refused=END)
    async def payout_confirm(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        """Confirm or Cancel. The draft is taken before anything is awaited, so a second tap
        (even one processed concurrently) finds none; pressed out of its step, it ends the
        flow, as it always did."""
        answer = keys.PAYOUT_CONFIRM.arg(update.callback_query.data)
        draft = context.user_data.pop(PAYOUT_DRAFT, None)
        if not draft or "address" not in draft:
            await self.reply(update, "That request was already handled.")
            return END
        if answer != "yes":
            await self.reply(update, "Payout request dropped; nothing was held.")
            return END
        await self._request(update, draft["amount"], Network(draft["network"]), draft["address"])
        return END

    @private_only
    async def payout_cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        """/cancel alone during the flow (with an order number it is the order's /cancel)."""
        context.user_data.pop(PAYOUT_DRAFT, None)
        await self.reply(update, "Payout request dropped; nothing was held.")
        return END

    async def payout_timeout(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The flow's conversation_timeout: the draft goes; nothing was held."""
        context.user_data.pop(PAYOUT_DRAFT, None)
        await self.tell(
            update,
            "The payout request timed out; nothing was held. Send /payoutrequest to start again.",
        )

    @private_only
    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Text outside any flow (the flows' ConversationHandlers come first)."""
        await self.reply(update, "Send a command; /help lists them.")

    @private_only
    async def my_payouts(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._payouts_page(update, None)

    async def payouts(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """/payouts: the pending queue for an admin, one's own payouts for anyone else."""
        user = update.effective_user
        if self.admin is not None and user is not None and self.is_admin(user.id):
            await self.admin.payouts(update, context)
        else:
            await self.my_payouts(update, context)

    async def _payouts_page(self, update: Update, before: int | None) -> None:
        page = await self.db(user_payouts, self.core, update.effective_user.id, before)
        if not page.items:
            await self.reply(update, "No payouts yet. Use /payoutrequest to ask for one.")
            return
        markup = None
        if page.next_before is not None:
            markup = InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            "Older", callback_data=keys.PAYOUTS_PAGE.data(page.next_before)
                        )
                    ]
                ]
            )
        lines = [texts.payout_line(p, self.currency) for p in page.items]
        await self.reply(update, "\n".join(lines), markup)


def typed_text(update: Update) -> str:
    return (update.effective_message.text or "").strip()
