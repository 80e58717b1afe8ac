"""What a user's account allows now, for the bot to say before it asks anything: whether they
are activated or banned (the eligibility rules), and what /start shows them."""

from __future__ import annotations

from flamepay.context import Core
from flamepay.ports import UnitOfWork
from flamepay.user import User


def require_active_user(core: Core, user_id: int) -> None:
    """NotEligible (saying what to do) unless the user is activated and not banned."""

    def body(uow: UnitOfWork) -> None:
        core.eligibility.check_user(uow, user_id)

    core.transaction(body)


def known_user(core: Core, user_id: int) -> User | None:
    """The user as stored (None before their first contact)."""
    return core.transaction(lambda uow: uow.users.get(user_id))
