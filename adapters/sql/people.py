"""Users and access codes in SQL."""

from __future__ import annotations

from datetime import datetime

from adapters.sql.session import Session, from_db_time, text, to_db_time
from flamepay.access_code import AccessCode
from flamepay.ports import UserCounts
from flamepay.user import User

_USER_COLUMNS = (
    "id, username, name, first_seen, activated_at, activated_with, banned_at, banned_by, "
    "blocked_bot_at"
)


def _user(row: tuple) -> User:
    return User(
        id=int(row[0]),
        username=row[1],
        name=row[2],
        first_seen=from_db_time(row[3]),
        activated_at=from_db_time(row[4]),
        activated_with=row[5],
        banned_at=from_db_time(row[6]),
        banned_by=row[7],
        blocked_bot_at=from_db_time(row[8]),
    )


class SqlUsers:
    def __init__(self, s: Session) -> None:
        self.s = s

    def get(self, user_id: int) -> User | None:
        row = self.s.one(f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s", (user_id,))
        return _user(row) if row else None

    def get_for_update(self, user_id: int) -> User | None:
        row = self.s.one(
            f"SELECT {_USER_COLUMNS} FROM users WHERE id = %s{self.s.dialect.for_update}",
            (user_id,),
        )
        return _user(row) if row else None

    def add(self, user: User) -> None:
        self.s.execute(
            f"INSERT INTO users ({_USER_COLUMNS}) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            self._values(user),
        )

    def save(self, user: User) -> None:
        values = self._values(user)
        self.s.execute(
            "UPDATE users SET username = %s, name = %s, first_seen = %s, activated_at = %s, "
            "activated_with = %s, banned_at = %s, banned_by = %s, blocked_bot_at = %s "
            "WHERE id = %s",
            (*values[1:], values[0]),
        )

    @staticmethod
    def _values(u: User) -> tuple:
        return (
            u.id,
            u.username,
            u.name,
            to_db_time(u.first_seen),
            to_db_time(u.activated_at),
            u.activated_with,
            to_db_time(u.banned_at),
            u.banned_by,
            to_db_time(u.blocked_bot_at),
        )

    def counts(self) -> UserCounts:
        row = self.s.one(
            "SELECT COUNT(*), "
            "COALESCE(SUM(CASE WHEN activated_at IS NOT NULL AND banned_at IS NULL "
            "THEN 1 END), 0), "
            "COALESCE(SUM(CASE WHEN banned_at IS NOT NULL THEN 1 END), 0) FROM users"
        )
        assert row is not None
        return UserCounts(int(row[0]), int(row[1]), int(row[2]))


_CODE_COLUMNS = "id, code, max_uses, created_by, created_at, expires_at, uses, last_used_at"


def _code(row: tuple) -> AccessCode:
    return AccessCode(
        id=int(row[0]),
        code=text(row[1]),
        max_uses=int(row[2]),
        created_by=int(row[3]),
        created_at=from_db_time(row[4]),
        expires_at=from_db_time(row[5]),
        uses=int(row[6]),
        last_used_at=from_db_time(row[7]),
    )


class SqlAccessCodes:
    def __init__(self, s: Session) -> None:
        self.s = s

    def add(self, code: AccessCode) -> AccessCode:
        new_id = self.s.insert(
            "INSERT INTO access_codes (code, max_uses, created_by, created_at, expires_at, uses) "
            "VALUES (%s, %s, %s, %s, %s, 0)",
            (
                code.code.encode(),
                code.max_uses,
                code.created_by,
                to_db_time(code.created_at),
                to_db_time(code.expires_at),
            ),
        )
        code.id = new_id
        return code

    def redeem(self, code: str, now: datetime) -> AccessCode | None:
        # One conditional update: a code cannot be used more often than it allows, whatever
        # the number of people typing it at once.
        changed = self.s.execute(
            "UPDATE access_codes SET uses = uses + 1, last_used_at = %s "
            "WHERE code = %s AND uses < max_uses AND (expires_at IS NULL OR expires_at > %s)",
            (to_db_time(now), code.encode(), to_db_time(now)),
        )
        if changed != 1:
            return None
        row = self.s.one(
            f"SELECT {_CODE_COLUMNS} FROM access_codes WHERE code = %s", (code.encode(),)
        )
        return _code(row) if row else None

    def record_failed_attempt(self, user_id: int, now: datetime) -> None:
        self.s.execute(
            "INSERT INTO activation_attempts (user_id, at) VALUES (%s, %s)",
            (user_id, to_db_time(now)),
        )

    def count_failed_attempts(self, user_id: int, since: datetime) -> int:
        return int(
            self.s.scalar(
                "SELECT COUNT(*) FROM activation_attempts WHERE user_id = %s AND at >= %s",
                (user_id, to_db_time(since)),
            )
        )

    def recent(self, limit: int) -> list[AccessCode]:
        rows = self.s.all(
            f"SELECT {_CODE_COLUMNS} FROM access_codes ORDER BY id DESC LIMIT %s", (limit,)
        )
        return [_code(r) for r in rows]
