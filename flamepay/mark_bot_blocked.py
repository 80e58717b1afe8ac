"""The notifier learned (Telegram's 403) that a user blocked the bot: remember when."""

from __future__ import annotations

from flamepay.context import Core
from flamepay.ports import UnitOfWork


def mark_bot_blocked(core: Core, user_id: int) -> bool:
    """True when this call recorded it; unknown users are ignored (nothing to mark)."""

    def body(uow: UnitOfWork) -> bool:
        user = uow.users.get_for_update(user_id)
        if user is None or user.blocked_bot_at is not None:
            return False
        user.blocked_bot_at = core.now()
        uow.users.save(user)
        core.audit(uow, "system", "user_blocked_bot", f"user:{user_id}")
        return True

    return core.transaction(body)


def mark_bot_unblocked(core: Core, user_id: int) -> None:
    """A blocked user wrote to the bot again: messages may flow again."""

    def body(uow: UnitOfWork) -> None:
        user = uow.users.get_for_update(user_id)
        if user is not None and user.blocked_bot_at is not None:
            user.blocked_bot_at = None
            uow.users.save(user)

    core.transaction(body)
