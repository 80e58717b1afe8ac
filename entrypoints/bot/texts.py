"""What the bot says. HTML parse mode: every user-supplied string goes through esc()."""

from __future__ import annotations

import html
import ipaddress
from urllib.parse import urlsplit

from flamepay.balances import Balances
from flamepay.ledger import JournalKind
from flamepay.ledger_views import LedgerLine
from flamepay.money import format_money
from flamepay.order import STATE_LABELS, Order
from flamepay.payout import Payout

SANDBOX_PREFIX = "[SANDBOX] "
MAX_MESSAGE = 4096


def esc(value: object) -> str:
    return html.escape(str(value), quote=False)


def money(cents: int, currency: str) -> str:
    return format_money(cents, currency)


def balances(b: Balances, currency: str) -> str:
    return (
        f"Available: {money(b.available, currency)}\n"
        f"On hold: {money(b.on_hold, currency)}\n"
        f"Credited in total: {money(b.credited_total, currency)}"
    )


def order_line(order: Order) -> str:
    review = " (being checked by an admin)" if order.under_review else ""
    return (
        f"<code>{esc(order.mch_order_no)}</code> {money(order.amount, order.currency)} — "
        f"{STATE_LABELS[order.state]}{review}"
    )


def order_card(order: Order, note: str = "") -> str:
    lines = [
        f"Order <code>{esc(order.mch_order_no)}</code>",
        f"Amount: {money(order.amount, order.currency)}",
        f"Fee: {money(order.fee, order.currency)}",
        f"To be credited: {money(order.credit, order.currency)}",
        f"State: {STATE_LABELS[order.state]}"
        + (" (being checked by an admin)" if order.under_review else ""),
    ]
    if order.provider_order_no:
        lines.append(f"Gateway number: <code>{esc(order.provider_order_no)}</code>")
    if order.cashier_url and order.is_open:
        lines.append(f"Pay here: {esc(order.cashier_url)}")
    if note:
        lines.append(esc(note))
    return "\n".join(lines)


KIND_LABELS = {
    JournalKind.PAYIN: "pay-in",
    JournalKind.REFUND: "refund",
    JournalKind.PAYOUT_HOLD: "payout requested",
    JournalKind.PAYOUT_POST: "payout sent",
    JournalKind.PAYOUT_VOID: "payout rejected",
    JournalKind.ADJUST: "adjustment",
}


def history_line(line: LedgerLine, currency: str) -> str:
    where = "on hold" if line.account.endswith(":held") else "available"
    sign = "+" if line.amount > 0 else "−"
    return (
        f"{line.at:%Y-%m-%d %H:%M} {sign}{money(abs(line.amount), currency)} {where} — "
        f"{KIND_LABELS.get(line.kind, line.kind.value)}"
        + (f": {esc(line.memo)}" if line.memo else "")
    )


def payout_line(payout: Payout, currency: str) -> str:
    return (
        f"#{payout.id} {money(payout.amount, currency)} → {payout.network.label} "
        f"<code>{esc(payout.address)}</code> — {payout.status.value}"
        + (f" (txid <code>{esc(payout.txid)}</code>)" if payout.txid else "")
        + (f": {esc(payout.note)}" if payout.note and payout.status.value == "rejected" else "")
    )


def is_public_https(url: str | None) -> bool:
    """Telegram accepts URL buttons only to https on a public host name."""
    if not url:
        return False
    parts = urlsplit(url)
    host = (parts.hostname or "").lower()
    if parts.scheme != "https" or not host or host == "localhost" or host.endswith(".local"):
        return False
    try:
        address = ipaddress.ip_address(host)
    except ValueError:
        return "." in host
    return address.is_global


def split(text: str, limit: int = MAX_MESSAGE) -> list[str]:
    """Telegram refuses messages over 4096 characters: split at line ends where possible."""
    parts: list[str] = []
    while len(text) > limit:
        cut = text.rfind("\n", 0, limit)
        cut = cut if cut > 0 else limit
        parts.append(text[:cut])
        text = text[cut:].lstrip("\n")
    parts.append(text)
    return parts
