"""Callback data: short, at most 64 bytes, and untrusted (every press is checked again).

Every kind of button is declared once, in BUTTONS: its prefix builds the callback data
(`Button.data`) and its pattern registers the one CallbackQueryHandler that answers it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from flamepay.errors import Refused

MAX_CALLBACK_DATA = 64
# The largest id a row can have (BIGINT, SQLite INTEGER): 2^63 - 1. One above it does not
# even bind on SQLite (OverflowError), so such input is refused before any query.
MAX_ID = 2**63 - 1
# ASCII digits only: str.isdigit() also takes '²' and '١٢', which int() or the database refuse.
_ID = re.compile(r"[0-9]{1,19}", re.ASCII)
NOT_MINE = "That button is not mine to answer; /help lists commands."
NOT_ONE_OF_MINE = "That button is not one of mine."  # an admin button of the wrong shape


def data(*parts: object) -> str:
    text = ":".join(str(p) for p in parts)
    if len(text.encode("utf-8")) > MAX_CALLBACK_DATA:
        raise ValueError(f"callback data over {MAX_CALLBACK_DATA} bytes: {text[:20]}...")
    return text


def parse_id(text: str | None, what: str) -> int:
    """An id typed in a command or carried by a button: ASCII digits, 1 to MAX_ID.

    The one parser for every id from Telegram (users, payouts, packages, reviews, page
    cursors, counts); anything else is a Refused that says what is expected.
    """
    if isinstance(text, str) and _ID.fullmatch(text) and 1 <= int(text) <= MAX_ID:
        return int(text)
    shown = repr((text or "")[:20])
    raise Refused(f"Expected {what} as a whole number from 1 to {MAX_ID}; got {shown}.")


def parse(raw: str | None) -> list[str]:
    if not raw or len(raw.encode("utf-8")) > MAX_CALLBACK_DATA:
        return []
    return raw.split(":")


@dataclass(frozen=True)
class Button:
    """One kind of button: `prefix:arg:...`, answered by the handler registered on `pattern`."""

    prefix: str
    about: str

    @property
    def pattern(self) -> re.Pattern[str]:
        # The prefix and nothing more, or the prefix and ':': 'ap' is not 'apc'. What follows is
        # the handler's to check (parse_id, the arity), so a forged press is refused in words.
        return re.compile(rf"^{re.escape(self.prefix)}(?::|$)")

    def data(self, *parts: object) -> str:
        return data(self.prefix, *parts)

    def args(self, raw: str | None, count: int | None = None) -> list[str]:
        """The parts after the prefix (exactly `count` of them when given); data over 64 bytes
        (never Telegram's) is not ours."""
        parts = parse(raw)
        if not parts or parts[0] != self.prefix:
            raise Refused(NOT_MINE)
        if count is not None and len(parts) - 1 != count:
            raise Refused(NOT_ONE_OF_MINE)
        return parts[1:]

    def arg(self, raw: str | None) -> str:
        """The first part after the prefix, '' when there is none (checked by the handler)."""
        args = self.args(raw)
        return args[0] if args else ""


BUTTONS: dict[str, Button] = {}


def _button(prefix: str, about: str) -> Button:
    if prefix in BUTTONS or ":" in prefix:
        raise ValueError(f"button prefix {prefix!r} declared twice or malformed")
    BUTTONS[prefix] = Button(prefix, about)
    return BUTTONS[prefix]


# A user's buttons.
MENU = _button("m", "m:<pay|bal|ord|his|out|help> — the /start menu")
GATEWAY = _button("pg", "pg:<way_code> — the packages of one payment method")
PACKAGE = _button("pp", "pp:<package id> — open a recharge order")
CHECK = _button("st", "st:<order number> — Check status (own orders only)")
CANCEL = _button("cx", "cx:<order number> — cancel an unpaid order (own orders only)")
ORDERS_PAGE = _button("op", "op:<before id> — older orders")
HISTORY_PAGE = _button("hp", "hp:<before id> — older ledger entries")
PAYOUTS_PAGE = _button("yp", "yp:<before id> — older payouts")
PAYOUT_NETWORK = _button("pn", "pn:<TRC20|BEP20> — the guided payout's network step")
PAYOUT_CONFIRM = _button("po", "po:<yes|no> — the guided payout's confirmation")
# An admin's buttons (rights are checked by every handler, and again by the core).
APPROVE = _button("ap", "ap:<payout id> — ask to approve a payout")
APPROVE_CONFIRM = _button("apc", "apc:<payout id> — approve it")
REJECT = _button("rj", "rj:<payout id> — reject a payout: asks for the reason")
REVIEW = _button("rv", "rv:<c|r|a>:<review id> — credit, reject or acknowledge a review")
DRAFT_YES = _button("ak", "ak:<token> — confirm a drafted /package_add or /adjust")
DRAFT_NO = _button("an", "an:<token> — drop it")
PATTERNS: dict[str, re.Pattern[str]] = {prefix: b.pattern for prefix, b in BUTTONS.items()}
