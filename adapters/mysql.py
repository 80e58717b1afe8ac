"""MySQL/MariaDB storage: PyMySQL connections in a DBUtils PooledDB.

Nothing connects at import or construction: the pool is made on first use. Every unit of
work calls begin() on its pooled connection, because without it DBUtils may silently
reconnect and re-run a failed statement alone, and a later commit would then save half a
unit of work.
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import attrs

from adapters.sql.session import Dialect, DuplicateKey, OutOfRange
from flamepay.errors import RetryableConflict, StorageUnavailable

DEADLOCK = 1213
LOCK_WAIT_TIMEOUT = 1205
DUPLICATE_ENTRY = 1062
# Out of range value for column (strict mode), BIGINT value is out of range (arithmetic).
OUT_OF_RANGE = {1264, 1690}
# Server gone, lost connection, can't connect, too many connections, server shutting down.
UNAVAILABLE = {1040, 1053, 2002, 2003, 2005, 2006, 2013, 2014, 2026, 2055}


def translate_error(error: BaseException) -> BaseException | None:
    import pymysql

    code = error.args[0] if error.args and isinstance(error.args[0], int) else None
    if isinstance(error, pymysql.err.IntegrityError) and code == DUPLICATE_ENTRY:
        return DuplicateKey(str(error.args[1]) if len(error.args) > 1 else "duplicate")
    if code in OUT_OF_RANGE:
        return OutOfRange()
    if code in (DEADLOCK, LOCK_WAIT_TIMEOUT):
        return RetryableConflict(f"MySQL error {code}")
    if code in UNAVAILABLE or isinstance(error, pymysql.err.InterfaceError):
        return StorageUnavailable("the database does not answer")
    return None


MYSQL = Dialect(
    name="mysql",
    placeholder="%s",
    for_update=" FOR UPDATE",
    insert_ignore="INSERT IGNORE",
    translate_error=translate_error,
)


@attrs.frozen
class MySqlConfig:
    host: str
    port: int = 3306
    user: str = "root"
    password: str = attrs.field(default="", repr=False)
    database: str = "flamepay"
    pool_size: int = 5
    connect_timeout: int = 5

    def connect_kwargs(self, database: bool = True) -> dict[str, Any]:
        kwargs: dict[str, Any] = dict(
            host=self.host,
            port=self.port,
            user=self.user,
            password=self.password,
            charset="utf8mb4",
            autocommit=False,
            connect_timeout=self.connect_timeout,
        )
        if database:
            kwargs["database"] = self.database
        return kwargs


class MySqlDatabase:
    """The pool, made on first use; a Database for the SQL unit of work."""

    dialect = MYSQL

    def __init__(self, config: MySqlConfig, dialect: Dialect = MYSQL) -> None:
        self.config = config
        self.dialect = dialect
        self._pool: Any = None
        self._lock = threading.Lock()
        self.max_connections = config.pool_size

    def reserve(self, connections: int) -> None:
        """Make room for `connections` held at once (the composition root: one per thread of
        the database and gateway executors, so no thread waits on another's connection).
        Only grows the pool, and only before its first use; later it stays as it was made."""
        with self._lock:
            if self._pool is None:
                self.max_connections = max(self.max_connections, connections)

    def _get_pool(self) -> Any:
        with self._lock:
            if self._pool is None:
                import pymysql
                from dbutils.pooled_db import PooledDB

                self._pool = PooledDB(
                    creator=pymysql,
                    mincached=0,
                    maxconnections=self.max_connections,
                    blocking=True,  # wait for a free connection instead of failing
                    ping=1,  # check a connection when it is taken from the pool
                    **self.config.connect_kwargs(),
                )
            return self._pool

    def begin(self) -> Any:
        try:
            connection = self._get_pool().connection()
            connection.begin()
        except Exception as error:
            translated = translate_error(error)
            if translated is None:
                from dbutils.pooled_db import PooledDBError

                if isinstance(error, PooledDBError):
                    raise StorageUnavailable("no database connection available") from error
                raise
            raise translated from error
        return connection

    def release(self, connection: Any) -> None:
        # Back to the pool; a broken connection is dropped by the pool instead.
        with contextlib.suppress(Exception):
            connection.close()

    def raw_connection(self, database: bool = True) -> Any:
        """A plain PyMySQL connection outside the pool (migrations, ledger-check, tests)."""
        import pymysql

        try:
            return pymysql.connect(**self.config.connect_kwargs(database))
        except pymysql.err.OperationalError as error:
            raise StorageUnavailable(
                f"cannot connect to MySQL at {self.config.host}:{self.config.port} "
                f"as {self.config.user} (error {error.args[0]})"
            ) from None

    def close(self) -> None:
        with self._lock:
            if self._pool is not None:
                self._pool.close()
                self._pool = None
