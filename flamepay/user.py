"""Telegram users as FlamePay knows them."""

from __future__ import annotations

from datetime import datetime

import attrs


@attrs.define(eq=False)
class User:
    id: int  # the Telegram user id (effective_user.id), never a chat id
    username: str = ""
    name: str = ""
    first_seen: datetime | None = None
    activated_at: datetime | None = None
    activated_with: str | None = None  # the code's id, not the code
    banned_at: datetime | None = None
    banned_by: int | None = None
    blocked_bot_at: datetime | None = None

    @property
    def activated(self) -> bool:
        return self.activated_at is not None

    @property
    def banned(self) -> bool:
        return self.banned_at is not None
