"""Delivering the outbox: the reads and writes of the process that sends notifications.

Sending is the notifier's job (outside any transaction); a row is marked sent only after it
was accepted, so delivery is at least once.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from flamepay.context import Core
from flamepay.ports import UnitOfWork
from flamepay.records import OutboxMessage

BACKLOG_ALERT = timedelta(minutes=5)  # the oldest unsent message waited this long: alert
BACKLOG_ALERT_KEY = "outbox_backlog"


def pending_messages(core: Core, limit: int) -> list[OutboxMessage]:
    """What waits to be sent, oldest first."""
    return core.transaction(lambda uow: uow.outbox.pending(limit))


def mark_sent(core: Core, message_id: int) -> None:
    def body(uow: UnitOfWork) -> None:
        uow.outbox.mark_sent(message_id, core.now())

    core.transaction(body)


def record_copy(core: Core, ref: str, chat_id: int, message_id: int) -> None:
    """A sent message carries `ref` (an admin's copy of a payout request), to edit later."""

    def body(uow: UnitOfWork) -> None:
        uow.outbox.record_copy(ref, chat_id, message_id, core.now())

    core.transaction(body)


def copies_of(core: Core, ref: str) -> list[tuple[int, int]]:
    """(chat_id, message_id) of every sent copy of `ref`, oldest first."""
    return core.transaction(lambda uow: uow.outbox.copies(ref))


def oldest_pending_at(core: Core) -> datetime | None:
    return core.transaction(lambda uow: uow.outbox.oldest_pending_at())


def claim_backlog_alert(core: Core) -> int | None:
    """Minutes the oldest unsent message has waited, when it is BACKLOG_ALERT or more and
    this caller is the one to say so (once per alert interval, across processes)."""
    oldest = oldest_pending_at(core)
    if oldest is None or core.now() - oldest < BACKLOG_ALERT:
        return None
    interval = core.alert_interval_minutes * 60

    def body(uow: UnitOfWork) -> bool:
        return uow.alerts.claim(BACKLOG_ALERT_KEY, core.now(), interval).sent

    if not core.transaction(body):
        return None
    return int((core.now() - oldest).total_seconds() // 60)
