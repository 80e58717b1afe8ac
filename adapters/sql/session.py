"""The thin layer between the repositories and a DB-API connection.

Repositories write SQL with %s placeholders and portable syntax; the dialect supplies the
few pieces that differ (placeholder style, FOR UPDATE, insert-or-ignore) and maps driver
errors to the core's: duplicate key -> AlreadyDone, deadlock/lock wait/busy ->
RetryableConflict, connection lost -> StorageUnavailable.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

import attrs

from flamepay.errors import AlreadyDone, Refused


class DuplicateKey(AlreadyDone):
    """A UNIQUE key refused a row; `key` names the constraint when the driver says it."""


MAX_INTEGER = 2**63 - 1  # BIGINT and SQLite INTEGER


class OutOfRange(Refused):
    """A number no column can hold (an id at or above 2^63 from a typo or a forged button):
    the statement is refused, the unit of work rolls back, nothing changes."""

    def __init__(self) -> None:
        super().__init__(
            f"Expected a number from 1 to {MAX_INTEGER}; nothing larger can be stored, so "
            "nothing changed."
        )


@attrs.frozen
class Dialect:
    name: str
    placeholder: str  # '%s' or '?'
    for_update: str  # ' FOR UPDATE' or '' (SQLite locks the whole file with BEGIN IMMEDIATE)
    insert_ignore: str  # 'INSERT IGNORE' or 'INSERT OR IGNORE'
    translate_error: Callable[[BaseException], BaseException | None]
    # Turns parameters into what the driver stores (SQLite: datetimes as fixed-width text).
    adapt: Callable[[tuple], tuple] | None = None

    def sql(self, text: str) -> str:
        return text if self.placeholder == "%s" else text.replace("%s", self.placeholder)


class Session:
    """One transaction's cursor, with errors translated for the core."""

    def __init__(
        self, connection: Any, dialect: Dialect, account_ids: dict[str, int] | None = None
    ) -> None:
        self.connection = connection
        self.dialect = dialect
        self.account_ids = account_ids if account_ids is not None else {}
        # Balances this transaction posted while holding the accounts' locks.
        self.balances: dict[str, int] = {}
        self.cursor = connection.cursor()
        self.statements = 0

    def _run(self, fn: Callable[[], Any]) -> Any:
        try:
            return fn()
        except Exception as error:
            translated = self.dialect.translate_error(error)
            if translated is None:
                raise
            raise translated from error

    def execute(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.statements += 1
        text = self.dialect.sql(sql)
        values = tuple(params)
        if self.dialect.adapt is not None:
            values = self.dialect.adapt(values)
        self._run(lambda: self.cursor.execute(text, values))
        return self.cursor.rowcount

    def executemany(self, sql: str, rows: Iterable[Sequence[Any]]) -> int:
        self.statements += 1
        text = self.dialect.sql(sql)
        adapt = self.dialect.adapt or tuple
        rows = [adapt(tuple(r)) for r in rows]
        self._run(lambda: self.cursor.executemany(text, rows))
        return self.cursor.rowcount

    def one(self, sql: str, params: Sequence[Any] = ()) -> tuple | None:
        self.execute(sql, params)
        return self._run(self.cursor.fetchone)

    def all(self, sql: str, params: Sequence[Any] = ()) -> list[tuple]:
        self.execute(sql, params)
        return list(self._run(self.cursor.fetchall))

    def scalar(self, sql: str, params: Sequence[Any] = ()) -> Any:
        row = self.one(sql, params)
        return row[0] if row else None

    def insert(self, sql: str, params: Sequence[Any] = ()) -> int:
        self.execute(sql, params)
        return int(self.cursor.lastrowid)

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self.cursor.close()


def to_db_time(value: datetime | None) -> datetime | None:
    """Stored as naive UTC (DATETIME(6) has no zone)."""
    if value is None:
        return None
    if value.tzinfo is None:
        raise ValueError("naive datetimes are not accepted: the core works in aware UTC")
    return value.astimezone(UTC).replace(tzinfo=None)


def from_db_time(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, str):  # SQLite returns text
        value = datetime.fromisoformat(value)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def text(value: Any) -> str:
    """VARBINARY columns come back as bytes from PyMySQL."""
    if isinstance(value, bytes | bytearray):
        return bytes(value).decode("utf-8")
    return value


def in_list(values: Sequence[Any]) -> str:
    return ", ".join(["%s"] * len(values))
