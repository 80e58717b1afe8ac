"""A user's ledger entries, newest first, paged by key (no OFFSET).

The cursor is the last entry id shown; the next page asks for ids below it. Entries posted
between two page reads have higher ids, so they never shift what the next page returns.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TypeVar

from flamepay import ledger
from flamepay.context import Core
from flamepay.ledger_views import LedgerLine, Page
from flamepay.ports import UnitOfWork

PAGE_SIZE = 10

T = TypeVar("T")


def user_history(
    core: Core, user_id: int, before: int | None = None, size: int = PAGE_SIZE
) -> Page[LedgerLine]:
    size = max(1, min(size, 100))

    def body(uow: UnitOfWork) -> Page[LedgerLine]:
        core.eligibility.check_user(uow, user_id)
        accounts = (ledger.available(user_id), ledger.held(user_id))
        lines = uow.ledger.history(accounts, before, size + 1)  # one more: is there a next?
        return page_of(lines, size, lambda line: line.id)

    return core.transaction(body)


def page_of(items: Sequence[T], size: int, key: Callable[[T], int]) -> Page[T]:
    shown = tuple(items[:size])
    return Page(shown, key(shown[-1]) if len(items) > size else None)
