"""Gateways (pay methods by way code) and packages (fixed amounts the payer pays)."""

from __future__ import annotations

import re

import attrs

from flamepay.errors import Refused
from flamepay.money import require_cents

# Way codes are the provider's identifiers (e.g. ALI_QR, WX_NATIVE, USDT_TRC20).
_WAY_CODE = re.compile(r"[A-Za-z][A-Za-z0-9_]{1,31}", re.ASCII)


def parse_way_code(text: str) -> str:
    code = text.strip()
    # Checked before upper-casing: 'ı'.upper() is 'I' and 'ﬀ'.upper() is 'FF'.
    if _WAY_CODE.fullmatch(code) is None:
        raise Refused(
            "Expected a way code: 2 to 32 characters, letters, digits and '_', starting with a "
            "letter (for example ALI_QR)."
        )
    return code.upper()


@attrs.define(eq=False)
class Gateway:
    way_code: str
    title: str
    enabled: bool = True


@attrs.define(eq=False)
class Package:
    id: int
    way_code: str
    label: str
    amount: int
    sort_order: int = 0
    enabled: bool = True

    def __attrs_post_init__(self) -> None:
        require_cents(self.amount)
        if self.amount <= 0:
            raise ValueError("a package amount must be above zero")


def parse_title(text: str, what: str = "title", limit: int = 64) -> str:
    """A title or label: 1 to `limit` printable characters, spaces folded."""
    cleaned = " ".join(text.split())
    if not cleaned or len(cleaned) > limit or not cleaned.isprintable():
        raise Refused(f"Expected a {what} of 1 to {limit} printable characters.")
    return cleaned
