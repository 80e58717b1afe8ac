"""Audit log, callback events, outbox and reviews in SQL."""

from __future__ import annotations

import json
from datetime import datetime, timedelta

from adapters.sql.session import Session, from_db_time, text, to_db_time
from flamepay.records import (
    AlertClaim,
    Audience,
    AuditEntry,
    CallbackEvent,
    OutboxMessage,
    Review,
    ReviewKind,
    ReviewStatus,
)


def _json(value: object) -> str:
    return json.dumps(value, default=str, ensure_ascii=False, sort_keys=True)


class SqlAudit:
    def __init__(self, s: Session) -> None:
        self.s = s

    def record(self, entry: AuditEntry) -> None:
        self.s.execute(
            "INSERT INTO audit_log (actor, action, target, details, at) "
            "VALUES (%s, %s, %s, %s, %s)",
            (
                entry.actor[:64],
                entry.action[:64],
                entry.target[:128],
                _json(dict(entry.details)),
                to_db_time(entry.at),
            ),
        )


class SqlCallbackEvents:
    def __init__(self, s: Session) -> None:
        self.s = s

    def record(self, event: CallbackEvent) -> None:
        self.s.execute(
            "INSERT INTO callback_events (mch_order_no, outcome, remote, fields, at) "
            "VALUES (%s, %s, %s, %s, %s)",
            (
                event.mch_order_no.encode()[:64] if event.mch_order_no else None,
                event.outcome[:32],
                event.remote[:64],
                _json(dict(event.fields)),
                to_db_time(event.at),
            ),
        )

    def count(self, outcome: str, since: datetime) -> int:
        return _count_events(self.s, outcome, since)


def _count_events(s: Session, outcome: str, since: datetime) -> int:
    return int(
        s.scalar(
            "SELECT COUNT(*) FROM callback_events WHERE at >= %s AND outcome = %s",
            (to_db_time(since), outcome),
        )
    )


_OUTBOX_COLUMNS = "id, audience, kind, text, user_id, ref, created_at, sent_at, attempts"


class SqlOutbox:
    def __init__(self, s: Session) -> None:
        self.s = s

    def add(self, message: OutboxMessage) -> None:
        message.id = self.s.insert(
            "INSERT INTO outbox (audience, kind, text, user_id, ref, created_at, attempts) "
            "VALUES (%s, %s, %s, %s, %s, %s, 0)",
            (
                message.audience.value,
                message.kind[:48],
                message.text,
                message.user_id,
                message.ref[:96],
                to_db_time(message.created_at),
            ),
        )

    def pending(self, limit: int) -> list[OutboxMessage]:
        rows = self.s.all(
            f"SELECT {_OUTBOX_COLUMNS} FROM outbox WHERE sent_at IS NULL ORDER BY id LIMIT %s",
            (limit,),
        )
        return [
            OutboxMessage(
                audience=Audience(r[1]),
                kind=r[2],
                text=r[3],
                created_at=from_db_time(r[6]),
                user_id=r[4],
                ref=r[5],
                id=int(r[0]),
                sent_at=from_db_time(r[7]),
                attempts=int(r[8]),
            )
            for r in rows
        ]

    def oldest_pending_at(self) -> datetime | None:
        return from_db_time(
            self.s.scalar("SELECT MIN(created_at) FROM outbox WHERE sent_at IS NULL")
        )

    def record_copy(self, ref: str, chat_id: int, message_id: int, at: datetime) -> None:
        self.s.execute(
            "INSERT INTO message_copies (ref, chat_id, message_id, created_at) "
            "VALUES (%s, %s, %s, %s)",
            (ref.encode(), chat_id, message_id, to_db_time(at)),
        )

    def copies(self, ref: str) -> list[tuple[int, int]]:
        rows = self.s.all(
            "SELECT chat_id, message_id FROM message_copies WHERE ref = %s ORDER BY id",
            (ref.encode(),),
        )
        return [(int(r[0]), int(r[1])) for r in rows]

    def mark_sent(self, message_id: int, at: datetime) -> None:
        self.s.execute(
            "UPDATE outbox SET sent_at = %s, attempts = attempts + 1 WHERE id = %s",
            (to_db_time(at), message_id),
        )


_REVIEW_COLUMNS = (
    "id, order_id, kind, reason, created_at, rkey, status, resolved_by, resolved_at, note, report"
)


def _review(row: tuple) -> Review:
    return Review(
        id=int(row[0]),
        order_id=int(row[1]),
        kind=ReviewKind(row[2]),
        reason=row[3],
        created_at=from_db_time(row[4]),
        key=text(row[5]),
        status=ReviewStatus(row[6]),
        resolved_by=row[7],
        resolved_at=from_db_time(row[8]),
        note=row[9],
        report=json.loads(row[10]),
    )


class SqlReviews:
    def __init__(self, s: Session) -> None:
        self.s = s

    def open(self, review: Review) -> bool:
        inserted = self.s.execute(
            f"{self.s.dialect.insert_ignore} INTO reviews "
            "(rkey, order_id, kind, reason, status, created_at, note, report) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
            (
                review.key.encode(),
                review.order_id,
                review.kind.value,
                review.reason[:512],
                review.status.value,
                to_db_time(review.created_at),
                review.note,
                _json(dict(review.report)),
            ),
        )
        return inserted == 1

    def for_order(self, order_id: int) -> list[Review]:
        rows = self.s.all(
            f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE order_id = %s ORDER BY id", (order_id,)
        )
        return [_review(r) for r in rows]

    def get_for_update(self, review_id: int) -> Review | None:
        row = self.s.one(
            f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE id = %s{self.s.dialect.for_update}",
            (review_id,),
        )
        return _review(row) if row else None

    def save(self, review: Review) -> None:
        self.s.execute(
            "UPDATE reviews SET status = %s, resolved_by = %s, resolved_at = %s, note = %s "
            "WHERE id = %s",
            (
                review.status.value,
                review.resolved_by,
                to_db_time(review.resolved_at),
                review.note[:255],
                review.id,
            ),
        )

    def pending(self) -> list[Review]:
        rows = self.s.all(
            f"SELECT {_REVIEW_COLUMNS} FROM reviews WHERE status = 'open' ORDER BY id LIMIT 500"
        )
        return [_review(r) for r in rows]


class SqlAlerts:
    def __init__(self, s: Session) -> None:
        self.s = s

    def claim(self, key: str, now: datetime, interval_seconds: int) -> AlertClaim:
        # The row is locked and decided on: whoever finds the interval over owns this
        # interval's alert (in whichever process it runs) and takes the count of those held
        # back; the others add one to it. Locked before any insert, so two callers never both
        # hold a shared lock from a duplicate insert and then ask for the exclusive one.
        akey = key.encode()
        row = self._locked(akey)
        if row is None:
            inserted = self.s.execute(
                f"{self.s.dialect.insert_ignore} INTO alerts (akey, last_at, held) "
                "VALUES (%s, %s, 0)",
                (akey, to_db_time(now)),
            )
            if inserted == 1:
                return AlertClaim(True, 0)
            row = self._locked(akey)  # another caller inserted it first
            assert row is not None  # rows are never deleted
        last_at, held = from_db_time(row[0]), int(row[1])
        if last_at is not None and last_at > now - timedelta(seconds=interval_seconds):
            self.s.execute("UPDATE alerts SET held = held + 1 WHERE akey = %s", (akey,))
            return AlertClaim(False, held + 1)
        self.s.execute(
            "UPDATE alerts SET last_at = %s, held = 0 WHERE akey = %s", (to_db_time(now), akey)
        )
        return AlertClaim(True, held)

    def _locked(self, akey: bytes) -> tuple | None:
        return self.s.one(
            f"SELECT last_at, held FROM alerts WHERE akey = %s{self.s.dialect.for_update}",
            (akey,),
        )
