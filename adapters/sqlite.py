"""SQLite storage, the embedded default: one file, WAL, BEGIN IMMEDIATE for every unit.

BEGIN IMMEDIATE takes the write lock at the start, so a unit of work never upgrades a read
lock halfway (the SQLite way to deadlock); a busy database waits up to the busy timeout and
then raises RetryableConflict, which run_in_transaction retries whole. WAL lets readers in
other processes go on while one writes. Each thread keeps its own connection.
"""

from __future__ import annotations

import contextlib
import sqlite3
import threading
import time
from collections.abc import Iterator, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

from adapters.sql import ledger_check
from adapters.sql.migrate import MigrationReport, apply_migrations, discover
from adapters.sql.session import Dialect, DuplicateKey, OutOfRange
from flamepay.errors import RetryableConflict, StorageUnavailable

BUSY_TIMEOUT_MS = 5000
MIGRATIONS_TABLE = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (name TEXT NOT NULL PRIMARY KEY, "
    "checksum TEXT NOT NULL, applied_at TEXT NOT NULL)"
)


def translate_error(error: BaseException) -> BaseException | None:
    if isinstance(error, OverflowError):
        # "Python int too large to convert to SQLite INTEGER": raised while binding, so no
        # row can match or be written; a refusal, not a crash.
        return OutOfRange()
    message = str(error).lower()
    if isinstance(error, sqlite3.IntegrityError) and "unique" in message:
        return DuplicateKey(str(error))
    if isinstance(error, sqlite3.OperationalError) and ("locked" in message or "busy" in message):
        return RetryableConflict("SQLite database is busy")
    if isinstance(error, sqlite3.OperationalError) and "unable to open" in message:
        return StorageUnavailable("the SQLite file cannot be opened")
    return None


def _adapt(values: tuple) -> tuple:
    # Fixed-width text keeps comparisons and ORDER BY right (isoformat drops zero microseconds).
    return tuple(
        v.strftime("%Y-%m-%d %H:%M:%S.%f") if isinstance(v, datetime) else v for v in values
    )


SQLITE = Dialect(
    name="sqlite",
    placeholder="?",
    for_update="",
    insert_ignore="INSERT OR IGNORE",
    translate_error=translate_error,
    adapt=_adapt,
)


def _connect(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(
        path, timeout=BUSY_TIMEOUT_MS / 1000, isolation_level=None, check_same_thread=False
    )
    connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
    connection.execute("PRAGMA foreign_keys = ON")
    connection.execute("PRAGMA synchronous = FULL")  # committed means on disk, as with InnoDB
    return connection


class SqliteDatabase:
    """A Database for the SQL unit of work; connections are opened on first use."""

    dialect = SQLITE

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._lock = threading.Lock()
        self.waits = 0

    def _connection(self) -> sqlite3.Connection:
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                self.path.parent.mkdir(parents=True, exist_ok=True)
                connection = _connect(self.path)
            except (OSError, sqlite3.Error) as error:
                raise StorageUnavailable(f"cannot open the SQLite file {self.path}") from error
            self._local.connection = connection
            with self._lock:
                self._all.append(connection)
        return connection

    def reserve(self, connections: int) -> None:
        """Nothing to size: each thread opens its own connection, and a gateway thread holds
        the write lock only for its short transactions, never across a provider call."""

    def begin(self) -> Any:
        connection = self._connection()
        deadline = time.monotonic() + BUSY_TIMEOUT_MS / 1000
        delay = 0.001
        # Our own busy loop for the write lock (instead of SQLite's silent one), so the wait is
        # counted: `waits` is how often a unit of work found another one holding the file.
        connection.execute("PRAGMA busy_timeout = 0")
        try:
            while True:
                try:
                    connection.execute("BEGIN IMMEDIATE")
                    return connection
                except sqlite3.OperationalError as error:
                    translated = translate_error(error)
                    if not isinstance(translated, RetryableConflict):
                        raise (translated or error) from error
                    with self._lock:
                        self.waits += 1
                    if time.monotonic() >= deadline:
                        raise translated from error
                    time.sleep(delay)
                    delay = min(delay * 2, 0.05)
        finally:
            connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")

    def release(self, connection: Any) -> None:
        # The connection stays with its thread; a transaction left open is rolled back.
        if connection.in_transaction:
            with contextlib.suppress(sqlite3.Error):
                connection.rollback()

    def close(self) -> None:
        with self._lock:
            for connection in self._all:
                with contextlib.suppress(sqlite3.Error):
                    connection.close()
            self._all.clear()
        self._local = threading.local()


def migrate(path: Path, want_kind: str) -> MigrationReport:
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    connection = _connect(path)
    connection.execute("PRAGMA journal_mode = WAL")  # persistent: set once on the file

    def execute(sql: str, params: Sequence[Any]) -> list[tuple]:
        return list(connection.execute(sql.replace("%s", "?"), _adapt(tuple(params))).fetchall())

    try:
        return apply_migrations(execute, discover("sqlite"), want_kind, MIGRATIONS_TABLE)
    finally:
        connection.close()


def check_ledger(path: Path, out: TextIO) -> int:
    if not Path(path).is_file():
        raise StorageUnavailable(f"no SQLite database at {path}; run flamepay migrate first")
    connection = _connect(Path(path))

    def stream(sql: str) -> Iterator[tuple]:
        # The sqlite3 cursor steps through rows as they are read, never all at once.
        yield from connection.execute(sql)

    try:
        connection.execute("BEGIN")  # one snapshot for every check (WAL readers see one)
        results = ledger_check.run_checks(stream, lambda a, b: f"CAST({a} || {b} AS BLOB)")
        return ledger_check.report(results, out)
    finally:
        connection.close()
