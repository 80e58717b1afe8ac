"""What admins do in the bot. Rights are checked here and again in the core (which audits
every refusal); every reply echoes what was parsed."""

from __future__ import annotations

import re
import secrets
from datetime import date

from telegram import InlineKeyboardButton, InlineKeyboardMarkup, InputFile, Update
from telegram.ext import ContextTypes

from entrypoints.bot import keys, texts
from entrypoints.bot.admin_payouts import PayoutAdmin
from entrypoints.bot.base import private_only
from entrypoints.bot.ledger_csv import ledger_csv
from entrypoints.bot.ledger_csv import safe_cell as safe_cell  # re-exported (tests)
from flamepay.add_package import add_package
from flamepay.adjust_balance import adjust_balance
from flamepay.admin import require_admin
from flamepay.admin_queues import pending_reviews
from flamepay.ban_user import ban_user, unban_user
from flamepay.browse_catalogue import browse_catalogue
from flamepay.configure_gateway import configure_gateway
from flamepay.describe_user import describe_user
from flamepay.errors import Refused
from flamepay.generate_codes import generate_codes
from flamepay.list_codes import list_codes
from flamepay.money import format_amount, parse_amount
from flamepay.order import STATE_LABELS
from flamepay.reconcile_order import reconcile_order
from flamepay.resolve_review import Resolution, creditable, resolve_review
from flamepay.stats import read_stats
from flamepay.switch_package import switch_package

ADMIN_COMMANDS = [
    ("gencode", "[uses] [YYYY-MM-DD] [count]: new access codes"),
    ("codes", "recent access codes"),
    ("gateway", "list, or <way_code> <title> <on|off>"),
    ("package_add", "<way_code> <label> <amount> [sort_order]"),
    ("packages", "all packages"),
    ("package_off", "<id>"),
    ("payouts", "the pending payout queue"),
    ("payout_approve", "<id> [txid] [note]"),
    ("payout_reject", "<id> <reason>"),
    ("review", "the review queue"),
    ("reconcile", "<mchOrderNo>: ask the gateway and apply"),
    ("adjust", "<tg_id> <+amount|-amount> <reason>"),
    ("orders_search", "<order number or user id>"),
    ("user", "<tg_id>"),
    ("ban", "<tg_id>"),
    ("unban", "<tg_id>"),
    ("stats", "the numbers"),
    ("export", "the ledger as CSV"),
]


class AdminBot(PayoutAdmin):
    def __init__(self, flamepay) -> None:
        super().__init__(flamepay)
        self.drafts: dict[str, tuple[str, int, tuple]] = {}  # confirmation token -> action

    async def require(self, update: Update, action: str, target: str = "") -> int:
        """The caller's id when an admin; else NotAllowed (audited by the core)."""
        admin_id = update.effective_user.id
        await self.db(require_admin, self.core, admin_id, action, target)
        return admin_id

    def _draft(self, kind: str, admin_id: int, args: tuple) -> str:
        token = secrets.token_hex(6)
        self.drafts[token] = (kind, admin_id, args)
        return token

    # --- codes --------------------------------------------------------------------------------
    @private_only
    async def gencode(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "gencode")
        uses, expires, count = 1, None, 1
        args = list(context.args)
        if len(args) > 3:
            raise Refused("Expected: /gencode [uses] [YYYY-MM-DD] [count].")
        if args:
            uses = keys.parse_id(args.pop(0), "uses")
        if args and "-" in args[0]:
            try:
                expires = date.fromisoformat(args.pop(0))
            except ValueError:
                raise Refused("Expected the expiry as YYYY-MM-DD.") from None
        if args:
            count = keys.parse_id(args.pop(0), "count")
        codes = await self.db(generate_codes, self.core, admin_id, uses, expires, count)
        lines = [f"<code>{texts.esc(c.code)}</code>" for c in codes]
        await self.reply(
            update,
            f"{len(codes)} code(s), {uses} use(s) each, "
            f"expiring {expires.isoformat() if expires else 'never'}:\n" + "\n".join(lines),
        )

    @private_only
    async def codes(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "codes")
        codes = await self.db(list_codes, self.core, admin_id)
        if not codes:
            await self.reply(update, "No codes yet. /gencode makes some.")
            return
        lines = [
            f"<code>{texts.esc(c.code)}</code> {c.uses}/{c.max_uses} used"
            + (f", expires {c.expires_at:%Y-%m-%d}" if c.expires_at else "")
            for c in codes
        ]
        await self.reply(update, "\n".join(lines))

    # --- catalogue ----------------------------------------------------------------------------
    @private_only
    async def gateway(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "gateway")
        args = context.args
        if not args:
            catalogue = await self.db(browse_catalogue, self.core, True)
            lines = [
                f"{texts.esc(g.way_code)} — {texts.esc(g.title)} — "
                + ("on" if g.enabled else "off")
                for g in catalogue.gateways
            ]
            await self.reply(update, "\n".join(lines) or "No gateways yet.")
            return
        if len(args) < 3 or args[-1].lower() not in ("on", "off"):
            raise Refused("Expected: /gateway <way_code> <title> <on|off>.")
        enabled = args[-1].lower() == "on"
        gateway = await self.db(
            configure_gateway, self.core, admin_id, args[0], " ".join(args[1:-1]), enabled
        )
        await self.reply(
            update,
            f"Gateway {texts.esc(gateway.way_code)} ({texts.esc(gateway.title)}) is "
            f"{'on' if gateway.enabled else 'off'}.",
        )

    @private_only
    async def package_add(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "package_add")
        args = context.args
        if len(args) not in (3, 4):
            raise Refused(
                "Expected: /package_add <way_code> <label> <amount> [sort_order] "
                "(a one-word label; use _ for spaces)."
            )
        sort_order = 0
        if len(args) == 4:
            if not re.fullmatch(r"-?[0-9]{1,4}", args[3]):
                raise Refused("Expected the sort order as a whole number.")
            sort_order = int(args[3])
        way, label, amount_text = args[0], args[1].replace("_", " "), args[2]
        draft = await self.db(add_package, self.core, admin_id, way, label, amount_text, sort_order)
        amount = texts.money(draft.amount, self.currency)
        if draft.needs_confirmation:
            token = self._draft("package", admin_id, (way, label, amount_text, sort_order))
            markup = InlineKeyboardMarkup(
                [
                    [
                        InlineKeyboardButton(
                            f"Yes, add {amount}", callback_data=keys.DRAFT_YES.data(token)
                        ),
                        InlineKeyboardButton("No", callback_data=keys.DRAFT_NO.data(token)),
                    ]
                ]
            )
            maximum = texts.money(self.core.policy.package_max, self.currency)
            await self.reply(
                update, f"Parsed {amount}, above the {maximum} maximum. Add it?", markup
            )
            return
        package = draft.package
        await self.reply(
            update,
            f"Package #{package.id} added: {texts.esc(package.way_code)} "
            f"“{texts.esc(package.label)}” {amount}, sort order {package.sort_order}.",
        )

    @private_only
    async def packages(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.require(update, "packages")
        catalogue = await self.db(browse_catalogue, self.core, True)
        lines = [
            f"#{p.id} {texts.esc(p.way_code)} “{texts.esc(p.label)}” "
            f"{texts.money(p.amount, self.currency)} sort {p.sort_order} "
            f"{'on' if p.enabled else 'off'}"
            for p in catalogue.packages
        ]
        await self.reply(update, "\n".join(lines) or "No packages yet.")

    @private_only
    async def package_off(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "package_off")
        if len(context.args) != 1:
            raise Refused("Expected: /package_off <id> (from /packages).")
        package_id = keys.parse_id(context.args[0], "the package id")
        package = await self.db(switch_package, self.core, admin_id, package_id, False)
        await self.reply(update, f"Package #{package.id} “{texts.esc(package.label)}” is off.")

    # --- review, reconcile, adjust ------------------------------------------------------------
    @private_only
    async def review(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "review")
        queue = await self.db(pending_reviews, self.core, admin_id)
        if not queue:
            await self.reply(update, "The review queue is empty.")
            return
        for item, order in queue[:20]:
            number = order.mch_order_no if order else "?"
            buttons = []
            if item.kind.value == "mismatch":
                if order and creditable(item, order.currency, self.core.policy.merchant_no) is None:
                    buttons.append(
                        InlineKeyboardButton("Credit", callback_data=keys.REVIEW.data("c", item.id))
                    )
                buttons.append(
                    InlineKeyboardButton("Reject", callback_data=keys.REVIEW.data("r", item.id))
                )
            else:
                buttons.append(
                    InlineKeyboardButton(
                        "Acknowledge", callback_data=keys.REVIEW.data("a", item.id)
                    )
                )
            await self.reply(
                update,
                f"Review #{item.id} ({item.kind.value}) order <code>{texts.esc(number)}</code>: "
                f"{texts.esc(item.reason)}",
                InlineKeyboardMarkup([buttons]),
            )

    @private_only
    async def reconcile(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "reconcile")
        if len(context.args) != 1:
            raise Refused("Expected: /reconcile <mchOrderNo>.")
        done = await self.gateway(reconcile_order, self.core, admin_id, context.args[0])
        outcome = done.result.outcome.value if done.result else "nothing applied"
        await self.reply(
            update,
            f"Order <code>{texts.esc(done.before.mch_order_no)}</code>: before "
            f"{STATE_LABELS[done.before.state]}, the gateway says {texts.esc(done.provider_said)}, "
            f"after {STATE_LABELS[done.after.state]} ({outcome}).",
        )

    @private_only
    async def adjust(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "adjust")
        args = context.args
        if len(args) < 3 or args[1][:1] not in "+-":
            raise Refused("Expected: /adjust <tg_id> <+amount|-amount> <reason>.")
        user_id = keys.parse_id(args[0], "the Telegram user id")
        cents = parse_amount(args[1][1:]) * (-1 if args[1][0] == "-" else 1)
        reason = " ".join(args[2:])
        token = self._draft("adjust", admin_id, (user_id, cents, reason))
        sign = "+" if cents > 0 else "-"
        markup = InlineKeyboardMarkup(
            [
                [
                    InlineKeyboardButton("Confirm", callback_data=keys.DRAFT_YES.data(token)),
                    InlineKeyboardButton("Cancel", callback_data=keys.DRAFT_NO.data(token)),
                ]
            ]
        )
        await self.reply(
            update,
            f"Adjust user {user_id} by {sign}{format_amount(abs(cents))} {self.currency} "
            f"({texts.esc(reason)})?",
            markup,
        )

    # --- users, orders, numbers ---------------------------------------------------------------
    @private_only
    async def orders_search(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        from flamepay.search_orders import search_orders

        admin_id = await self.require(update, "orders_search")
        if len(context.args) != 1 or not context.args[0].isascii():
            # ASCII only: order numbers are, and a '²' would pass the search's isdigit().
            raise Refused("Expected: /orders_search <order number or user id>.")
        found = await self.db(search_orders, self.core, admin_id, context.args[0])
        lines = [f"user {o.user_id}: {texts.order_line(o)}" for o in found]
        await self.reply(update, "\n".join(lines) or "No order matches.")

    @private_only
    async def user(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "user")
        if len(context.args) != 1:
            raise Refused("Expected: /user <tg_id>.")
        user_id = keys.parse_id(context.args[0], "the Telegram user id")
        s = await self.db(describe_user, self.core, admin_id, user_id)
        u = s.user
        status = "banned" if u.banned else ("active" if u.activated else "not activated")
        lines = [
            f"User {u.id} @{texts.esc(u.username or '-')} {texts.esc(u.name)} — {status}"
            + (" (blocked the bot)" if u.blocked_bot_at else ""),
            f"Available {texts.money(s.available, self.currency)}, on hold "
            f"{texts.money(s.on_hold, self.currency)}, credited in total "
            f"{texts.money(s.credited_total, self.currency)}",
            f"Open orders: {len(s.open_orders)}; pending payouts: {len(s.pending_payouts)}",
        ] + [texts.order_line(o) for o in s.recent_orders]
        await self.reply(update, "\n".join(lines))

    @private_only
    async def ban(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "ban")
        if len(context.args) != 1:
            raise Refused("Expected: /ban <tg_id>.")
        user_id = keys.parse_id(context.args[0], "the Telegram user id")
        user = await self.db(ban_user, self.core, admin_id, user_id)
        await self.reply(update, f"User {user.id} is banned.")

    @private_only
    async def unban(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "unban")
        if len(context.args) != 1:
            raise Refused("Expected: /unban <tg_id>.")
        user_id = keys.parse_id(context.args[0], "the Telegram user id")
        user = await self.db(unban_user, self.core, admin_id, user_id)
        await self.reply(update, f"User {user.id} is no longer banned.")

    @private_only
    async def stats(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "stats")
        s = await self.db(read_stats, self.core, admin_id)
        m = lambda cents: texts.money(cents, self.currency)  # noqa: E731
        await self.reply(
            update,
            f"Pay-ins: {s.payins}, gross {m(s.payin_gross)}, fees {m(s.payin_fees)}, "
            f"net {m(s.payin_net)}\n"
            f"Refunds: {s.refunds}, {m(s.refund_gross)}\n"
            f"Payouts pending: {s.payouts_pending[0]}, {m(s.payouts_pending[1])}\n"
            f"Payouts sent: {s.payouts_sent[0]}, {m(s.payouts_sent[1])}\n"
            f"Users: {s.users.total} ({s.users.active} active, {s.users.banned} banned)\n"
            f"Owed to users: {m(s.liability)}",
        )

    @private_only
    async def export(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        admin_id = await self.require(update, "export")
        data = await self.db(ledger_csv, self.core, admin_id)
        await update.effective_message.reply_document(
            InputFile(data, filename="flamepay-ledger.csv"),
            caption=self.prefixed("The ledger, every entry (amounts in currency units)."),
        )

    # --- buttons: one handler per prefix in keys.BUTTONS ---------------------------------------
    @private_only
    async def review_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        how, arg = keys.REVIEW.args(update.callback_query.data, 2)
        admin_id = await self.require(update, "review")
        resolution = {
            "c": Resolution.CREDIT,
            "r": Resolution.REJECT,
            "a": Resolution.ACKNOWLEDGE,
        }.get(how)
        if resolution is None:
            raise Refused(keys.NOT_ONE_OF_MINE)
        review_id = keys.parse_id(arg, "the review id")
        review = await self.db(resolve_review, self.core, admin_id, review_id, resolution)
        await self.reply(update, f"Review #{review.id} {review.status.value}.")

    @private_only
    async def draft_yes_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        (token,) = keys.DRAFT_YES.args(update.callback_query.data, 1)
        await self._confirm(update, token, True)

    @private_only
    async def draft_no_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        (token,) = keys.DRAFT_NO.args(update.callback_query.data, 1)
        await self._confirm(update, token, False)

    async def _confirm(self, update: Update, token: str, yes: bool) -> None:
        draft = self.drafts.pop(token, None)
        if draft is None:
            await self.reply(update, "That was already handled.")
            return
        kind, admin_id, args = draft
        if admin_id != update.effective_user.id:
            await self.require(update, f"confirm_{kind}")  # another admin's draft: checked
        if not yes:
            await self.reply(update, "Dropped; nothing changed.")
            return
        if kind == "package":
            way, label, amount_text, sort_order = args
            done = await self.db(
                add_package, self.core, admin_id, way, label, amount_text, sort_order, True
            )
            package = done.package
            await self.reply(
                update,
                f"Package #{package.id} added: {texts.esc(package.way_code)} "
                f"“{texts.esc(package.label)}” "
                f"{texts.money(package.amount, self.currency)}.",
            )
        else:
            user_id, cents, reason = args
            await self.db(adjust_balance, self.core, admin_id, user_id, cents, reason)
            await self.reply(
                update,
                f"User {user_id} adjusted by "
                f"{'+' if cents > 0 else '-'}{format_amount(abs(cents))} "
                f"{self.currency}.",
            )
