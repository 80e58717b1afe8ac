"""A user's own orders: one by number, or all of them newest first, paged by key."""

from __future__ import annotations

from flamepay.context import Core
from flamepay.errors import NotFound
from flamepay.ledger_views import Page
from flamepay.order import Order
from flamepay.ports import UnitOfWork
from flamepay.user_history import page_of

PAGE_SIZE = 10


def user_orders(
    core: Core, user_id: int, before: int | None = None, size: int = PAGE_SIZE
) -> Page[Order]:
    size = max(1, min(size, 100))

    def body(uow: UnitOfWork) -> Page[Order]:
        core.eligibility.check_user(uow, user_id)
        return page_of(uow.orders.list_for_user(user_id, before, size + 1), size, lambda o: o.id)

    return core.transaction(body)


def user_order(core: Core, user_id: int, number: str) -> Order:
    """By merchant or provider order number; another user's order looks like a missing one."""

    def body(uow: UnitOfWork) -> Order:
        core.eligibility.check_user(uow, user_id)
        order = uow.orders.get_by_number(number)
        if order is None or order.user_id != user_id:
            raise NotFound("No such order of yours. Expected an order number from /orders.")
        return order

    return core.transaction(body)
