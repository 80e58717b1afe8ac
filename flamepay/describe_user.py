"""What an admin sees about one user: who, status, balances, open orders and payouts."""

from __future__ import annotations

import attrs

from flamepay import ledger
from flamepay.admin import require_admin
from flamepay.context import Core
from flamepay.errors import NotFound
from flamepay.order import Order
from flamepay.payout import Payout
from flamepay.ports import UnitOfWork
from flamepay.user import User


@attrs.frozen
class UserSummary:
    user: User
    available: int
    on_hold: int
    credited_total: int
    open_orders: tuple[Order, ...]
    pending_payouts: tuple[Payout, ...]
    recent_orders: tuple[Order, ...]


def describe_user(core: Core, admin_id: int, user_id: int) -> UserSummary:
    require_admin(core, admin_id, "user", f"user:{user_id}")

    def body(uow: UnitOfWork) -> UserSummary:
        user = uow.users.get(user_id)
        if user is None:
            raise NotFound(f"No user {user_id}: they have not talked to the bot yet.")
        account = ledger.available(user_id)
        return UserSummary(
            user=user,
            available=uow.ledger.balance(account),
            on_hold=uow.ledger.balance(ledger.held(user_id)),
            credited_total=uow.ledger.credited_total(user_id),
            open_orders=tuple(uow.orders.open_for_user(user_id)),
            pending_payouts=tuple(uow.payouts.pending(user_id)),
            recent_orders=tuple(uow.orders.list_for_user(user_id, None, 5)),
        )

    return core.transaction(body)
