"""run_in_transaction: one use case body, one transaction, re-run whole on a conflict."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from flamepay.errors import RetryableConflict, TransactionConflict
from flamepay.ports import UnitOfWork, UnitOfWorkFactory

T = TypeVar("T")

DEFAULT_ATTEMPTS = 5


def run_in_transaction(
    uow_factory: UnitOfWorkFactory,
    body: Callable[[UnitOfWork], T],
    attempts: int = DEFAULT_ATTEMPTS,
) -> T:
    """Run `body` in a fresh unit of work and commit; on a deadlock, lock wait timeout or busy
    database, roll back and run the whole body again, at most `attempts` times.

    Re-running the whole body (not one statement) is what keeps a unit of work whole: the
    second attempt sees the database as it is now, including what the winner committed.
    The body must not commit itself and must not call the provider or Telegram.
    """
    if attempts < 1:
        raise ValueError("attempts must be at least 1")
    for attempt in range(1, attempts + 1):
        if attempt > 1:
            uow_factory.before_retry(attempt)
        try:
            with uow_factory() as uow:
                result = body(uow)
                uow.commit()
                return result
        except RetryableConflict:
            if attempt == attempts:
                raise TransactionConflict(
                    f"gave up after {attempts} attempts on a database conflict"
                ) from None
    raise AssertionError("unreachable")
