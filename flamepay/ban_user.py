"""An admin bans or unbans a user. A banned user can neither pay nor see balances nor ask
for payouts; money already held stays in the ledger untouched."""

from __future__ import annotations

from flamepay.admin import require_admin
from flamepay.context import Core
from flamepay.errors import NotFound, Refused
from flamepay.ports import UnitOfWork
from flamepay.user import User


def ban_user(core: Core, admin_id: int, user_id: int) -> User:
    require_admin(core, admin_id, "ban", f"user:{user_id}")
    if user_id in core.admin_ids:
        raise Refused("An admin cannot be banned; remove them from ADMIN_IDS first.")

    def body(uow: UnitOfWork) -> User:
        user = _load(uow, user_id)
        if user.banned:
            raise Refused(f"User {user_id} is already banned.")
        user.banned_at = core.now()
        user.banned_by = admin_id
        uow.users.save(user)
        core.audit(uow, f"admin:{admin_id}", "user_banned", f"user:{user_id}")
        return user

    return core.transaction(body)


def unban_user(core: Core, admin_id: int, user_id: int) -> User:
    require_admin(core, admin_id, "unban", f"user:{user_id}")

    def body(uow: UnitOfWork) -> User:
        user = _load(uow, user_id)
        if not user.banned:
            raise Refused(f"User {user_id} is not banned.")
        user.banned_at = None
        user.banned_by = None
        uow.users.save(user)
        core.audit(uow, f"admin:{admin_id}", "user_unbanned", f"user:{user_id}")
        return user

    return core.transaction(body)


def _load(uow: UnitOfWork, user_id: int) -> User:
    user = uow.users.get_for_update(user_id)
    if user is None:
        raise NotFound(f"No user {user_id}: they have not talked to the bot yet.")
    return user
