"""Values that history, balance and stats reads return."""

from __future__ import annotations

from datetime import datetime
from typing import Generic, TypeVar

import attrs

from flamepay.ledger import JournalKind

T = TypeVar("T")


@attrs.frozen
class LedgerLine:
    """One ledger entry as a user's history shows it."""

    id: int  # entry id: the keyset cursor, increasing with time
    journal_key: str
    kind: JournalKind
    account: str
    amount: int
    at: datetime
    memo: str = ""


@attrs.frozen
class Page(Generic[T]):
    """A keyset page: `next_before` is the cursor for the next (older) page, or None."""

    items: tuple[T, ...]
    next_before: int | None


@attrs.frozen
class KindTotals:
    """Count of journals of one kind and the sum of their entries per account class
    ('provider:clearing', 'platform:fees', 'user:available', 'user:held', ...)."""

    count: int
    by_account: dict[str, int] = attrs.field(factory=dict)

    def of(self, account_class: str) -> int:
        return self.by_account.get(account_class, 0)


def account_class(account: str) -> str:
    """'user:42:available' -> 'user:available'; system accounts are their own class."""
    parts = account.split(":")
    if len(parts) == 3 and parts[0] == "user":
        return f"user:{parts[2]}"
    return account
