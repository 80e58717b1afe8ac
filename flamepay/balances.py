"""A user's three balances."""

from __future__ import annotations

import attrs

from flamepay import ledger
from flamepay.context import Core
from flamepay.ports import UnitOfWork


@attrs.frozen
class Balances:
    available: int
    on_hold: int
    credited_total: int  # net pay-in credits minus refund reversals


def read_balances(core: Core, user_id: int) -> Balances:
    def body(uow: UnitOfWork) -> Balances:
        core.eligibility.check_user(uow, user_id)
        account = ledger.available(user_id)
        return Balances(
            available=uow.ledger.balance(account),
            on_hold=uow.ledger.balance(ledger.held(user_id)),
            credited_total=uow.ledger.credited_total(user_id),
        )

    return core.transaction(body)
