"""Everything a user does in the bot."""

from __future__ import annotations

import time

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from entrypoints.bot import keys, texts
from entrypoints.bot.base import BotBase, private_only
from flamepay.activate_user import activate_user
from flamepay.addresses import check_address
from flamepay.balances import read_balances
from flamepay.browse_catalogue import browse_catalogue
from flamepay.cancel_order import cancel_order
from flamepay.closing import CloseOutcome
from flamepay.money import format_amount, parse_amount
from flamepay.open_order import open_recharge_order
from flamepay.order import STATE_LABELS
from flamepay.payout import Network
from flamepay.refresh_order import refresh_order
from flamepay.request_payout import request_payout
from flamepay.user_history import user_history
from flamepay.user_orders import user_order, user_orders
from flamepay.user_payouts import user_payouts

USER_COMMANDS = [
    ("start", "greeting and menu"),
    ("help", "what you can do"),
    ("activate", "activate with your access code"),
    ("pay", "recharge your balance"),
    ("status", "an order's status"),
    ("orders", "your orders"),
    ("balance", "your balances"),
    ("history", "your ledger entries"),
    ("payoutrequest", "ask for a USDT payout"),
    ("mypayouts", "your payouts"),
    ("cancel", "cancel an unpaid order"),
]
QUERY_EVERY_SECONDS = 60  # a provider query from "Check status" at most once a minute per order
PAYOUT_STEP = "payout_step"
ADMIN_BUTTONS = frozenset({"ap", "apc", "rj", "rv", "ak", "an"})

USAGE = {
    "activate": "Expected: /activate <code> (the access code you were given).",
    "status": "Expected: /status <order number> (from /orders).",
    "cancel": "Expected: /cancel <order number> (an unpaid order of yours).",
    "payoutrequest": (
        "Expected: /payoutrequest <amount> <TRC20|BEP20> <address>, or /payoutrequest alone "
        "to be asked step by step."
    ),
}


def menu() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [InlineKeyboardButton("Pay", callback_data="m:pay"),
             InlineKeyboardButton("Balance", callback_data="m:bal")],
            [InlineKeyboardButton("Orders", callback_data="m:ord"),
             InlineKeyboardButton("History", callback_data="m:his")],
            [InlineKeyboardButton("Payout", callback_data="m:out"),
             InlineKeyboardButton("Help", callback_data="m:help")],
        ]
    )  # fmt: skip


class UserBot(BotBase):
    def __init__(self, flamepay) -> None:
        super().__init__(flamepay)
        self._last_query: dict[str, float] = {}
        self.admin_commands: list[tuple[str, str]] = []  # the admin part fills this in
        self.admin = None  # the AdminBot, for admin buttons and replies

    def help_text(self, user_id: int, admin_commands: list[tuple[str, str]]) -> str:
        lines = ["What you can do:"] + [f"/{c} — {d}" for c, d in USER_COMMANDS]
        if self.is_admin(user_id) and admin_commands:
            lines += ["", "Admin:"] + [f"/{c} — {d}" for c, d in admin_commands]
        return "\n".join(texts.esc(line) for line in lines)

    # --- start, help, activate --------------------------------------------------------------------
    @private_only
    async def start(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        user = update.effective_user
        status = await self.db(self._status_line, user.id)
        await self.reply(
            update, f"Welcome to FlamePay, {texts.esc(user.first_name)}.\n{status}", menu()
        )

    def _status_line(self, user_id: int) -> str:
        with self.core.uow() as uow:
            user = uow.users.get(user_id)
        if user is None or not user.activated:
            return texts.esc(
                "Your account is not activated yet: send /activate <code> with your access code."
            )
        if user.banned:
            return "Your account is banned. Contact the operator."
        balances = read_balances(self.core, user_id)
        return f"Available: {texts.money(balances.available, self.currency)}"

    @private_only
    async def help(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(update, self.help_text(update.effective_user.id, self.admin_commands))

    @private_only
    async def unknown(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(
            update,
            "I do not know that command.\n"
            + self.help_text(update.effective_user.id, self.admin_commands),
        )

    @private_only
    async def activate(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if len(context.args) != 1:
            await self.reply(update, texts.esc(USAGE["activate"]))
            return
        result = await self.db(activate_user, self.core, update.effective_user.id, context.args[0])
        if result.already:
            await self.reply(update, "Your account is already activated.", menu())
        else:
            await self.reply(update, "Activated. Welcome! Use /pay to recharge.", menu())

    # --- pay ----------------------------------------------------------------------------------
    @private_only
    async def pay(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._show_gateways(update, edit=False)

    async def _show_gateways(self, update: Update, edit: bool) -> None:
        user_id = update.effective_user.id
        await self.db(_require_user, self, user_id)
        catalogue = await self.db(browse_catalogue, self.core)
        usable = [g for g in catalogue.gateways if catalogue.packages_of(g.way_code)]
        if not usable:
            await self.reply(update, "No payment method is available right now; try later.")
            return
        if len(usable) == 1:
            await self._show_packages(update, usable[0].way_code, catalogue, edit)
            return
        rows = [
            [InlineKeyboardButton(g.title, callback_data=keys.data("pg", g.way_code))]
            for g in usable
        ]
        send = self.edit if edit else self.reply
        await send(update, "Choose how to pay:", InlineKeyboardMarkup(rows))

    async def _show_packages(self, update: Update, way_code: str, catalogue, edit: bool) -> None:
        packages = catalogue.packages_of(way_code)
        if not packages:
            await self.reply(update, "That payment method has no package right now.")
            return
        rows = [
            [InlineKeyboardButton(
                f"{p.label} — {texts.money(p.amount, self.currency)}",
                callback_data=keys.data("pp", p.id))]
            for p in packages
        ]  # fmt: skip
        send = self.edit if edit else self.reply
        await send(update, "Choose an amount (what you pay; the fee is deducted):",
                   InlineKeyboardMarkup(rows))  # fmt: skip

    async def _open(self, update: Update, package_id: int) -> None:
        user_id = update.effective_user.id
        opened = await self.gateway(open_recharge_order, self.core, user_id, package_id)
        order = opened.order
        note = "This is your open order for that package." if opened.reused else opened.message
        buttons = []
        if order.is_open and texts.is_public_https(order.cashier_url):
            buttons.append([InlineKeyboardButton("Pay now", url=order.cashier_url)])
        buttons.append([
            InlineKeyboardButton("Check status", callback_data=keys.data("st", order.mch_order_no)),
            InlineKeyboardButton("Cancel", callback_data=keys.data("cx", order.mch_order_no)),
        ])  # fmt: skip
        await self.reply(update, texts.order_card(order, note), InlineKeyboardMarkup(buttons))

    # --- orders -------------------------------------------------------------------------------
    @private_only
    async def status(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if len(context.args) != 1:
            await self.reply(update, texts.esc(USAGE["status"]))
            return
        order = await self.db(user_order, self.core, update.effective_user.id, context.args[0])
        await self.reply(update, texts.order_card(order))

    async def _check(self, update: Update, number: str) -> None:
        user_id = update.effective_user.id
        order = await self.db(user_order, self.core, user_id, number)
        note = ""
        last = self._last_query.get(order.mch_order_no, 0.0)
        if order.is_open and time.monotonic() - last >= QUERY_EVERY_SECONDS:
            self._last_query[order.mch_order_no] = time.monotonic()
            order, answered = await self.gateway(refresh_order, self.core, user_id, number)
            note = "" if answered else "The gateway did not answer; the state shown is ours."
        await self.reply(update, texts.order_card(order, note))

    @private_only
    async def orders(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._orders_page(update, None)

    async def _orders_page(self, update: Update, before: int | None) -> None:
        page = await self.db(user_orders, self.core, update.effective_user.id, before)
        if not page.items:
            await self.reply(update, "No orders yet. Use /pay to recharge.")
            return
        markup = None
        if page.next_before is not None:
            markup = InlineKeyboardMarkup([[InlineKeyboardButton(
                "Older", callback_data=keys.data("op", page.next_before))]])  # fmt: skip
        await self.reply(update, "\n".join(texts.order_line(o) for o in page.items), markup)

    @private_only
    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if len(context.args) != 1:
            await self.reply(update, texts.esc(USAGE["cancel"]))
            return
        await self._cancel(update, context.args[0])

    async def _cancel(self, update: Update, number: str) -> None:
        closed = await self.gateway(cancel_order, self.core, update.effective_user.id, number)
        said = {
            CloseOutcome.CLOSED: "Cancelled: the order is closed at the gateway.",
            CloseOutcome.NEVER_PLACED: "Cancelled: the gateway never had this order.",
            CloseOutcome.UNKNOWN: "The gateway did not answer; the order stays open. Try later.",
        }.get(closed.outcome, f"The gateway says the order is {STATE_LABELS[closed.state]}.")
        await self.reply(update, texts.esc(said))

    # --- balances and history -----------------------------------------------------------------
    @private_only
    async def balance(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        balances = await self.db(read_balances, self.core, update.effective_user.id)
        await self.reply(update, texts.balances(balances, self.currency))

    @private_only
    async def history(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._history_page(update, None)

    async def _history_page(self, update: Update, before: int | None) -> None:
        page = await self.db(user_history, self.core, update.effective_user.id, before)
        if not page.items:
            await self.reply(update, "No ledger entries yet.")
            return
        markup = None
        if page.next_before is not None:
            markup = InlineKeyboardMarkup([[InlineKeyboardButton(
                "Older", callback_data=keys.data("hp", page.next_before))]])  # fmt: skip
        lines = [texts.history_line(line, self.currency) for line in page.items]
        await self.reply(update, "\n".join(lines), markup)

    # --- payouts ------------------------------------------------------------------------------
    @private_only
    async def payout_request(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = context.args
        user_id = update.effective_user.id
        if not args:
            await self.db(_require_user, self, user_id)
            context.user_data[PAYOUT_STEP] = {"step": "amount"}
            await self.reply(update, "How much? Send an amount like 50 or 50.25.")
            return
        if len(args) != 3:
            await self.reply(update, texts.esc(USAGE["payoutrequest"]))
            return
        amount, network, address = self._payout_parts(args[0], args[1], args[2])
        await self._request(update, amount, network, address)

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

    @private_only
    async def text(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if self.admin is not None and await self.admin.text(update, context):
            return
        state = context.user_data.get(PAYOUT_STEP)
        message = (update.effective_message.text or "").strip()
        if not state:
            await self.reply(update, "Send a command; /help lists them.")
            return
        if state["step"] == "amount":
            state["amount"] = parse_amount(message)  # InvalidAmount says what is expected
            state["step"] = "network"
            rows = [[InlineKeyboardButton(n.label, callback_data=keys.data("pn", n.value))
                     for n in Network]]  # fmt: skip
            await self.reply(update, "Which network?", InlineKeyboardMarkup(rows))
        elif state["step"] == "address":
            state["address"] = check_address(state["network"], message)
            state["step"] = "confirm"
            fee = self.core.policy.network_fee(Network(state["network"]))
            receive = state["amount"] - fee
            rows = [[InlineKeyboardButton("Confirm", callback_data="po:yes"),
                     InlineKeyboardButton("Cancel", callback_data="po:no")]]  # fmt: skip
            await self.reply(
                update,
                f"Pay out {texts.money(state['amount'], self.currency)} to USDT {state['network']} "
                f"<code>{texts.esc(state['address'])}</code>? You will receive "
                f"{texts.money(receive, 'USDT')} (network fee {format_amount(fee)}).",
                InlineKeyboardMarkup(rows),
            )
        else:
            await self.reply(update, "Press Confirm or Cancel above, or send /payoutrequest again.")

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
            markup = InlineKeyboardMarkup([[InlineKeyboardButton(
                "Older", callback_data=keys.data("yp", page.next_before))]])  # fmt: skip
        lines = [texts.payout_line(p, self.currency) for p in page.items]
        await self.reply(update, "\n".join(lines), markup)

    # --- buttons ------------------------------------------------------------------------------
    @private_only
    async def button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        parts = keys.parse(update.callback_query.data)
        kind, arg = (parts[0], parts[1] if len(parts) > 1 else "") if parts else ("", "")
        if self.admin is not None and kind in ADMIN_BUTTONS:
            await self.admin.button(update, context, parts)
        elif kind == "m":
            await self._menu(update, context, arg)
        elif kind == "pg":
            catalogue = await self.db(browse_catalogue, self.core)
            await self._show_packages(update, arg, catalogue, edit=True)
        elif kind == "pp":
            await self._open(update, keys.parse_id(arg, "the package id"))
        elif kind == "st":
            await self._check(update, arg)
        elif kind == "cx":
            await self._cancel(update, arg)
        elif kind in ("op", "hp", "yp"):
            page = {"op": self._orders_page, "hp": self._history_page, "yp": self._payouts_page}
            await page[kind](update, keys.parse_id(arg, "the page"))
        elif kind == "pn":
            await self._payout_network(update, context, arg)
        elif kind == "po":
            await self._payout_confirm(update, context, arg == "yes")
        else:
            await self.reply(update, "That button is not mine to answer; /help lists commands.")

    async def _menu(self, update: Update, context, item: str) -> None:
        if item == "pay":
            await self._show_gateways(update, edit=False)
        elif item == "bal":
            balances = await self.db(read_balances, self.core, update.effective_user.id)
            await self.reply(update, texts.balances(balances, self.currency))
        elif item == "ord":
            await self._orders_page(update, None)
        elif item == "his":
            await self._history_page(update, None)
        elif item == "out":
            await self.db(_require_user, self, update.effective_user.id)
            context.user_data[PAYOUT_STEP] = {"step": "amount"}
            await self.reply(update, "How much? Send an amount like 50 or 50.25.")
        else:
            await self.reply(update, self.help_text(update.effective_user.id, self.admin_commands))

    async def _payout_network(self, update: Update, context, network: str) -> None:
        state = context.user_data.get(PAYOUT_STEP)
        if not state or state.get("step") != "network" or network not in ("TRC20", "BEP20"):
            await self.reply(
                update, "That step is done already; send /payoutrequest to start again."
            )
            return
        state["network"] = network
        state["step"] = "address"
        await self.reply(update, f"Send your USDT {network} address.")

    async def _payout_confirm(self, update: Update, context, yes: bool) -> None:
        state = context.user_data.pop(PAYOUT_STEP, None)
        if not state or state.get("step") != "confirm":
            await self.reply(update, "That request was already handled.")
            return
        if not yes:
            await self.reply(update, "Payout request dropped; nothing was held.")
            return
        await self._request(update, state["amount"], Network(state["network"]), state["address"])


def _require_user(bot: BotBase, user_id: int) -> None:
    """Activated and not banned (the core's own rule), before asking anything."""
    with bot.core.uow() as uow:
        bot.core.eligibility.check_user(uow, user_id)
