"""Callback data: short, at most 64 bytes, and untrusted (every press is checked again)."""

from __future__ import annotations

import re

from flamepay.errors import Refused

MAX_CALLBACK_DATA = 64
# The largest id a row can have (BIGINT, SQLite INTEGER): 2^63 - 1. One above it does not
# even bind on SQLite (OverflowError), so such input is refused before any query.
MAX_ID = 2**63 - 1
# ASCII digits only: str.isdigit() also takes '²' and '١٢', which int() or the database refuse.
_ID = re.compile(r"[0-9]{1,19}", re.ASCII)


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
