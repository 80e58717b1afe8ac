"""Reading the installation row the first migration wrote (sandbox or live, sandbox keys)."""

from __future__ import annotations

from adapters.sql.migrate import Installation
from adapters.sql.uow import Database
from flamepay.errors import StorageUnavailable


def read_installation(database: Database) -> Installation:
    connection = database.begin()
    try:
        cursor = connection.cursor()
        sql = "SELECT kind, merchant_no, merchant_key FROM installation WHERE id = 1"
        try:
            cursor.execute(sql)
            row = cursor.fetchone()
        except Exception as error:
            translated = database.dialect.translate_error(error)
            if translated is not None:
                raise translated from error
            raise StorageUnavailable(
                "the database has no FlamePay schema yet; run flamepay migrate"
            ) from None
        if row is None:
            raise StorageUnavailable("the database has no installation row; run flamepay migrate")
        key = row[2].decode() if isinstance(row[2], bytes) else row[2]
        return Installation(row[0], row[1], key)
    finally:
        connection.rollback()
        database.release(connection)
