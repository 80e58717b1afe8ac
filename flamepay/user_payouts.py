"""A user's own payouts, newest first, paged by key."""

from __future__ import annotations

from flamepay.context import Core
from flamepay.ledger_views import Page
from flamepay.payout import Payout
from flamepay.ports import UnitOfWork
from flamepay.user_history import page_of

PAGE_SIZE = 10


def user_payouts(
    core: Core, user_id: int, before: int | None = None, size: int = PAGE_SIZE
) -> Page[Payout]:
    size = max(1, min(size, 100))

    def body(uow: UnitOfWork) -> Page[Payout]:
        core.eligibility.check_user(uow, user_id)
        return page_of(uow.payouts.list_for_user(user_id, before, size + 1), size, lambda p: p.id)

    return core.transaction(body)
