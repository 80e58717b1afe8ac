"""Record a Telegram user on first contact and keep their username and name current."""

from __future__ import annotations

from flamepay.context import Core
from flamepay.errors import AlreadyDone, RetryableConflict
from flamepay.ports import UnitOfWork
from flamepay.user import User

# Telegram allows 32-character usernames and 64-character names; stored clipped anyway.
MAX_USERNAME = 64
MAX_NAME = 128


def see_user(core: Core, user_id: int, username: str = "", name: str = "") -> User:
    if not isinstance(user_id, int) or isinstance(user_id, bool) or user_id <= 0:
        raise ValueError("a Telegram user id is a positive integer")
    username = (username or "")[:MAX_USERNAME]
    name = (name or "")[:MAX_NAME]

    def body(uow: UnitOfWork) -> User:
        # Every bot update passes here: the usual case (known, unchanged) takes no row lock.
        known = uow.users.get(user_id)
        if known is not None and (known.username, known.name) == (username, name):
            return known
        user = uow.users.get_for_update(user_id)
        if user is None:
            user = User(user_id, username, name, first_seen=core.now())
            try:
                uow.users.add(user)
            except AlreadyDone:
                # Two first contacts at once: the other one won; run again and update it.
                raise RetryableConflict("user inserted concurrently") from None
            core.audit(uow, f"user:{user_id}", "user_first_seen", f"user:{user_id}")
            return user
        if (user.username, user.name) != (username, name):
            user.username, user.name = username, name
            uow.users.save(user)
        return user

    return core.transaction(body)
