"""An admin finds orders by merchant or provider number, or by a user's id."""

from __future__ import annotations

from flamepay.admin import require_admin
from flamepay.context import Core
from flamepay.order import Order

LIMIT = 20


def search_orders(core: Core, admin_id: int, term: str) -> list[Order]:
    require_admin(core, admin_id, "orders_search")
    term = term.strip()[:64]
    if not term:
        return []
    return core.transaction(lambda uow: uow.orders.search(term, LIMIT))


def user_id_term(term: str) -> int | None:
    """The user id a search term names, if it can name one: ASCII digits ('²' passes
    isdigit(), and then int() or the database refuses it) within a BIGINT (one above it does
    not even bind on SQLite). The repositories search by it."""
    if term.isascii() and term.isdigit() and len(term) <= 19 and 0 < int(term) < 2**63:
        return int(term)
    return None
