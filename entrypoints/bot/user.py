"""Everything a user does in the bot."""

from __future__ import annotations

import time

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.ext import ContextTypes

from entrypoints.bot import keys, texts
from entrypoints.bot.base import private_only
from entrypoints.bot.user_payouts import (
    PAYOUT_USAGE,
    PayoutRequests,
)
from flamepay.account_status import known_user, require_active_user
from flamepay.activate_user import activate_user
from flamepay.balances import read_balances
from flamepay.browse_catalogue import browse_catalogue
from flamepay.cancel_order import cancel_order
from flamepay.closing import CloseOutcome
from flamepay.open_order import open_recharge_order
from flamepay.order import STATE_LABELS
from flamepay.refresh_order import refresh_order
from flamepay.user_history import user_history
from flamepay.user_orders import user_order, user_orders

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
USAGE = {
    "activate": "Expected: /activate <code> (the access code you were given).",
    "status": "Expected: /status <order number> (from /orders).",
    "cancel": "Expected: /cancel <order number> (an unpaid order of yours).",
    "payoutrequest": PAYOUT_USAGE,
}


def menu() -> InlineKeyboardMarkup:
    return InlineKeyboardMarkup(
        [
            [
                InlineKeyboardButton("Pay", callback_data=keys.MENU.data("pay")),
                InlineKeyboardButton("Balance", callback_data=keys.MENU.data("bal")),
            ],
            [
                InlineKeyboardButton("Orders", callback_data=keys.MENU.data("ord")),
                InlineKeyboardButton("History", callback_data=keys.MENU.data("his")),
            ],
            [
                InlineKeyboardButton("Payout", callback_data=keys.MENU.data("out")),
                InlineKeyboardButton("Help", callback_data=keys.MENU.data("help")),
            ],
        ]
    )


class UserBot(PayoutRequests):
    def __init__(self, flamepay) -> None:
        super().__init__(flamepay)
        self._last_query: dict[str, float] = {}
        self.admin_commands: list[tuple[str, str]] = []  # the admin part fills this in
        self.admin = None  # the AdminBot, for /payouts

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
        user = known_user(self.core, user_id)
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
        await self.db(require_active_user, self.core, user_id)
        catalogue = await self.db(browse_catalogue, self.core)
        usable = [g for g in catalogue.gateways if catalogue.packages_of(g.way_code)]
        if not usable:
            await self.reply(update, "No payment method is available right now; try later.")
            return
        if len(usable) == 1:
            await self._show_packages(update, usable[0].way_code, catalogue, edit)
            return
        rows = [
            [InlineKeyboardButton(g.title, callback_data=keys.GATEWAY.data(g.way_code))]
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
            [
                InlineKeyboardButton(
                    f"{p.label} — {texts.money(p.amount, self.currency)}",
                    callback_data=keys.PACKAGE.data(p.id),
                )
            ]
            for p in packages
        ]
        send = self.edit if edit else self.reply
        await send(
            update,
            "Choose an amount (what you pay; the fee is deducted):",
            InlineKeyboardMarkup(rows),
        )

    async def _open(self, update: Update, package_id: int) -> None:
        user_id = update.effective_user.id
        opened = await self.gateway(open_recharge_order, self.core, user_id, package_id)
        order = opened.order
        note = "This is your open order for that package." if opened.reused else opened.message
        buttons = []
        if order.is_open and texts.is_public_https(order.cashier_url):
            buttons.append([InlineKeyboardButton("Pay now", url=order.cashier_url)])
        buttons.append(
            [
                InlineKeyboardButton(
                    "Check status", callback_data=keys.CHECK.data(order.mch_order_no)
                ),
                InlineKeyboardButton("Cancel", callback_data=keys.CANCEL.data(order.mch_order_no)),
            ]
        )
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
            markup = InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            "Older", callback_data=keys.ORDERS_PAGE.data(page.next_before)
                        )
                    ]
                ]
            )
        await self.reply(update, "\n".join(texts.order_line(o) for o in page.items), markup)

    @private_only
    async def cancel(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if len(context.args) != 1:
            await self.reply(update, texts.esc(USAGE["cancel"]))
            return
        await self._cancel(update, context.args[0])

    @private_only
    async def cancel_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._cancel(update, keys.CANCEL.arg(update.callback_query.data))

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
            markup = InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            "Older", callback_data=keys.HISTORY_PAGE.data(page.next_before)
                        )
                    ]
                ]
            )
        lines = [texts.history_line(line, self.currency) for line in page.items]
        await self.reply(update, "\n".join(lines), markup)

    # --- buttons: one handler per prefix in keys.BUTTONS ---------------------------------------
    @private_only
    async def menu_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> object:
        """The /start menu. An entry point of the guided payout (Payout starts it); any other
        item leaves a flow under way where it was (None)."""
        item = keys.MENU.arg(update.callback_query.data)
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
            return await self._payout_start(update, context)
        else:
            await self.reply(update, self.help_text(update.effective_user.id, self.admin_commands))
        return None

    @private_only
    async def gateway_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        catalogue = await self.db(browse_catalogue, self.core)
        way_code = keys.GATEWAY.arg(update.callback_query.data)
        await self._show_packages(update, way_code, catalogue, edit=True)

    @private_only
    async def package_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        arg = keys.PACKAGE.arg(update.callback_query.data)
        await self._open(update, keys.parse_id(arg, "the package id"))

    @private_only
    async def check_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self._check(update, keys.CHECK.arg(update.callback_query.data))

    @private_only
    async def orders_page_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        arg = keys.ORDERS_PAGE.arg(update.callback_query.data)
        await self._orders_page(update, keys.parse_id(arg, "the page"))

    @private_only
    async def history_page_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        arg = keys.HISTORY_PAGE.arg(update.callback_query.data)
        await self._history_page(update, keys.parse_id(arg, "the page"))

    @private_only
    async def payouts_page_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        arg = keys.PAYOUTS_PAGE.arg(update.callback_query.data)
        await self._payouts_page(update, keys.parse_id(arg, "the page"))

    @private_only
    async def unknown_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Callback data with no prefix of keys.BUTTONS (registered last)."""
        await self.reply(update, keys.NOT_MINE)
