"""Money: integer minor units (cents) end to end.

Amounts typed by people and amounts reported by the provider are parsed here and nowhere
else. A float never becomes money: every function that takes an amount refuses one with a
TypeError, so a float cannot slip in through a default or a careless call site.
"""

from __future__ import annotations

import re

from flamepay.errors import InvalidAmount

# ASCII digits only: \d would accept '１００' and '١٠٠'. fullmatch, so a trailing newline
# (which '$' tolerates) is refused too.
_USER_AMOUNT = re.compile(r"[0-9]{1,9}(\.[0-9]{1,2})?", re.ASCII)
# Provider numeric fields: no sign, no leading zeros, no decimals, no exponent.
_PROVIDER_INTEGER = re.compile(r"0|[1-9][0-9]{0,17}", re.ASCII)
_PERCENT = re.compile(r"[0-9]{1,3}(\.[0-9]{1,2})?", re.ASCII)

EXPECTED_AMOUNT = "an amount like 100 or 100.50 (digits, at most two decimals)"
# The largest amount a person can type (nine digits and two decimals): far inside BIGINT, so
# a typed amount, or a sum of a few, never overflows a column.
MAX_USER_AMOUNT = 999_999_999_99
_TOO_MANY_DIGITS = re.compile(r"[0-9]{10,}(\.[0-9]{1,2})?", re.ASCII)


def require_cents(value: object, what: str = "amount") -> int:
    """Return value if it is an int number of cents; a float or a bool is a programming error."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"{what} must be an int number of cents, not {type(value).__name__}")
    return value


def parse_amount(text: str, maximum: int | None = None) -> int:
    """Parse a user-typed amount such as '100' or '100.5' into cents.

    Refused with InvalidAmount (whose message says what is expected): anything that is not
    ASCII digits with at most two decimals, zero, and anything above `maximum` cents.
    """
    if not isinstance(text, str):
        raise TypeError(f"amount text must be str, not {type(text).__name__}")
    if _USER_AMOUNT.fullmatch(text) is None:
        # Digits, but too many: say the limit, or "digits" reads as if it were met.
        too_many = _TOO_MANY_DIGITS.fullmatch(text)
        limit = f", at most {format_amount(MAX_USER_AMOUNT)}" if too_many else ""
        raise InvalidAmount(f"Expected {EXPECTED_AMOUNT}{limit}; got {_shown(text)}.")
    whole, _, frac = text.partition(".")
    cents = int(whole) * 100 + int(frac.ljust(2, "0") or "0")
    if cents <= 0:
        raise InvalidAmount(f"The amount must be above zero; expected {EXPECTED_AMOUNT}.")
    if maximum is not None and cents > require_cents(maximum, "maximum"):
        raise InvalidAmount(f"The amount must be at most {format_amount(maximum)}.")
    return cents


def parse_provider_integer(text: object, field: str) -> int:
    """Parse a provider numeric field (amount, realAmount, state): an ASCII integer string.

    '02', '100.0', '1e2', '+1', ' 1' and non-strings other than int are malformed: the
    provider signs what it sends, so a lenient parse would accept what nobody signed as such.
    """
    if isinstance(text, bool):
        raise InvalidAmount(f"{field} must be an integer")
    if isinstance(text, int):
        if text < 0:
            raise InvalidAmount(f"{field} must not be negative")
        return text
    if not isinstance(text, str) or _PROVIDER_INTEGER.fullmatch(text) is None:
        raise InvalidAmount(f"{field} must be an ASCII integer without sign or leading zeros")
    return int(text)


def format_amount(cents: int) -> str:
    """85.00 for 8500; -12.05 for -1205."""
    require_cents(cents)
    sign = "-" if cents < 0 else ""
    whole, frac = divmod(abs(cents), 100)
    return f"{sign}{whole}.{frac:02d}"


def format_money(cents: int, currency: str) -> str:
    """'85.00 USD': what users and admins see."""
    return f"{format_amount(cents)} {normalise_currency(currency)}"


def normalise_currency(code: str) -> str:
    """Currencies are stored and shown uppercase: 'usd' -> 'USD'."""
    if not isinstance(code, str) or not re.fullmatch(r"[A-Za-z]{3,5}", code, re.ASCII):
        raise ValueError("a currency is 3 to 5 ASCII letters")
    return code.upper()


def same_currency(a: str, b: str) -> bool:
    """Compared without case: ggusonepay sends 'usd' for our 'USD'."""
    return a.casefold() == b.casefold()


def parse_fee_percent(text: str) -> int:
    """'15' -> 1500 basis points; '12.5' -> 1250. 0 to 100 with at most two decimals."""
    if not isinstance(text, str) or _PERCENT.fullmatch(text) is None:
        raise InvalidAmount("expected a percentage from 0 to 100 with at most two decimals")
    whole, _, frac = text.partition(".")
    bp = int(whole) * 100 + int(frac.ljust(2, "0") or "0")
    if bp > 10_000:
        raise InvalidAmount("expected a percentage from 0 to 100 with at most two decimals")
    return bp


def fee_for(amount: int, fee_bp: int) -> int:
    """The fee on a paid amount: round half up of amount * bp / 10000, integers only."""
    require_cents(amount)
    require_cents(fee_bp, "fee_bp")
    if amount < 0 or not 0 <= fee_bp <= 10_000:
        raise ValueError("fee needs a non-negative amount and 0..10000 basis points")
    return (amount * fee_bp * 2 + 10_000) // 20_000


def split_payment(amount: int, fee_bp: int) -> tuple[int, int]:
    """(fee, credit): the fee is deducted from what the payer paid."""
    fee = fee_for(amount, fee_bp)
    return fee, amount - fee


def _shown(text: str) -> str:
    # Echo a bounded, printable form of what was typed so replies stay short and harmless.
    clipped = text[:20]
    return repr(clipped) + ("…" if len(text) > 20 else "")
