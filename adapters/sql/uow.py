"""The SQL unit of work: one connection from the pool, one explicit transaction."""

from __future__ import annotations

import contextlib
import random
import threading
import time
from types import TracebackType
from typing import Any, Protocol, Self

from adapters.sql.catalogue import SqlCatalogue
from adapters.sql.ledger import SqlLedger
from adapters.sql.orders import SqlOrders
from adapters.sql.payouts import SqlPayouts
from adapters.sql.people import SqlAccessCodes, SqlUsers
from adapters.sql.records import SqlAlerts, SqlAudit, SqlCallbackEvents, SqlOutbox, SqlReviews
from adapters.sql.session import Dialect, Session


class Database(Protocol):
    """What a backend (MySQL pool, SQLite file) gives the unit of work."""

    dialect: Dialect

    def begin(self) -> Any:
        """A connection with a transaction begun on it (explicitly: see the MySQL notes)."""
        ...

    def release(self, connection: Any) -> None: ...


class SqlUnitOfWork:
    # Repository classes, replaceable by tests that prove what a lock or a key is for.
    ledger_class = SqlLedger
    access_codes_class = SqlAccessCodes

    def __init__(self, factory: SqlUnitOfWorkFactory) -> None:
        self._factory = factory
        self._connection: Any = None
        self._done = False

    def __enter__(self) -> Self:
        db = self._factory.database
        self._connection = db.begin()
        s = self.session = Session(self._connection, db.dialect, self._factory.account_ids)
        self.users = SqlUsers(s)
        self.access_codes = self.access_codes_class(s)
        self.catalogue = SqlCatalogue(s)
        self.orders = SqlOrders(s)
        self.ledger = self.ledger_class(s)
        self.payouts = SqlPayouts(s)
        self.audit = SqlAudit(s)
        self.callback_events = SqlCallbackEvents(s)
        self.outbox = SqlOutbox(s)
        self.reviews = SqlReviews(s)
        self.alerts = SqlAlerts(s)
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        try:
            if not self._done:
                self.rollback()
        finally:
            self.session.close()
            self._factory.database.release(self._connection)

    def commit(self) -> None:
        self.session._run(self._connection.commit)
        self._done = True

    def rollback(self) -> None:
        self._done = True
        with contextlib.suppress(Exception):
            self._connection.rollback()


class SqlUnitOfWorkFactory:
    def __init__(
        self,
        database: Database,
        base_delay: float = 0.01,
        max_delay: float = 0.2,
        uow_class: type[SqlUnitOfWork] = SqlUnitOfWork,
    ) -> None:
        self.database = database
        self.uow_class = uow_class
        self.base_delay = base_delay
        self.max_delay = max_delay
        self._lock = threading.Lock()
        self.retries = 0  # conflicts retried, for tests and /metrics
        self.account_ids: dict[str, int] = {}  # committed account ids, which never change

    def __call__(self) -> SqlUnitOfWork:
        return self.uow_class(self)

    def before_retry(self, attempt: int) -> None:
        with self._lock:
            self.retries += 1
        # Exponential backoff with full jitter, so the losers of a deadlock do not collide
        # again in step.
        ceiling = min(self.max_delay, self.base_delay * 2 ** (attempt - 2))
        time.sleep(random.uniform(0, ceiling))
